"""Errors raised by ``detection``; the edges map ``category`` to a status (house style 11)."""

from __future__ import annotations


class DetectionError(Exception):
    """Base class; ``category`` is one of "invalid", "unavailable", "not_found", ..."""

    category: str = "invalid"

    def __init__(self, message: str, *, category: str | None = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category


class ModelNotFound(DetectionError):
    """The face model file is missing: analysis is unavailable on this node."""

    category = "unavailable"


class ModelLoadError(DetectionError):
    """The model file exists but onnxruntime or the shape rewrite rejected it."""

    category = "unavailable"


class InvalidFrame(DetectionError):
    """A frame is not a non-empty BGR uint8 HxWx3 array."""

    category = "invalid"


class InvalidRules(DetectionError):
    """An exam's ``rules["analysis"]`` (or the settings built from it) holds a bad value."""

    category = "invalid"
