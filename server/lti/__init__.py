"""LTI 1.3 Advantage: the launch (registration part) and the services (docs/lti.md)."""
