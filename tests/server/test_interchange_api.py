"""POST /api/exams/import and GET /api/exams/{id}/export against a real Postgres: the three
ways to send a file, dry runs, the round trip, who may call them, and every malformed body
answered in the error shape (never a 500)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from rooms.interchange import MAX_UPLOAD_BYTES
from rooms.tokens import TokenService
from server.keys import POOL
from tests.server.test_api import make_room, teacher_token
from tests.support.accounts import add_account, sign_in
from tests.support.interchange_files import (
    BILLION_LAUGHS,
    gift_file,
    moodle_quiz,
    qti_package,
    traversal_zip,
    zip_bomb,
)
from tests.support.node import SECRET, bearer

Client = TestClient[Any, Any]


def error_of(body: Any) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    return dict(error)


async def exam_count(client: Client) -> int:
    return int(await client.app[POOL].fetchval("SELECT count(*) FROM exams"))


async def test_dry_run_reports_and_creates_nothing(client: Client) -> None:
    before = await exam_count(client)
    body = {"format": "gift", "content": gift_file().decode(), "dry_run": True}
    resp = await client.post("/api/exams/import", json=body, headers=bearer())
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert got["dry_run"] is True
    report = got["report"]
    assert report["counts"] == {"imported": 8, "changed": 2, "refused": 5}
    assert [q["id"] for q in got["questions"]][:2] == ["Capital", "Sun"]
    refused = [item for item in report["items"] if item["status"] == "refused"]
    assert all(item["notes"] for item in refused)
    assert await exam_count(client) == before


async def test_raw_moodle_import_creates_the_exam_and_exports_it_back(client: Client) -> None:
    resp = await client.post(
        "/api/exams/import?format=moodle&duration_minutes=45",
        data=moodle_quiz(),
        headers={**bearer(), "Content-Type": "application/xml"},
    )
    assert resp.status == 201, await resp.text()
    got = await resp.json()
    exam = got["exam"]
    assert exam["title"] == "Geography quiz" and exam["duration_minutes"] == 45
    assert got["report"]["counts"]["refused"] == 6
    assert len(exam["questions"]) == 13
    # The export is Moodle XML that imports as the same questions.
    export = await client.get(f"/api/exams/{exam['id']}/export?format=moodle", headers=bearer())
    assert export.status == 200, await export.text()
    assert export.content_type == "application/xml"
    assert "attachment" in export.headers["Content-Disposition"]
    again = await client.post(
        "/api/exams/import?format=moodle&dry_run=true", data=await export.read(), headers=bearer()
    )
    assert again.status == 200, await again.text()
    assert (await again.json())["questions"] == exam["questions"]
    actions = await client.app[POOL].fetch("SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id", exam["id"])
    assert [r["action"] for r in actions] == ["exam.import", "exam.export"]


async def test_qti_package_as_a_form_and_as_base64(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("format", "qti")
    form.add_field("title", "From QTI")
    form.add_field("file", qti_package(), filename="package.zip", content_type="application/zip")
    resp = await client.post("/api/exams/import", data=form, headers=bearer())
    assert resp.status == 201, await resp.text()
    got = await resp.json()
    assert got["exam"]["title"] == "From QTI"
    assert got["report"]["counts"] == {"imported": 6, "changed": 1, "refused": 3}
    body = {"format": "qti", "content_base64": base64.b64encode(qti_package()).decode(), "dry_run": True}
    resp = await client.post("/api/exams/import", json=body, headers=bearer())
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: zip_bomb(200), 413, "zip_too_large"),
        (lambda: traversal_zip("../../etc/evil.xml"), 400, "unsafe_path"),
        (lambda: traversal_zip("items/link.xml", symlink=True), 400, "unsafe_path"),
        (lambda: b"not a zip", 400, "zip_invalid"),
    ],
    ids=["zip-bomb", "traversal", "symlink", "not-zip"],
)
async def test_unsafe_packages_are_refused_in_the_error_shape(
    client: Client, make: Any, status: int, code: str
) -> None:
    before = await exam_count(client)
    resp = await client.post(
        "/api/exams/import?format=qti", data=make(), headers={**bearer(), "Content-Type": "application/zip"}
    )
    assert resp.status == status, await resp.text()
    assert error_of(await resp.json())["code"] == code
    assert await exam_count(client) == before


async def test_billion_laughs_is_refused(client: Client) -> None:
    resp = await client.post("/api/exams/import?format=moodle", data=BILLION_LAUGHS, headers=bearer())
    assert resp.status == 400
    assert error_of(await resp.json())["code"] == "xml_refused"


async def test_upload_size_is_bounded_with_and_without_a_length(client: Client) -> None:
    big = io.BytesIO(b"x" * (MAX_UPLOAD_BYTES + 1))
    resp = await client.post("/api/exams/import?format=gift", data=big, headers=bearer())
    assert resp.status == 413
    assert error_of(await resp.json())["code"] == "upload_too_large"

    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length, and far more than the limit: the server stops reading at the limit.
        nonlocal sent
        for _ in range(200):
            sent += 1
            yield b"y" * (1 << 20)

    try:
        resp = await client.post("/api/exams/import?format=gift", data=chunks(), headers=bearer())
        assert resp.status == 413
        assert error_of(await resp.json())["code"] == "upload_too_large"
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
        pass  # the server answered and closed while the client was still writing: refused early too
    assert sent < 100, f"the server read {sent} MB before refusing"


@pytest.mark.parametrize(
    ("query", "kwargs", "field"),
    [
        ("", {"json": {"format": "gift"}}, "body"),
        ("", {"json": {"format": "gift", "content": "Q {}", "content_base64": "eA=="}}, "body"),
        ("", {"json": {"format": "qti", "content_base64": "%%%not base64"}}, "content_base64"),
        ("", {"json": {"format": "docx", "content": "x"}}, "format"),
        ("", {"json": {"format": "gift", "content": "Q {}", "extra": 1}}, "extra"),
        ("", {"json": ["not", "an", "object"]}, "body"),
        ("", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "body"),
        ("?format=docx", {"data": b"x"}, "format"),
        ("", {"data": b"x"}, "format"),
        ("?format=gift&duration_minutes=0", {"data": b"Q {}"}, "duration_minutes"),
        ("?format=gift&dry_run=perhaps", {"data": b"Q {}"}, "dry_run"),
        ("?format=gift", {"data": b""}, "file"),
        ("?format=gift", {"data": b"::Only::text, no answers"}, "items.1"),
        ("?format=moodle", {"data": b"<quiz><question"}, "file"),
        (
            "?format=gift",
            {"data": b"--b\r\ngarbage", "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
            "",
        ),
    ],
)
async def test_malformed_requests_are_400_with_fields(
    client: Client, query: str, kwargs: dict[str, Any], field: str
) -> None:
    headers = {**bearer(), **kwargs.pop("headers", {})}
    resp = await client.post(f"/api/exams/import{query}", headers=headers, **kwargs)
    assert resp.status == 400, await resp.text()
    error = error_of(await resp.json())
    if field:
        assert any(name.startswith(field) for name in error.get("fields", {})), error


async def test_a_form_without_a_file(client: Client) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("format", "gift")
    form.add_field("dry_run", "true")
    resp = await client.post("/api/exams/import", data=form, headers=bearer())
    assert resp.status == 400
    assert error_of(await resp.json())["fields"] == {"file": "missing"}


async def test_only_teachers_import_and_only_owners_export(client: Client) -> None:
    body = {"format": "gift", "content": "::Q::Why? {}"}
    student = TokenService(SECRET).mint("student", "s-1", exam_id="e", room_id="r")
    resp = await client.post("/api/exams/import", json=body, headers=bearer(student))
    assert resp.status == 403
    assert error_of(await resp.json())["code"] == "forbidden"
    resp = await client.post("/api/exams/import", json=body)
    assert resp.status == 401
    owner = await teacher_token(client, [], sub="t-owner")
    resp = await client.post("/api/exams/import", json=body, headers=bearer(owner))
    assert resp.status == 201, await resp.text()
    exam = (await resp.json())["exam"]
    assert exam["created_by"] == "t-owner"
    other = await teacher_token(client, [], sub="t-other")
    # A proctor of one of its rooms reads the exam, keys included, but may not export it.
    room = await make_room(client, exam["id"], token=owner)
    proctor = await teacher_token(client, [room["id"]], sub="t-proctor")
    assert (await client.get(f"/api/exams/{exam['id']}", headers=bearer(proctor))).status == 200
    for token, status in ((owner, 200), (other, 403), (proctor, 403), (student, 403)):
        resp = await client.get(f"/api/exams/{exam['id']}/export", headers=bearer(token))
        assert resp.status == status, (token, await resp.text())
    resp = await client.get(f"/api/exams/{exam['id']}/export?format=gift", headers=bearer(owner))
    assert resp.status == 400
    resp = await client.get("/api/exams/not-a-uuid/export", headers=bearer())
    assert resp.status == 404
    error_of(await resp.json())


async def test_a_signed_in_teacher_uploads_the_raw_file_with_the_csrf_token(client: Client) -> None:
    # What the import page sends: the session cookie, the file as the body, the CSRF header.
    account = await add_account(client, "teacher")
    session = await sign_in(client, account.email)
    url = "/api/exams/import?format=gift&title=From+the+page"
    resp = await client.post(url, data=gift_file(), headers=session.headers(csrf=False))
    assert resp.status == 403
    assert error_of(await resp.json())["code"] == "csrf"
    resp = await client.post(url, data=gift_file(), headers=session.headers())
    assert resp.status == 201, await resp.text()
    exam = (await resp.json())["exam"]
    assert exam["title"] == "From the page" and exam["created_by"] == account.id
    export = await client.get(f"/api/exams/{exam['id']}/export", headers=session.headers())
    assert export.status == 200
