"""A REST route declared once: it registers the handler and describes it in the OpenAPI file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    roles: tuple[str, ...]
    body: type[BaseModel] | None = None
    status: int = 200
    content_type: str = "application/json"
    responses: dict[int, str] = field(default_factory=dict)
    query: type[BaseModel] | None = None  # the query string's model (each field one parameter)
