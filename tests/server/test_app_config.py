"""`/app-config.json` carries the one vocabulary to the pages, and every kind in it is one an
exam accepts: adding a kind to core/vocabulary.py reaches the REST API and the pages at once."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from core.vocabulary import ANALYSIS_BOUNDS, SIGNAL_KINDS, WEIGHT
from server.http.pages import content_security_policy
from tests.support.node import ADMIN, EXAM_BODY, SECRET, bearer

Client = TestClient[Any, Any]


async def _config(client: Client) -> dict[str, Any]:
    resp = await client.get("/app-config.json")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=60"
    # The settings fixture's public URL.
    assert resp.headers["Content-Security-Policy"] == content_security_policy("http://proctor.test")
    text = await resp.text()
    assert SECRET not in text and ADMIN not in text
    return dict(await resp.json())


async def test_every_kind_is_served_with_its_label_weight_and_source(client: Client) -> None:
    config = await _config(client)  # no Authorization header: the student page reads it first

    served = {kind["id"]: kind for kind in config["kinds"]}
    assert [kind["id"] for kind in config["kinds"]] == [kind.id for kind in SIGNAL_KINDS]
    for kind in SIGNAL_KINDS:
        assert served[kind.id] == {
            "id": kind.id,
            "label": kind.label,
            "source": kind.source,
            "default_weight": kind.default_weight,
            "explanation": kind.explanation,
        }
    assert [b["name"] for b in config["analysis_bounds"]] == [b.name for b in ANALYSIS_BOUNDS]
    threshold = next(b for b in config["analysis_bounds"] if b["name"] == "threshold")
    assert (threshold["minimum"], threshold["min_exclusive"], threshold["maximum"]) == (0.0, True, 1.0)
    assert (config["weight"]["minimum"], config["weight"]["maximum"]) == (WEIGHT.minimum, WEIGHT.maximum)
    # What the page had before stays.
    assert config["ice_servers"] == [] and config["consent_version"]


async def test_every_served_kind_is_accepted_in_an_exams_weights(client: Client) -> None:
    config = await _config(client)
    weights = {kind["id"]: float(index) + 0.5 for index, kind in enumerate(config["kinds"])}
    body = {**EXAM_BODY, "rules": {"weights": weights}}

    resp = await client.post("/api/exams", json=body, headers=bearer())
    assert resp.status == 201, await resp.text()
    exam = await resp.json()
    stored = await (await client.get(f"/api/exams/{exam['id']}", headers=bearer())).json()
    assert stored["rules"]["weights"] == weights


async def test_an_exam_without_weights_gets_every_default(client: Client) -> None:
    config = await _config(client)
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer())
    assert resp.status == 201, await resp.text()
    exam = await resp.json()
    stored = await (await client.get(f"/api/exams/{exam['id']}", headers=bearer())).json()
    assert stored["rules"]["weights"] == {kind["id"]: kind["default_weight"] for kind in config["kinds"]}


async def test_analysis_bounds_are_enforced_by_the_api(client: Client) -> None:
    for bound in ANALYSIS_BOUNDS:
        below = bound.minimum if bound.min_exclusive else bound.minimum - 0.001
        body = {**EXAM_BODY, "rules": {"analysis": {bound.name: below}}}
        resp = await client.post("/api/exams", json=body, headers=bearer())
        assert resp.status == 400, (bound.name, await resp.text())
        assert any(bound.name in field for field in (await resp.json())["error"]["fields"]), bound.name
        body = {**EXAM_BODY, "rules": {"analysis": {bound.name: bound.default}}}
        resp = await client.post("/api/exams", json=body, headers=bearer())
        assert resp.status == 201, (bound.name, await resp.text())
