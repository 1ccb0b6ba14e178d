"""A student takes an exam in real Chromium over https:// from a `proctor serve` with TLS.

The browser trusts the test's certificate by its public key only
(`--ignore-certificate-errors-spki-list`, never a blanket --ignore-certificate-errors), so the
page is a secure context for the reason a student's is: a certificate the browser accepts.
The node is reached by a name (exam.test, mapped to 127.0.0.1 in Chromium's resolver), not
as 127.0.0.1, because a loopback address is a secure context even over plain http.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from playwright.async_api import expect

from tests.support.browser import CHROMIUM_ARGS, screenshot
from tests.support.https import HttpsNode, LocalCA, ServerCert
from tests.support.node import ADMIN, EXAM_BODY, bearer
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.slow

HOST = "exam.test"


@pytest.fixture
async def https_node(
    postgres: PostgresServer,
    tmp_path: Path,
    vendor_ready: None,
) -> AsyncIterator[tuple[HttpsNode, LocalCA, ServerCert, str]]:
    ca = LocalCA()
    served = ca.issue(serial=4242, names=(HOST, "localhost"))
    served.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    database = await postgres.create_database()
    node = HttpsNode(tmp_path, database, tmp_path / "cert.pem", tmp_path / "key.pem")
    node.env["PROCTOR_PUBLIC_URL"] = f"https://{HOST}:{node.port}"
    node.start(ca.client_context())
    try:
        yield node, ca, served, database
    finally:
        code = node.stop()
        assert code == 0, node.output()


async def test_student_takes_an_exam_over_https_with_the_camera(
    https_node: tuple[HttpsNode, LocalCA, ServerCert, str], chromium: str, face_video: Path
) -> None:
    node, ca, served, database = https_node
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca.client_context())) as http:

        async def rest(path: str, body: Any) -> Any:
            async with http.post(node.url + path, json=body, headers=bearer(ADMIN)) as resp:
                assert resp.status == 201, (path, resp.status, await resp.text())
                return await resp.json()

        exam = await rest("/api/exams", EXAM_BODY)
        room = await rest(f"/api/exams/{exam['id']}/rooms", {"name": "Hall A", "seats": 5})
        invite = (await rest(f"/api/rooms/{room['id']}/invites", {"students": [{"id": "s-1", "name": "Ada"}]}))[
            "invites"
        ][0]
    origin = f"https://{HOST}:{node.port}"
    assert invite["url"].startswith(f"{origin}/exam/#token="), invite["url"]

    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[dev]'", pytrace=False)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                f"--use-file-for-fake-video-capture={face_video}",
                f"--ignore-certificate-errors-spki-list={served.spki_sha256}",
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
            ],
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 720})
            context.set_default_timeout(10_000)
            await context.grant_permissions(["camera"], origin=origin)
            page = await context.new_page()
            errors: list[str] = []
            console: list[str] = []
            sockets: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: console.append(msg.text))
            page.on("websocket", lambda ws: sockets.append(ws.url))

            response = await page.goto(invite["url"])
            assert response is not None and response.ok
            assert await page.evaluate("window.isSecureContext") is True
            assert await page.evaluate("location.protocol") == "https:"

            await page.get_by_label("I have read this and agree").check()
            await page.get_by_role("button", name="Continue to the system check").click()
            start = page.get_by_role("button", name="Start the exam")
            try:
                await expect(start).to_be_enabled(timeout=15_000)
            except AssertionError:
                checks = await page.locator("#check-list").inner_text()
                raise AssertionError(f"system check failed:\n{checks}\nconsole: {console}") from None
            # getUserMedia gave a live video track (the y4m file), shown in the preview.
            tracks = await page.evaluate("""() => {
                const stream = document.querySelector('#preview').srcObject;
                return stream ? stream.getVideoTracks().map(t => t.readyState) : [];
            }""")
            assert tracks == ["live"], tracks
            await screenshot(page, "https-student-check")
            await start.click()

            await page.get_by_role("radio", name="4").check()
            await page.locator("#q-q1-status[data-state=saved]").wait_for(timeout=5_000)
            await page.get_by_role("button", name="Submit the exam").click()
            await page.locator("dialog.confirm").get_by_role("button", name="Submit").click()
            await page.get_by_role("heading", name="Your exam has been submitted").wait_for(timeout=5_000)
            await screenshot(page, "https-student-done")

            assert errors == [], errors
            # The CSP names this origin: the socket went to wss:// here and nothing was refused.
            assert any(url.startswith(f"wss://{HOST}:{node.port}/socket.io/") for url in sockets), sockets
            refused = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
            assert refused == [], refused
        finally:
            await browser.close()

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT a.status, an.question_id, an.value FROM attempts a JOIN answers an ON an.attempt_id = a.id "
            "WHERE a.room_id = $1",
            room["id"],
        )
    finally:
        await conn.close()
    assert [(r["status"], r["question_id"]) for r in rows] == [("submitted", "q1")], rows
    assert json.loads(rows[0]["value"]) == 1  # the index of "4"
