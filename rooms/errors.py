"""Domain errors with a category; the edges translate categories (HTTP status, error ack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Category = Literal[
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "unavailable",
    "capacity",
    "rate_limited",
    "too_large",
]


class RoomsError(Exception):
    """Base class: `category` says how the edge answers, `code` is the stable wire code."""

    category: Category = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.category
        self.fields = dict(fields or {})
        self.retry_after = retry_after
        # Plain data a page may show or act on (e.g. when a window opens, in ISO).
        self.details = dict(details or {})


class Invalid(RoomsError):
    category = "invalid"


class Unauthorized(RoomsError):
    category = "unauthorized"


class Forbidden(RoomsError):
    category = "forbidden"


class NotFound(RoomsError):
    category = "not_found"


class Conflict(RoomsError):
    category = "conflict"


class Unavailable(RoomsError):
    category = "unavailable"


class NoCapacity(RoomsError):
    category = "capacity"


class RateLimited(RoomsError):
    category = "rate_limited"


class TooLarge(RoomsError):
    category = "too_large"
