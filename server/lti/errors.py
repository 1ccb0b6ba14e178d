"""Why an LTI login or launch was refused: a stable reason (shown, audited), a message for the
person in front of the iframe, and the HTTP status of the error page (never 500)."""

from __future__ import annotations


class LaunchError(Exception):
    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
