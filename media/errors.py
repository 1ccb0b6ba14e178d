"""Errors raised by `media/`, each with a category the edges translate.

`server/` maps the category to an HTTP status and `signaling/` to an error ack; nothing
inside `media/` knows about either.
"""

from __future__ import annotations

from typing import Literal

MediaErrorCategory = Literal["invalid", "not_found", "conflict", "unavailable"]


class MediaError(Exception):
    """Base of every error `media/` raises on purpose.

    - ``invalid``: the caller sent something unusable (malformed SDP, no video m-line).
    - ``not_found``: no analysis peer for that attempt.
    - ``conflict``: a newer offer for the same attempt replaced this one mid-negotiation.
    - ``unavailable``: analysis is off, the node is at its peer limit, or negotiation
      failed on our side; retrying later (or on another node) may succeed.
    """

    def __init__(self, category: MediaErrorCategory, message: str) -> None:
        super().__init__(message)
        self.category: MediaErrorCategory = category
        self.message = message

    def __repr__(self) -> str:
        return f"MediaError({self.category!r}, {self.message!r})"


class InvalidOffer(MediaError):
    """The offer could not be parsed or offers no video to analyse."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", message)


class AnalysisUnavailable(MediaError):
    """Analysis cannot take this peer now (disabled, full, or negotiation failed)."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)
