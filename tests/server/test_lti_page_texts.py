"""The server-rendered LTI pages speak the reader's language: every English sentence the pages
say (server/lti/*.py through page_texts.say/word and the service pages' titles and messages)
and every launch refusal's reason has a Hebrew text in lti.po; a launch whose `locale` claim is
Hebrew, or a refused launch from a Hebrew browser, gets a right-to-left page in Hebrew."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from server.http import messages
from server.lti import page_texts, tool
from tests.support.lti_platform import LtiWorld

LTI = Path(tool.__file__).resolve().parent
PAGE_CALLS = {"error_page", "lti_page", "autopost"}  # (title, message, ...) of server/lti/service_pages.py


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found[node.targets[0].id] = node.value.value
    return found


def said_in_source() -> set[str]:
    """The msgids: literal (or module-constant) texts given to say(), word(), _() and the page calls."""
    texts: set[str] = set()
    for path in sorted(LTI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _constants(tree)
        uses_service_pages = "service_pages import" in path.read_text(encoding="utf-8")

        def text_of(arg: ast.expr, names: dict[str, str] = names) -> str | None:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                return arg.value
            return names.get(arg.id) if isinstance(arg, ast.Name) else None

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            if name in ("say", "word") and len(node.args) >= 2:
                picked = [node.args[1]]
            elif name == "_" and node.args:
                picked = [node.args[0]]
            elif name in PAGE_CALLS and uses_service_pages:
                picked = node.args[:2] if name == "error_page" else node.args[:1]
            elif name == "LaunchError" and node.args:
                reason = text_of(node.args[0])
                texts |= {f"launch.{reason}"} if reason else set()
                continue
            else:
                continue
            texts |= {text for arg in picked if (text := text_of(arg))}
    texts |= set(tool._TITLES.values()) | {"The tool is unavailable"}
    return texts


def test_every_sentence_of_the_lti_pages_has_a_hebrew_text() -> None:
    said = said_in_source()
    assert len(said) > 60 and "Set up this activity" in said and "launch.bad_state" in said  # the extraction works
    hebrew = messages.catalogs(page_texts.DOMAIN)["he"]
    assert sorted(said - set(hebrew)) == []
    assert all(re.search("[\u0590-\u05ff]", text) for text in hebrew.values())
    # The same placeholders in both languages.
    for msgid, text in hebrew.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", msgid)), msgid


def test_words_are_escaped_and_untranslated_sentences_stay_english() -> None:
    assert (
        page_texts.say("he", "Please check these fields: {fields}.", fields="<b>") == "בדקו את השדות האלה: &lt;b&gt;."
    )
    assert page_texts.say("en", "Reference: {code}", raw={"code": "<code>x</code>"}) == "Reference: <code>x</code>"
    assert page_texts.word("he", "A sentence no catalog has") == "A sentence no catalog has"
    assert page_texts.direction("he") == "rtl" and page_texts.direction("en") == "ltr"
    assert page_texts.launch_error_text("en", "bad_state", "The server's words.") == "The server's words."


async def test_a_hebrew_launch_gets_a_hebrew_right_to_left_page(lti_world: LtiWorld) -> None:
    state, nonce, _ = await lti_world.login("learner-1", "link-he")
    message = lti_world.platform.launch_claims(lti_world.platform.users["learner-1"], "link-he", nonce)
    message["locale"] = "he-IL"
    code, body, _ = await lti_world.post_launch({"id_token": lti_world.platform.sign(message), "state": state})
    assert code == 200 and 'id="lti-not-ready"' in body, body[:500]
    assert '<html lang="he" dir="rtl">' in body and "הפעילות הזו עדיין לא הוגדרה" in body


async def test_a_refused_launch_is_said_in_the_browsers_language(lti_world: LtiWorld) -> None:
    headers = {"Accept-Language": "he-IL,he;q=0.9"}
    async with lti_world.http.post(
        lti_world.node.url + "/lti/launch", data={"state": "x"}, headers=headers, allow_redirects=False
    ) as resp:
        body = await resp.text()
    assert resp.status == 400 and '<html lang="he" dir="rtl">' in body, body[:500]
    assert "<title>הפתיחה נכשלה</title>" in body and '<code id="lti-reason">bad_form</code>' in body
    assert "אי אפשר היה לקרוא את הטופס" in body
    async with lti_world.http.post(lti_world.node.url + "/lti/launch", data={"state": "x"}) as resp:
        english = await resp.text()
    assert '<html lang="en" dir="ltr">' in english and "Launch failed" in english
