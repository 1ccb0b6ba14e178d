"""Keyboard only: a student takes the whole exam with Tab, Space and Enter (focus always
visible), and a teacher reaches a student's tile, opens the drawer with Enter and closes it with
Escape, the focus going back to the tile. The live regions speak without flooding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support.browser import Browsers, Node
from tests.support.node import EXAM_BODY

pytestmark = pytest.mark.slow

FOCUSED = """() => {
    const node = document.activeElement;
    const style = getComputedStyle(node);
    return {id: node.id, tag: node.tagName, type: node.type || '', cls: node.className || '',
            outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
}"""


async def tab_to(page: Any, selector: str, limit: int = 25) -> list[str]:
    """Press Tab until `selector` has the focus; every stop on the way must show its focus."""
    path = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        path.append(focused["id"] or focused["tag"])
        assert focused["outline"], f"no visible focus on {focused}"
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return path
    raise AssertionError(f"Tab never reached {selector}: {path}")


async def test_student_exam_and_teacher_drawer_by_keyboard(browsers: Browsers, node: Node, face_video: Path) -> None:
    # One minute: the timer's last threshold ("1 minute left") is announced once, early.
    room = await node.room({**EXAM_BODY, "duration_minutes": 1})
    [invite] = await node.invites(room["id"], ["Ada Lovelace"])
    student = await (await browsers.context(face_video)).new_page()
    await student.goto(f"{node.url}/exam/#token={invite['token']}")
    await student.locator("#consent-exam:not(:empty)").wait_for()

    path = await tab_to(student, "#consent-agree")
    # The screen takes the focus: the language picker, then the consent checkbox.
    assert path == ["language-0", "consent-agree"], path
    await student.keyboard.press("Space")
    await expect(student.locator("#consent-agree")).to_be_checked()
    await tab_to(student, "#consent-continue", limit=2)
    await student.keyboard.press("Enter")
    await expect(student.locator("#start")).to_be_focused(timeout=10_000)  # the check moves focus on
    await student.keyboard.press("Enter")
    await student.locator("#questions fieldset").first.wait_for()

    await tab_to(student, "#q-q1-o0")
    await student.keyboard.press("ArrowDown")  # radios: arrows choose within the group
    await expect(student.locator("#q-q1-o1")).to_be_checked()
    await tab_to(student, "#q-q2-o0", limit=2)
    await student.keyboard.press("Space")
    await tab_to(student, "#q-q2-o2", limit=3)
    await student.keyboard.press("Space")
    await tab_to(student, "#q-q3-text", limit=2)
    await student.keyboard.type("Because it is.")
    await tab_to(student, "#hand-text", limit=3)
    for qid in ("q1", "q2", "q3"):
        await student.locator(f"#q-{qid}-status[data-state=saved]").wait_for()
    assert await student.locator("#q-q2 input:checked").count() == 2

    # Live regions: the ticking clock is silent, its threshold is said once, politely.
    assert await student.get_attribute("#timer", "aria-live") == "off"
    assert await student.get_attribute("#timer-alert", "aria-live") == "polite"
    assert await student.get_attribute("#messages", "aria-live") == "polite"
    assert await student.get_attribute("#q-q1-status", "aria-live") == "polite"
    await expect(student.locator("#timer-alert")).to_have_text("1 minute left.")
    changes = await student.evaluate("""() => new Promise((resolve) => {
        let n = 0;
        new MutationObserver(() => { n += 1; }).observe(document.querySelector('#timer-alert'),
            {childList: true, characterData: true, subtree: true});
        setTimeout(() => resolve(n), 2000);
    })""")
    assert changes == 0  # not every second

    # The teacher: Tab to the tile, Enter opens the drawer, Escape closes it, focus goes back.
    teacher_token = await node.teacher_token([room["id"]])
    teacher = await (await browsers.context(face_video)).new_page()
    await teacher.goto(f"{node.url}/teacher/?room={room['id']}#token={teacher_token}")
    await teacher.locator("#tiles .tile").wait_for()
    await tab_to(teacher, "#tiles .tile", limit=30)
    await teacher.keyboard.press("Enter")
    await expect(teacher.locator("#drawer")).to_have_attribute("open", "")
    await teacher.locator("#drawer-timeline li").first.wait_for()
    assert await teacher.evaluate("document.querySelector('#drawer').contains(document.activeElement)")
    await teacher.keyboard.press("Escape")
    await expect(teacher.locator("#drawer")).not_to_have_attribute("open", "")
    assert await teacher.evaluate("document.activeElement.matches('#tiles .tile')")

    # Back to the student: Tab to Submit, Enter, Tab to the dialog's Submit, Enter.
    await tab_to(student, "#submit", limit=4)
    await student.keyboard.press("Enter")
    await student.locator("dialog.confirm[open]").wait_for()
    await tab_to(student, "dialog.confirm button[value=ok]", limit=3)
    await student.keyboard.press("Enter")
    await student.locator("#done:not([hidden])").wait_for()
    await expect(student.locator("#done-h")).to_be_visible()
