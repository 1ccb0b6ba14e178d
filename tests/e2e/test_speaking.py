"""Speaking end to end: Chromium's fake microphone plays a WAV (espeak-ng speech, then
silence, looped) beside a y4m camera. An exam that listens raises `speaking` for the speaker
only, with the duration; an exam that does not never asks for the microphone, and its page's
Permissions-Policy would refuse it if it did."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import expect

from server.http.pages import MIC_POLICY
from tests.support.browser import CHROMIUM_ARGS, Browsers, Node
from tests.support.node import ADMIN, EXAM_BODY
from tests.support.speech import espeak_pcm, resample, silence, write_wav

pytestmark = pytest.mark.slow

SPEAKING_EXAM: dict[str, Any] = {
    **EXAM_BODY,
    "rules": {
        "analysis": {
            "enabled": True,
            "speaking": True,
            "speaking_seconds": 2.0,
            "speaking_window_seconds": 6.0,
            # A still camera picture: the face rules stay quiet unless something is wrong.
            "no_face_seconds": 600,
            "looking_away_seconds": 600,
        }
    },
}
CAMERA_ONLY_EXAM: dict[str, Any] = {**EXAM_BODY, "rules": {"analysis": {"enabled": True}}}
RATE = 48_000

# Wraps getUserMedia before any page script runs, so the test reads the constraints used.
RECORD_CONSTRAINTS = """
window.__constraints = [];
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (c) => {
  window.__constraints.push(JSON.parse(JSON.stringify(c)));
  return original(c);
};
"""


@pytest.fixture(scope="module")
def talking_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    speech = resample(espeak_pcm(), 16_000, RATE)
    pcm = np.concatenate([silence(1, RATE), speech, silence(10, RATE)])
    return write_wav(tmp_path_factory.mktemp("mic") / "talking.wav", pcm, RATE)


@pytest.fixture(scope="module")
def silent_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("mic") / "silent.wav", silence(20, RATE), RATE)


async def student_page(browsers: Browsers, camera: Path, microphone: Path, url: str) -> Any:
    key = f"{camera}|{microphone}"
    if key not in browsers.launched:
        browsers.launched[key] = await browsers.playwright.chromium.launch(
            executable_path=browsers.chromium,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                f"--use-file-for-fake-video-capture={camera}",
                f"--use-file-for-fake-audio-capture={microphone}",
            ],
        )
    context = await browsers.launched[key].new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(10_000)
    await context.grant_permissions(["camera", "microphone"])
    browsers.contexts.append(context)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.add_init_script(RECORD_CONSTRAINTS)
    await page.goto(url)
    return page


async def start_exam(page: Any) -> None:
    await page.get_by_label("I have read this and agree").check()
    await page.get_by_role("button", name="Continue to the system check").click()
    start = page.get_by_role("button", name="Start the exam")
    await expect(start).to_be_enabled(timeout=15_000)
    await start.click()
    await page.locator("#questions fieldset").first.wait_for()


async def speaking_entries(node: Node, attempt_id: str) -> list[dict[str, Any]]:
    timeline = await node.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    return [e for e in timeline["entries"] if e["type"] == "violation" and e.get("kind") == "speaking"]


async def attempt_ids(node: Node, room_id: str) -> dict[str, str]:
    attempts = (await node.rest("GET", f"/api/rooms/{room_id}/attempts"))["attempts"]
    return {a["student_name"]: a["id"] for a in attempts}


async def policy(node: Node, path: str) -> str:
    async with node.http.get(node.url + path) as resp:
        assert resp.status == 200, path
        return resp.headers["Permissions-Policy"]


async def test_the_microphone_policy_is_opened_only_for_a_speaking_exam(node: Node) -> None:
    speaking = await node.room(SPEAKING_EXAM)
    camera_only = await node.room(CAMERA_ONLY_EXAM)
    closed = "camera=(self), microphone=()"
    assert await policy(node, "/exam/") == closed
    assert await policy(node, f"/exam/?mic={speaking['exam_id']}") == MIC_POLICY == "camera=(self), microphone=(self)"
    assert await policy(node, f"/exam/?mic={camera_only['exam_id']}") == closed
    for junk in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00", ""):
        assert await policy(node, f"/exam/?mic={junk}") == closed, junk
    # Only the exam page: no other page or file gets the microphone by asking.
    assert await policy(node, f"/teacher/?mic={speaking['exam_id']}") == closed
    assert await policy(node, f"/static/js/exam.js?mic={speaking['exam_id']}") == closed


async def test_speech_raises_speaking_for_the_speaker_only_with_its_duration(
    browsers: Browsers, node: Node, face_video: Path, talking_wav: Path, silent_wav: Path
) -> None:
    room = await node.room(SPEAKING_EXAM)
    talker, quiet = await node.invites(room["id"], ["Grace Hopper", "Quiet Student"])
    pages = {}
    for invite, wav in ((talker, talking_wav), (quiet, silent_wav)):
        page = await student_page(browsers, face_video, wav, f"{node.url}/exam/#token={invite['token']}")
        # The page reloaded itself at the address whose header opens the microphone.
        await page.wait_for_url(f"**/exam/?mic={room['exam_id']}")
        await expect(page.locator("#consent-mic")).to_contain_text("no audio is stored")
        await expect(page.locator("#consent-no-mic")).to_be_hidden()
        await start_exam(page)
        await expect(page.locator("#check-list li.pass", has_text="Microphone")).to_have_count(1)
        pages[invite["name"]] = page
    started = time.monotonic()
    for page in pages.values():
        constraints = await page.evaluate("window.__constraints")
        assert constraints and all(c["audio"] for c in constraints), constraints
        assert await page.evaluate("document.featurePolicy.allowsFeature('microphone')") is True

    ids = await attempt_ids(node, room["id"])
    found: list[dict[str, Any]] = []
    while not found:
        assert time.monotonic() - started < 40, "no speaking violation within 40 s of speech"
        await asyncio.sleep(1)
        found = await speaking_entries(node, ids["Grace Hopper"])
    [first, *_] = found
    assert first["source"] == "server"
    assert 2.0 <= first["details"]["duration"] < 3.0, first
    assert first["details"]["explanation"].startswith("Speech heard for ")
    assert first["evidence_id"], "the camera frame of the moment is the evidence (no audio is kept)"
    # The quiet student's microphone is listened to just as long and raises nothing.
    await asyncio.sleep(3)
    assert await speaking_entries(node, ids["Quiet Student"]) == []
    for page in pages.values():
        assert page.errors == []


async def test_an_exam_without_speaking_never_asks_for_the_microphone(
    browsers: Browsers, node: Node, face_video: Path, talking_wav: Path
) -> None:
    room = await node.room(CAMERA_ONLY_EXAM)
    [invite] = await node.invites(room["id"], ["Camera Only"])
    page = await student_page(browsers, face_video, talking_wav, f"{node.url}/exam/#token={invite['token']}")
    await expect(page.locator("#consent-no-mic")).to_be_visible()
    await expect(page.locator("#consent-mic")).to_be_hidden()
    await start_exam(page)
    assert "?mic=" not in page.url
    assert await page.locator("#check-list li", has_text="Microphone").count() == 0
    constraints = await page.evaluate("window.__constraints")
    assert constraints and all(c["audio"] is False for c in constraints), constraints
    assert await page.evaluate("document.featurePolicy.allowsFeature('microphone')") is False
    # Even asked for, the header refuses it (the fake-UI flag would otherwise grant it).
    refused = await page.evaluate(
        "navigator.mediaDevices.getUserMedia({audio: true}).then(() => 'granted', (e) => e.name)"
    )
    assert refused == "NotAllowedError"
    assert await page.evaluate("document.querySelector('#selfview').srcObject.getAudioTracks().length") == 0
    await asyncio.sleep(8)  # as long as the speaker above took to be flagged
    ids = await attempt_ids(node, room["id"])
    assert await speaking_entries(node, ids["Camera Only"]) == []
    assert page.errors == []


async def test_the_editor_switches_speaking_on_only_with_the_camera_analysis(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/editor.html")
    await page.get_by_label("Teacher or admin token").fill(ADMIN)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Title").fill("Oral-free quiz")
    await page.get_by_label("Question text").fill("Which are vectors?")
    await page.get_by_label("Options, one a line").fill("velocity\nmass")
    await page.get_by_label("Also listen for speech on the microphone").check()
    await page.get_by_role("button", name="Create exam").click()
    await expect(page.locator("#exam-result")).to_contain_text("needs analysis.enabled")
    await page.get_by_label("Analyse the camera on the server").check()
    await page.get_by_role("button", name="Create exam").click()
    await expect(page.locator("#exam-result")).to_contain_text("Exam created")
    exam_id = (await page.locator("#exam-result").inner_text()).rsplit("id ", 1)[1].strip()
    exam = await node.rest("GET", f"/api/exams/{exam_id}")
    assert exam["rules"]["analysis"]["speaking"] is True and exam["speaking_enabled"] is True
    assert await policy(node, f"/exam/?mic={exam_id}") == MIC_POLICY
