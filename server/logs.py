"""The node's log output: text or one JSON object per line, request ids, and secrets redacted.

`configure_logging(settings)` installs one stderr handler on the root logger. With
`PROCTOR_LOG_FORMAT=json` each record is a line such as
`{"time": "2026-12-01T09:30:00.123Z", "level": "INFO", "logger": "proctor", "message": "...",
"node": "n1", "request_id": "..."}` (`request_id` only inside an HTTP request, `exception`
only when a traceback goes with the record), so a log shipper needs no parsing rules.

Redaction runs as a filter on the handler, so it covers every logger (ours, aiohttp's,
asyncpg's): the signing secret, the admin token, the passwords of the database and Redis
URLs, any `scheme://user:password@` URL, `Bearer ...` values and anything shaped like a JWT
(three base64url parts starting `eyJ`: every token this server mints) are replaced by
`[redacted]` in the message, its arguments and the traceback text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .settings import Settings

# The id of the HTTP request whose code is running: set by server/http/request_ids.py.
# A context variable follows the request into every task it creates (tasks copy the context).
REQUEST_ID: ContextVar[str | None] = ContextVar("proctor_request_id", default=None)

REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Shorter literal values would redact ordinary words; every real secret here is longer.
_MIN_SECRET_LENGTH = 8

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BEARER = re.compile(r"(\bBearer\s+)[^\s'\",;]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(@)")


class Redactor:
    """Replaces known secret values and secret-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._literals: list[str] = []
        self.add(*secrets)

    def add(self, *values: str) -> None:
        known = set(self._literals)
        known.update(v for v in values if v and len(v) >= _MIN_SECRET_LENGTH)
        # Longest first: a secret that contains another (a URL and its password) must go whole.
        self._literals = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._literals:
            if value in text:
                text = text.replace(value, REDACTED)
        text = _JWT.sub(REDACTED, text)
        text = _BEARER.sub(r"\1" + REDACTED, text)
        return _URL_PASSWORD.sub(r"\1" + REDACTED + r"\2", text)


def url_password(url: str) -> str:
    """The password inside a database/Redis URL, or ''."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def settings_secrets(settings: Settings) -> list[str]:
    values = [
        s.get_secret_value() for s in (settings.secret, settings.admin_token, settings.database_url, settings.redis_url)
    ]
    return [*values, url_password(values[2]), url_password(values[3])]


class RedactFilter(logging.Filter):
    """Redacts the message, its arguments and the traceback; stamps the request id."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep both parts, as logging would show them
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; keys that are absent are left out, not null."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # default=str: an odd object in a message must not lose the whole line.
        return json.dumps(entry, ensure_ascii=False, default=str)


def build_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(settings.node_id))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter(Redactor(settings_secrets(settings))))
    return handler


def configure_logging(settings: Settings) -> logging.Handler:
    """Replace the root logger's handlers with the node's one. `settings` must have had
    `with_runtime_defaults()`: the node id and the signing secret read from its file."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = build_handler(settings)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # What Python would print to stderr itself goes through the handler too, so it is
    # redacted and, in JSON mode, still one object per line.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)
    sys.unraisablehook = _log_unraisable
    return handler


def _log_uncaught(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> None:
    if exc is None:
        return
    logging.getLogger("proctor").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_unraisable(unraisable: Any) -> None:
    logging.getLogger("proctor").error(
        "%s: %r",
        unraisable.err_msg or "Exception ignored in",
        unraisable.object,
        exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
        if unraisable.exc_value is not None
        else None,
    )


def redact_also(*values: str) -> None:
    """Add secrets learnt after start-up (an admin token read from its file) to every handler."""
    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, RedactFilter):
                flt.redactor.add(*values)
