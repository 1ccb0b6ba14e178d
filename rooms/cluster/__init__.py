"""The Redis implementations of the domain's routing protocols: node registry, placement, presence."""
