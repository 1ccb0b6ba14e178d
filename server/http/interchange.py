"""Import an exam from Moodle XML, GIFT or QTI 2.1, and export one as Moodle XML (REST).

`POST /api/exams/import` takes the file three ways: a JSON body (`ExamImport`, the text or
base64 bytes inside, bounded by the app's body limit), a multipart form (a `file` part and
the options as fields), or the raw file as the body (options in the query string). The two
file-shaped ways are read as a stream and stopped at `MAX_UPLOAD_BYTES`, whatever the
Content-Length says. The parsing runs in a worker thread: a 10 MB XML file must not stall the
loop that serves the live rooms. The routes are appended to `api.ROUTES`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rooms.errors import Invalid, TooLarge
from rooms.interchange import MAX_UPLOAD_BYTES, Format, draft_exam, import_questions, to_moodle_xml
from server.keys import AUDIT, CATALOG

from .credentials import claims_of
from .errors import parse_body, validation_fields
from .route import Route

_CHUNK = 64 << 10
_FIELD_BYTES = 1024  # a multipart option field (format, title...) is short


class ImportOptions(BaseModel):
    """What an import does with the file: its format, the exam's title and length, dry run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Format = Field(description="moodle (Moodle XML), gift, or qti (a QTI 2.1 content-package zip)")
    title: str | None = Field(default=None, min_length=1, max_length=200, description="default: from the file")
    duration_minutes: int = Field(default=60, ge=1, le=24 * 60)
    dry_run: bool = Field(default=False, description="report only; create nothing")


class ExamImport(ImportOptions):
    """The JSON form of an import: the file's text (`content`) or its bytes (`content_base64`)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "format": "gift",
                "content": "::Sum::2 + 2 = ? {=4 ~3 ~5}\n\n::Capital::The capital of France? {=Paris}\n",
                "dry_run": True,
            }
        },
    )

    content: str | None = Field(default=None, min_length=1, max_length=MAX_UPLOAD_BYTES)
    content_base64: str | None = Field(default=None, min_length=1, max_length=MAX_UPLOAD_BYTES * 4 // 3 + 4)

    @model_validator(mode="after")
    def _one_file(self) -> ExamImport:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give the file as `content` (text) or as `content_base64`, not both")
        return self

    def data(self) -> bytes:
        if self.content is not None:
            return self.content.encode("utf-8", "surrogatepass")
        assert self.content_base64 is not None
        try:
            return base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("content_base64 is not base64", fields={"content_base64": "not base64"}) from None


def _options(values: dict[str, str]) -> ImportOptions:
    try:
        return ImportOptions.model_validate(values)
    except ValidationError as exc:
        raise Invalid("the import options are invalid", fields=validation_fields(exc)) from None


def _too_large() -> TooLarge:
    return TooLarge(f"the file is larger than {MAX_UPLOAD_BYTES} bytes", code="upload_too_large")


async def _read_stream(read: Any, limit: int) -> bytes:
    """Everything `read(n)` yields until it returns b"", refused as soon as it passes `limit`."""
    out = bytearray()
    while chunk := await read(_CHUNK):
        out += chunk
        if len(out) > limit:
            raise _too_large()
    return bytes(out)


async def _from_multipart(request: web.Request) -> tuple[ImportOptions, bytes]:
    values = {k: v for k, v in request.query.items() if k in ImportOptions.model_fields}
    data: bytes | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Invalid("nested multipart bodies are not accepted", fields={"body": "nested multipart"})
            if part.name == "file":
                if data is not None:
                    raise Invalid("send one file", fields={"file": "more than one"})
                data = await _read_stream(part.read_chunk, MAX_UPLOAD_BYTES)
            elif part.name in ImportOptions.model_fields:
                raw = await _read_stream(part.read_chunk, _FIELD_BYTES)
                values[part.name] = raw.decode("utf-8", "replace").strip()
            else:
                raise Invalid(f"unknown form field {part.name!r}", fields={str(part.name)[:64]: "unknown field"})
    except (HttpProcessingError, ValueError, AssertionError, RuntimeError) as exc:  # a broken multipart body
        raise Invalid(f"the multipart body cannot be read ({exc})", fields={"body": "bad multipart"}) from None
    if data is None:
        raise Invalid("the form has no `file` part", fields={"file": "missing"})
    return _options(values), data


async def _read_upload(request: web.Request) -> tuple[ImportOptions, bytes]:
    ctype = request.content_type
    if ctype == "application/json":
        body = await parse_body(request, ExamImport)
        return body, body.data()
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
        raise _too_large()
    if ctype == "multipart/form-data":
        return await _from_multipart(request)
    options = _options({k: v for k, v in request.query.items() if k in ImportOptions.model_fields})
    return options, await _read_stream(request.content.read, MAX_UPLOAD_BYTES)


async def import_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    options, data = await _read_upload(request)
    result = await asyncio.to_thread(import_questions, options.format, data, options.title)
    report = result.report_json()
    audit = request.app[AUDIT]
    if options.dry_run:
        preview = [q.model_dump(mode="json") for q in result.questions]
        await audit.record(claims, "exam.import_check", "import", options.format, {"counts": report["counts"]})
        return web.json_response({"dry_run": True, "report": report, "questions": preview})
    spec = draft_exam(result, title=options.title, duration_minutes=options.duration_minutes)
    exam = await request.app[CATALOG].create_exam(spec, created_by=claims.sub)
    await audit.record(claims, "exam.import", "exam", exam.id, {"format": options.format, "counts": report["counts"]})
    return web.json_response({"dry_run": False, "exam": exam.to_json(), "report": report}, status=201)


def _filename(title: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", title).strip("-.")[:80] or "exam"
    return f"{stem}.moodle.xml"


async def export_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    fmt = request.query.get("format", "moodle")
    if fmt != "moodle":
        raise Invalid("exports are written as Moodle XML only (format=moodle)", fields={"format": "moodle only"})
    exam = await request.app[CATALOG].exam_for(claims, request.match_info["exam_id"], "exam.export")
    document = await asyncio.to_thread(to_moodle_xml, exam.title, exam.questions)
    await request.app[AUDIT].record(claims, "exam.export", "exam", exam.id, {"format": fmt})
    return web.Response(
        body=document,
        content_type="application/xml",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(exam.title)}"',
            "Cache-Control": "private, no-store",
        },
    )


_TEACHERS = ("admin", "teacher")
INTERCHANGE_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/exams/import",
        import_exam,
        "Import questions from Moodle XML, GIFT or a QTI 2.1 package: a report per item; creates the exam"
        " (201) unless dry_run (200). Also accepts the raw file or a multipart form (options in the query)",
        _TEACHERS,
        ExamImport,
        200,
        responses={413: "the file or an archive entry is too large"},
    ),
    Route(
        "GET",
        "/api/exams/{exam_id}/export",
        export_exam,
        "The exam's questions and keys as Moodle XML (owners; audited)",
        _TEACHERS,
        content_type="application/xml",
    ),
)

__all__ = ["INTERCHANGE_ROUTES", "ExamImport", "ImportOptions"]
