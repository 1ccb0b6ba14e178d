"""The pages' message catalogs (server/static/i18n/*.json): every key the pages use is in every
catalog, the catalogs agree on keys, placeholders and plural forms, and no page holds text that
does not come from them."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from core.vocabulary import SIGNAL_KINDS
from server.http import messages
from server.http.pages import PAGES, STATIC, shipped_languages

CATALOGS = STATIC / "i18n"
JS = STATIC / "js"
# Plural categories Intl.PluralRules uses for each shipped language (CLDR).
PLURALS = {"en": {"one", "other"}, "he": {"one", "two", "other"}}
# Keys built at run time from a value (`t(\`presence.${state}\`)`): every value they can take.
DYNAMIC = {
    "presence": ["online", "reconnecting", "offline", "submitted", "paused"],
    "save": ["saving", "saved", "waiting", "failed", "paused"],
    "msg": ["warning", "message", "announce", "info"],
    "control": ["message", "warn", "pause", "resume", "extend", "terminate"],
    "source": ["server", "client"],
    "kind": [kind.id for kind in SIGNAL_KINDS],
}
KEY = r"[a-z_]+\.[a-z_.]+"


def catalog(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CATALOGS / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def placeholders(entry: Any) -> set[str]:
    texts = entry.values() if isinstance(entry, dict) else [entry]
    return {name for text in texts for name in re.findall(r"\{(\w+)\}", text)}


class StaticText(HTMLParser):
    """The keys a page names (data-i18n, data-i18n-<attr>) and any text outside them."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.keys: set[str] = set()
        self.literal: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("data-i18n") and value:
                self.keys.add(value)
        for name in ("aria-label", "placeholder", "title", "alt"):
            if named.get(name) and f"data-i18n-{name}" not in named:
                self.literal.append(f"{tag}[{name}={named[name]!r}]")
        if tag not in ("meta", "link", "input", "br", "img", "source"):
            covered = "data-i18n" in named or named.get("translate") == "no" or tag in ("script", "style", "code")
            self.stack.append((tag, covered or any(c for _, c in self.stack)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if re.search("[A-Za-z]{2,}", data) and not (self.stack and self.stack[-1][1]):
            self.literal.append(data.strip()[:60])


def keys_in_pages() -> tuple[set[str], list[str]]:
    keys: set[str] = set()
    literal: list[str] = []
    for relative in PAGES.values():
        parser = StaticText()
        parser.feed((STATIC / relative).read_text(encoding="utf-8"))
        keys |= parser.keys
        literal += [f"{relative}: {text}" for text in parser.literal]
    return keys, literal


def keys_in_scripts() -> set[str]:
    keys: set[str] = set()
    namespaces: set[str] = set()
    sources = [path.read_text(encoding="utf-8") for path in sorted(JS.glob("*.js"))]
    for source in sources:
        for call in re.findall(r"\bt\(([^()]*)", source):
            found = re.findall(rf'"({KEY})"', call)
            keys |= set(found)
        namespaces |= {key.split(".")[0] for key in keys}
    # Keys kept in tables and passed to t() later (CONFIRM = {pause: "confirm.pause"}).
    for source in sources:
        keys |= {key for key in re.findall(rf'"({KEY})"', source) if key.split(".")[0] in namespaces}
    keys |= {f"{prefix}.{value}" for prefix, values in DYNAMIC.items() for value in values}
    return keys


def test_both_catalogs_have_the_same_keys_placeholders_and_plural_forms() -> None:
    shipped = {path.stem: catalog(path.stem) for path in CATALOGS.glob("*.json")}
    assert set(shipped) >= {"en", "he"}
    english = shipped["en"]
    for lang, texts in shipped.items():
        assert set(texts) == set(english), (lang, sorted(set(texts) ^ set(english)))
        assert texts["_meta.dir"] in ("ltr", "rtl")
        for key, entry in texts.items():
            assert placeholders(entry) <= placeholders(english[key]) | {"count"}, (lang, key)
            if isinstance(entry, dict):
                assert set(entry) == PLURALS[lang], (lang, key, sorted(entry))
            else:
                assert isinstance(entry, str) and entry.strip(), (lang, key)
    assert shipped["he"]["_meta.dir"] == "rtl"


def test_every_key_the_pages_use_is_in_every_catalog() -> None:
    html_keys, _ = keys_in_pages()
    used = html_keys | keys_in_scripts()
    assert len(used) > 200  # the extraction itself works
    for lang in PLURALS:
        # error.<code> may come from the server's gettext catalog (served at /i18n/errors/<lang>.json).
        server = {f"error.{code}" for code in messages.catalogs()[lang]}
        missing = sorted(used - set(catalog(lang)) - server)
        assert missing == [], f"{lang}.json lacks {missing}"


def test_pages_hold_no_text_outside_the_catalog() -> None:
    _, literal = keys_in_pages()
    assert literal == [], "untranslated text in the pages (add data-i18n keys):\n" + "\n".join(literal)


def test_hebrew_is_a_translation_not_a_copy() -> None:
    english, hebrew = catalog("en"), catalog("he")
    same = [
        k for k, v in hebrew.items() if v == english[k] and not k.startswith("_meta") and re.search("[a-z]{3}", str(v))
    ]
    # Product names and acronyms stay as they are.
    assert set(same) <= {"signin.proctor", "setup.proctor", "account.sso"}, same
    assert all(re.search("[\u0590-\u05ff]", str(v)) for k, v in hebrew.items() if k.startswith(("exam.", "check.")))


def test_the_catalog_fails_on_a_missing_key() -> None:
    # The check can fail: a page naming a key no catalog has is reported.
    parser = StaticText()
    parser.feed('<p data-i18n="exam.no_such_key">x</p><p>Loose text</p>')
    assert "exam.no_such_key" not in catalog("en") and "exam.no_such_key" in parser.keys
    assert parser.literal == ["Loose text"]


def test_the_shipped_languages_are_listed_for_the_picker() -> None:
    languages = {item["id"]: item for item in shipped_languages()}
    assert languages["en"] == {"id": "en", "name": "English", "dir": "ltr"}
    assert languages["he"] == {"id": "he", "name": "עברית", "dir": "rtl"}
    assert set(languages) == {path.stem for path in CATALOGS.glob("*.json")}
