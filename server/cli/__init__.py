"""The `proctor` command: one sub-command per operator task (`main` parses and dispatches)."""

from .main import main

__all__ = ["main"]
