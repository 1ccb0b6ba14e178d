"""A whole exam on a phone over a weak link: 360x640 portrait without sideways scrolling, the
network throttled by Chromium (400 kbit/s, 300 ms latency, packet loss where the CDP of this
Chromium has it) and cut for a few seconds mid-exam. The page says it is offline (visibly, in a
live region), answers queue in the outbox and are stored exactly once after the reconnect, the
timer follows the server's deadline, and the submit goes through."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import expect

from server.settings import Settings
from tests.support.a11y import PHONE, overflow
from tests.support.browser import Browsers, Node, screenshot
from tests.support.node import EXAM_BODY

pytestmark = pytest.mark.slow

# 400 kbit/s both ways (bytes per second), 300 ms of latency, 2 % loss.
THROTTLE = {"offline": False, "latency": 300, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
LOSS = {"packetLoss": 2.0}
LOW_BITRATE = 30_000  # server/static/js/analysis.js


async def throttle(cdp: Any) -> bool:
    """Apply the weak link; True when this Chromium also drops packets (newer CDP only)."""
    try:
        await cdp.send("Network.emulateNetworkConditions", {**THROTTLE, **LOSS})
        return True
    except Exception:
        await cdp.send("Network.emulateNetworkConditions", THROTTLE)
        return False


async def no_sideways_scroll(page: Any, state: str) -> None:
    size = await overflow(page)
    assert size["scroll"] <= PHONE[0], f"{state}: {size['scroll']} px wide on a {PHONE[0]} px screen"
    await screenshot(page, f"weak-network-{state}-360")


def seconds_shown(text: str) -> int:
    minutes, seconds = re.fullmatch(r"(\d+):(\d\d)", text.strip()).groups()  # type: ignore[union-attr]
    return int(minutes) * 60 + int(seconds)


async def test_a_whole_exam_on_a_phone_over_a_weak_link(
    browsers: Browsers, node: Node, face_video: Path, e2e_settings: Settings
) -> None:
    # With the camera analysed on the server: its uplink must give way to the answers.
    room = await node.room({**EXAM_BODY, "rules": {"analysis": {"enabled": True}}})
    [invite] = await node.invites(room["id"], ["Ada Lovelace"])
    context = await browsers.context(face_video, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(30_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    lossy = await throttle(cdp)

    await page.goto(f"{node.url}/exam/#token={invite['token']}")
    await page.locator("#consent-exam:not(:empty)").wait_for()
    await no_sideways_scroll(page, "consent")
    await page.locator("#consent-agree").check()
    await page.locator("#consent-continue").click()
    await expect(page.locator("#start")).to_be_enabled()
    await no_sideways_scroll(page, "check")
    await page.locator("#start").click()
    await page.locator("#questions fieldset").first.wait_for()
    await no_sideways_scroll(page, "exam")

    await page.locator("#q-q1-o1").check()
    await page.locator("#q-q1-status[data-state=saved]").wait_for()

    # The link goes away: the page says so at once, answers wait on the device.
    await context.set_offline(True)
    banner = page.locator("#offline")
    await expect(banner).to_be_visible(timeout=5_000)
    await expect(banner).to_contain_text("You are offline")
    assert await banner.get_attribute("aria-live") == "polite" and await banner.get_attribute("role") == "status"
    await page.locator("#q-q2-o0").check()
    await page.locator("#q-q2-o2").check()
    await page.locator("#q-q3-text").fill("Because it is.")
    await page.locator("#q-q3-text").blur()
    await page.locator("#q-q3-status[data-state=waiting]").wait_for()
    await expect(banner).to_contain_text("waiting on this device")
    # Answers are waiting: the camera track to the server is lowered, and the page says so.
    uplink = page.locator("#uplink-note")
    await expect(uplink).to_have_attribute("data-lowered", "true", timeout=5_000)
    await expect(uplink).to_be_visible()
    # The node's default transport is snapshots over the exam's socket (docs/architecture.md):
    # they thin out to one small frame every five intervals (js/snapshots.js). With the WebRTC
    # track, the RTCRtpSender's own cap is read back: 30 kbit/s while answers wait.
    transport = await uplink.get_attribute("data-transport")
    assert transport == e2e_settings.analysis_transport, transport
    if transport == "webrtc":
        await expect(uplink).to_have_attribute("data-max-bitrate", str(LOW_BITRATE))
    queued = await page.evaluate(
        "() => Object.keys(localStorage).filter((k) => k.startsWith('proctor.outbox.'))"
        ".map((k) => JSON.parse(localStorage[k]).length).reduce((a, b) => a + b, 0)"
    )
    assert queued == 2, queued  # q2 and q3: the outbox keeps only the newest answer to a question
    await screenshot(page, "weak-network-offline-360")
    await page.wait_for_timeout(3_000)

    # Back, still weak: everything queued goes out once, and the banner goes.
    await context.set_offline(False)
    await throttle(cdp)
    for qid in ("q1", "q2", "q3"):
        await page.locator(f"#q-{qid}-status[data-state=saved]").wait_for()
    await expect(banner).to_be_hidden()
    # Nothing waits any more: the analysis uplink comes back to its normal cap (100 kbit/s).
    await expect(uplink).to_have_attribute("data-lowered", "false", timeout=15_000)
    if transport == "webrtc":
        await expect(uplink).to_have_attribute("data-max-bitrate", "100000", timeout=5_000)

    # The timer is the server's: its deadline minus now, give or take the link's delay.
    shown = seconds_shown(await page.locator("#timer-value").inner_text())
    conn = await asyncpg.connect(e2e_settings.database_url.get_secret_value())
    try:
        attempt = await conn.fetchrow("SELECT id, deadline FROM attempts WHERE room_id = $1", room["id"])
        assert attempt is not None
        left = (attempt["deadline"] - dt.datetime.now(dt.UTC)).total_seconds()
        assert abs(shown - left) <= 3, (shown, left)

        await page.locator("#submit").click()
        await page.locator("dialog.confirm button[value=ok]").click()
        await page.locator("#done:not([hidden])").wait_for()
        rows = await conn.fetch(
            "SELECT question_id, value, seq FROM answers WHERE attempt_id = $1 ORDER BY question_id", attempt["id"]
        )
        status = await conn.fetchval("SELECT status FROM attempts WHERE id = $1", attempt["id"])
    finally:
        await conn.close()
    # One row per question holding the last value, each from its own sequence number.
    assert [(r["question_id"], json.loads(r["value"])) for r in rows] == [
        ("q1", 1),
        ("q2", [0, 2]),
        ("q3", "Because it is."),
    ], rows
    seqs = [r["seq"] for r in rows]
    assert len(set(seqs)) == 3 and seqs == sorted(seqs), seqs
    assert status == "submitted"
    timeline = await node.rest("GET", f"/api/attempts/{attempt['id']}/timeline")
    answers = [(e["question_id"], e.get("seq")) for e in timeline["entries"] if e["type"] == "answer"]
    assert len(answers) == len(set(answers)), answers  # no answer recorded twice
    assert errors == [], errors
    print(f"packet loss emulated: {lossy}")
