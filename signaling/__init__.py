"""signaling."""
