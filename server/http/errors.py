"""One error shape for every HTTP answer, and the middleware that maps categories to statuses.

`{"error": {"code": "...", "message": "...", "fields": {...}}}`: 400 bad input (each bad
field named), 401, 403, 404, 409, 413, 429, 503. A client can never cause a 500: anything
unexpected is logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from rooms.cluster.errors import REDIS_TRANSIENT
from rooms.errors import RoomsError
from server.keys import SETTINGS

logger = logging.getLogger(__name__)

STATUS: dict[str, int] = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "capacity": 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


def error_response(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    text: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if text:
        # The same error for a person, in their language (server/http/messages.py); code and
        # message stay as they were for programs.
        body["text"] = text
    if fields:
        body["fields"] = dict(fields)
    if details:
        body["details"] = dict(details)
    if retry_after is not None:
        # Also in the body (seconds), as Socket.IO acks carry it: a page shows it without headers.
        body["retry_after"] = retry_after
    return web.json_response({"error": body}, status=status, headers=headers)


def validation_fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(path, err["msg"])
    return fields


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read a JSON body into `model`; raise `web.HTTPException`-free domain errors."""
    from rooms.errors import Invalid, TooLarge
    from rooms.storable import check_storable

    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(
            f"the body is larger than {request.app[SETTINGS].max_body_bytes} bytes", code="too_large"
        ) from None
    if not raw:
        raise Invalid("a JSON body is required", fields={"body": "missing"})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise Invalid("the body is not valid JSON", fields={"body": "invalid JSON"}) from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", fields={"body": "not an object"})
    check_storable(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("the body has invalid fields", fields=validation_fields(exc)) from None


def parse_query(request: web.Request, model: type[M]) -> M:
    """Read the query string into `model` (each parameter once); bad ones name their field."""
    from rooms.errors import Invalid

    data: dict[str, str] = {}
    for key, value in request.query.items():
        if key in data:
            raise Invalid(f"the parameter {key!r} is given twice", fields={key: "given twice"})
        data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("the query has invalid parameters", fields=validation_fields(exc)) from None


def _for_people(request: web.Request, response: web.Response) -> web.Response:
    """Add the person's text of the error, in the negotiated language, to an error answer."""
    from server.http import messages

    lang = messages.negotiate(request)
    response.headers["Content-Language"] = lang
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
    try:
        body = json.loads(response.body) if isinstance(response.body, bytes) else None
    except ValueError:
        return response
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "text" not in error:
        text = messages.error_text(lang, str(error.get("code")), CATEGORY_OF.get(response.status))
        if text:
            error["text"] = text
            response.body = json.dumps(body).encode()
    return response


# The category a status stands for: the text of a code without its own entry.
CATEGORY_OF = {status: category for category, status in reversed(STATUS.items())}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _errors(request, handler)
    if isinstance(response, web.Response) and response.status >= 400 and response.content_type == "application/json":
        return _for_people(request, response)
    return response


async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RoomsError as exc:
        status = STATUS.get(exc.category, 400)
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(status, exc.code, exc.message, exc.fields, headers, exc.retry_after, details=exc.details)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(("/api", "/auth/", "/healthz", "/readyz")):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, headers=_keep_headers(exc))
    except ValidationError as exc:  # a model built inside a handler from client data
        return error_response(400, "invalid", "invalid input", validation_fields(exc))
    except REDIS_TRANSIENT as exc:
        logger.warning("%s %s: Redis unavailable (%s)", request.method, request.path, exc)
        return error_response(
            503, "unavailable", "the cluster's Redis is unavailable; retry shortly", headers={"Retry-After": "1"}
        )
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; it has been logged")


def _keep_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
