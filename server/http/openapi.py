"""The OpenAPI 3 document, generated from `api.ROUTES` and the request models."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .route import Route

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}
_ERROR_STATUSES = {
    "400": "Bad input; `fields` names each bad field",
    "401": "No or invalid token",
    "403": "Wrong role or scope",
    "404": "Not found",
    "413": "Body too large",
}


def build(routes: tuple[Route, ...], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "description": f"Roles: {', '.join(route.roles)}.",
            "operationId": route.handler.__name__,
            "security": [{"bearer": []}],
            "responses": {},
        }
        params = re.findall(r"{(\w+)}", route.path)
        if params:
            op["parameters"] = [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"}
                    if p == "violation_id"
                    else {"type": "string"}
                    if p in ("student_id", "question_id")
                    else {"type": "string", "format": "uuid"},
                }
                for p in params
            ]
        if route.query is not None:
            query_schema = route.query.model_json_schema()
            required = set(query_schema.get("required", ()))
            op.setdefault("parameters", []).extend(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": prop.get("description", ""),
                    "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
                }
                for name, prop in query_schema["properties"].items()
            )
        if route.body is not None:
            name = route.body.__name__
            schema = route.body.model_json_schema(ref_template="#/components/schemas/{model}")
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas[def_name] = definition
            example = schema.pop("example", None)
            schemas[name] = schema
            media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
            if example is not None:
                media["example"] = example
            op["requestBody"] = {"required": True, "content": {"application/json": media}}
        ok_schema: dict[str, Any] = (
            {"type": "object"}
            if route.content_type == "application/json"
            else {"type": "string", "format": "binary"}
            if route.content_type.startswith("image/")
            else {"type": "string"}
        )
        op["responses"][str(route.status)] = {
            "description": "Success",
            "content": {route.content_type: {"schema": ok_schema}},
        }
        for status, text in {**_ERROR_STATUSES, **{str(k): v for k, v in route.responses.items()}}.items():
            if status == "400" and route.body is None and route.query is None:
                continue
            op["responses"][status] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Proctor server API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def handler(document: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    return openapi_json
