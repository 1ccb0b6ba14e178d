"""Accessibility checks in a real Chromium: axe-core (npm, a devDependency) injected into each
page, the page table the checks walk, and the layout checks of small screens and zoom.

axe is injected with an init script (CDP `Page.addScriptToEvaluateOnNewDocument`), which a
page's Content-Security-Policy does not govern: the pages keep `script-src 'self'` and no
inline script is ever added to them.

To check a new teacher page, add one line to `PAGES` (docs/accessibility.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.http.pages import node_modules

# axe's tags for WCAG 2.0/2.1 A and AA, plus its best practices (landmarks, headings).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = ("serious", "critical")
# The viewports every page is checked at: a laptop and a phone held upright.
DESKTOP = (1280, 720)
PHONE = (360, 640)


@dataclass(frozen=True)
class PageState:
    """A teacher page reachable by its URL; `{room}`, `{attempt}` and `{exam}` are filled by the walk."""

    name: str
    path: str
    ready: str  # a selector that is visible once the page has rendered its state


# Every teacher page and the state it is checked in. The student page's states (consent,
# system check, exam, done) are reached by taking the exam, so the walk drives them itself.
PAGES: tuple[PageState, ...] = (
    PageState("teacher-home", "/teacher/", "#home-rooms tbody tr"),
    PageState("dashboard", "/teacher/?room={room}", "#tiles .tile"),
    PageState("editor", "/teacher/editor.html", "#exam-card h2"),
    # The exam open in the rewritten form (lifecycle buttons, versions, each kind's key fields).
    PageState("editor-exam", "/teacher/editor.html?edit={exam}", "#version-notice:not(:empty)"),
    PageState("grading", "/teacher/grading.html?room={room}&attempt={attempt}", "#sheet .grade-card"),
    PageState("queue", "/teacher/queue.html", "#queue-rows tr"),
    PageState("results", "/teacher/results.html?room={room}", "#stats-rows tr"),
    PageState("import", "/teacher/import.html", "#import-form"),
    PageState("lti", "/teacher/lti.html", "#register-form"),
    PageState("review", "/teacher/review.html?room={room}&attempt={attempt}", "#tl-chart svg"),
    PageState("setup", "/teacher/setup", "#setup-form"),
    PageState("account", "/teacher/account.html", "#sessions-table tbody tr"),
)
STUDENT_STATES = ("consent", "check", "exam", "done")


def axe_source() -> Path:
    modules = node_modules()
    path = modules / "axe-core" / "axe.min.js" if modules else None
    if path is None or not path.is_file():
        pytest.fail("axe-core is missing: run ./install.sh test (npm ci installs the devDependencies)", pytrace=False)
    return path


async def install_axe(context: Any) -> None:
    """Every page this context opens gets `window.axe` before its own scripts run."""
    await context.add_init_script(path=str(axe_source()))


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    result = await page.evaluate("(options) => window.axe.run(document, options)", options)
    return list(result["violations"])


def describe(state: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per failing node: the rule, its impact, the element, what is wrong, the help URL."""
    lines = []
    for rule in violations:
        if rule["impact"] not in FAILING_IMPACTS:
            continue
        for node in rule["nodes"]:
            target = " ".join(json.dumps(t) for t in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"{state}: {rule['id']} ({rule['impact']}) at {target}: {summary} — {rule['helpUrl']}")
    return lines


async def overflow(page: Any) -> dict[str, int]:
    """How wide the document is against the viewport: more means a horizontal scroll bar."""
    result: dict[str, int] = await page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, width: window.innerWidth})"
    )
    return result


# WCAG 1.4.12 Text Spacing: the user's overrides, applied to every element.
TEXT_SPACING = """() => {
    for (const node of document.querySelectorAll('*')) {
        node.style.setProperty('line-height', '1.5', 'important');
        node.style.setProperty('letter-spacing', '0.12em', 'important');
        node.style.setProperty('word-spacing', '0.16em', 'important');
    }
    for (const p of document.querySelectorAll('p')) p.style.setProperty('margin-bottom', '2em', 'important');
}"""


# Undo TEXT_SPACING: the walk goes on with the page as its author styled it.
TEXT_SPACING_OFF = """() => {
    for (const node of document.querySelectorAll('*')) {
        for (const name of ['line-height', 'letter-spacing', 'word-spacing', 'margin-bottom']) {
            node.style.removeProperty(name);
        }
        if (!node.getAttribute('style')) node.removeAttribute('style');
    }
}"""
# 200 % zoom of a 1280 px window is a 640 px wide layout viewport (WCAG 1.4.4 Resize Text).
ZOOM_200 = (640, 360)


async def zoom_and_spacing(page: Any) -> dict[str, int]:
    """The page at 200 % zoom with the user's text-spacing overrides: how wide it then is."""
    await page.set_viewport_size({"width": ZOOM_200[0], "height": ZOOM_200[1]})
    await page.evaluate(TEXT_SPACING)
    await page.wait_for_timeout(60)
    try:
        return await overflow(page)
    finally:
        await page.evaluate(TEXT_SPACING_OFF)


async def untranslated_text(page: Any) -> list[str]:
    """Visible text in Latin letters on a page shown in a language written in another script.

    What people typed (names, answers, titles) and codes are marked by the pages with
    `translate="no"` (or sit in form fields, which are not text nodes): everything else must
    have come from the catalog."""
    found: list[str] = await page.evaluate(
        """(allowed) => {
        const ALLOWED = new RegExp(allowed, 'g');
        const out = [];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            // Names of products, formats and protocols are the same in every language.
            const text = node.textContent.trim().replace(ALLOWED, '');
            if (!/[A-Za-z]{2,}/.test(text)) continue;
            const parent = node.parentElement;
            if (!parent || parent.closest('[translate="no"], script, style, option[value=""]')) continue;
            if (!parent.checkVisibility?.()) continue;
            out.push(text.slice(0, 80));
        }
        return out;
    }""",
        LATIN_ALLOWED,
    )
    return found


# Words a Hebrew page keeps in Latin letters: product, format and protocol names, and the
# `#code=` of a link (they are not translated in any language).
LATIN_WORDS = (
    "CSV API SSO HTTP HTTPS https Proctor Chrome Chromium Firefox Edge Safari Windows Linux macOS iOS Android Ctrl code"
    # the question formats and the learning-platform standards the import and LTI pages name
    " http Moodle XML GIFT QTI zip LTI URI OIDC JWKS Canvas MB xml txt gift"
)
LATIN_ALLOWED = r"\b(" + "|".join(LATIN_WORDS.split()) + r")\b"
