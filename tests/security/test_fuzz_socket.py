"""Hostile payloads for every Socket.IO event of both namespaces, unknown events and extra
arguments: every ack is the documented shape and never `internal`, the connection survives,
and afterwards another student of the same room still gets `{ok: true}` with nothing logged
as an unhandled error."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.settings import Settings
from signaling.student import StudentNamespace
from signaling.teacher import TeacherNamespace
from tests.security.strategies import any_text, mutated, scalars
from tests.support.access import (
    DOCUMENTED_ACK_CODES,
    FIGURES,
    LoopBridge,
    World,
    ack_shape_problem,
    fuzz_settings,
    our_errors,
)
from tests.support.live import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MAX_EXAMPLES = 100
UNDOCUMENTED_CODES: dict[str, set[str]] = {}


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    # The fuzzer sends faster than a person: a high rate limit lets every case reach the
    # schema and the handler instead of stopping at `rate_limited`.
    return settings.replace(
        reconnect_grace_seconds=1.0, writer_flush_ms=5.0, events_per_second=100_000.0, event_burst=100_000
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def valid_payloads(world: World, attempt_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    room = world.room_x["id"]
    return {
        ("/student", "join"): {"consent_version": "2026-11-v1"},
        ("/student", "answer"): {"question_id": "q3", "value": "because", "seq": 5},
        ("/student", "event"): {
            "seq": 6,
            "kind": "copy",
            "occurred_at": "2026-01-01T10:00:00+00:00",
            "details": {"length": 3, "note": "x"},
        },
        ("/student", "submit"): {},
        ("/student", "hand"): {"text": "help", "raised": True},
        ("/student", "rtc"): {
            "target": "server",
            "type": "candidate",
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0},
        },
        ("/teacher", "watch"): {"room_id": room},
        ("/teacher", "unwatch"): {"room_id": room},
        ("/teacher", "control"): {"attempt_id": attempt_id, "action": "warn", "text": "look here"},
        ("/teacher", "announce"): {"room_id": room, "text": "ten minutes left"},
        ("/teacher", "rtc"): {"target": "peer", "type": "offer", "attempt_id": attempt_id, "sdp": "v=0\r\n"},
    }


EVENTS = [("/student", e) for e in StudentNamespace.handlers] + [("/teacher", e) for e in TeacherNamespace.handlers]
socket_scalars = st.one_of(scalars, st.binary(max_size=32))  # bytes travel as binary attachments
socket_values = st.recursive(
    socket_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)),
    max_leaves=12,
)


def payloads(valid: dict[str, Any]) -> st.SearchStrategy[tuple[str, Any]]:
    """(how, data): data is one payload, or a tuple of several arguments."""
    # Between the 16 KiB message limit (a `too_large` ack) and 4x that (the engine closes the
    # connection by design; test_live_access covers that).
    oversized = st.integers(min_value=(16 << 10) + 1, max_value=60 << 10).map(lambda n: "x" * n)
    return st.one_of(
        mutated(valid, extra_values=socket_values, big=oversized).map(lambda v: ("mutated", v)),
        socket_values.map(lambda v: ("arbitrary", v)),
        st.tuples(socket_values, socket_values).map(lambda t: ("two args", t)),
        oversized.map(lambda s: ("oversized", {**valid, "pad": s})),
        st.just(("no payload", None)),
        st.just(("valid", valid)),
    )


async def call(client: Client, event: str, data: Any) -> Any:
    if data is None:
        return await client.sio.call(event, namespace=client.namespace, timeout=10)
    return await client.sio.call(event, data, namespace=client.namespace, timeout=10)


async def fuzz_world(world: World) -> tuple[Client, Client, Client, str]:
    """(fuzzing student, bystander student, fuzzing teacher of room X, the fuzzer's attempt)."""
    live = world.live
    fuzzer_token, bystander_token = await live.invites(world.room_x["id"], 2, prefix="fz")
    fuzzer, joined = await live.student(fuzzer_token)
    bystander, _ = await live.student(bystander_token)
    teacher = await live.connect("/teacher", world.tokens["teacher_x"])
    return fuzzer, bystander, teacher, str(joined["attempt"]["attempt_id"])


def judge(namespace: str, event: str, how: str, data: Any, ack: Any) -> None:
    where = f"{namespace} {event} ({how}) {json.dumps(data, default=repr)[:300]}"
    problem = ack_shape_problem(ack)
    assert problem is None, f"{where}: {problem}"
    if not ack["ok"]:
        code = ack["error"]["code"]
        assert code != "internal", f"{where}: internal error (a server bug): {ack}"
        if code not in DOCUMENTED_ACK_CODES:
            UNDOCUMENTED_CODES.setdefault(code, set()).add(f"{namespace} {event}")


async def bystander_still_works(bystander: Client, seq: int) -> None:
    ack = await bystander.call("event", {"seq": seq, "kind": "window_blur", "occurred_at": now_iso()})
    assert ack == {"ok": True, "seq": seq, "stored": True}, ack


@pytest.mark.parametrize(
    ("namespace", "event"), [*EVENTS, ("/student", "no_such_event"), ("/teacher", "no_such_event")], ids=lambda v: v
)
async def test_fuzz_event(
    world: World, bridge: LoopBridge, caplog: pytest.LogCaptureFixture, namespace: str, event: str
) -> None:
    fuzzer, bystander, teacher, attempt_id = await fuzz_world(world)
    client = fuzzer if namespace == "/student" else teacher
    valid = valid_payloads(world, attempt_id).get((namespace, event), {"anything": 1})

    @settings(**fuzz_settings(MAX_EXAMPLES))
    @given(case=payloads(valid))
    def run(case: tuple[str, Any]) -> None:
        how, data = case
        FIGURES["fuzz cases: Socket.IO payloads"] += 1
        assert client.sio.connected, "an earlier payload closed the fuzzing connection"
        ack = bridge.run(lambda: call(client, event, data))
        judge(namespace, event, how, data, ack)

    try:
        await asyncio.to_thread(run)
    finally:
        await bystander_still_works(bystander, 1)
        errors = our_errors(caplog)
        if UNDOCUMENTED_CODES:
            print(f"\nundocumented ack codes seen: {UNDOCUMENTED_CODES}")
    assert not errors, "errors logged while fuzzing:\n" + "\n".join(errors[:20])


# Deterministic regressions: strings Postgres cannot store, in each string field a student
# or teacher sends; the answer must be an `invalid` ack, never `internal` or a log entry.
UNSTORABLE = ("a\x00b", "a\ud800b")
STRING_FIELDS = [
    ("/student", "join", "consent_version"),
    ("/student", "answer", "value"),
    ("/student", "event", "details"),
    ("/student", "hand", "text"),
    ("/teacher", "control", "text"),
    ("/teacher", "announce", "text"),
]


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["NUL", "surrogate"])
@pytest.mark.parametrize(("namespace", "event", "field"), STRING_FIELDS, ids=lambda v: v)
async def test_unstorable_strings(
    world: World, caplog: pytest.LogCaptureFixture, namespace: str, event: str, field: str, bad: str
) -> None:
    fuzzer, bystander, teacher, attempt_id = await fuzz_world(world)
    client = fuzzer if namespace == "/student" else teacher
    payload = dict(valid_payloads(world, attempt_id)[(namespace, event)])
    payload[field] = {"note": bad} if field == "details" else bad
    FIGURES["fuzz cases: Socket.IO unstorable strings"] += 1
    ack = await client.call(event, payload)
    await bystander_still_works(bystander, 1)
    problem = ack_shape_problem(ack)
    assert problem is None, problem
    errors = our_errors(caplog)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid" and not errors, (
        f"{namespace} {event} with {field}={bad!r}: ack {ack}; logged: {errors[:3]}"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["NaN", "Infinity"])
async def test_non_finite_numbers_in_event_details(
    world: World, caplog: pytest.LogCaptureFixture, value: float
) -> None:
    """JSON from a hostile client may carry NaN/Infinity; jsonb cannot store them."""
    fuzzer, bystander, _, attempt_id = await fuzz_world(world)
    payload = {**valid_payloads(world, attempt_id)[("/student", "event")], "details": {"x": value}}
    FIGURES["fuzz cases: Socket.IO unstorable strings"] += 1
    ack = await fuzzer.call("event", payload)
    await bystander_still_works(bystander, 1)
    errors = our_errors(caplog)
    assert ack_shape_problem(ack) is None
    assert (ack["ok"] or ack["error"]["code"] == "invalid") and not errors, (
        f"details={{'x': {value}}}: {ack}; logged {errors[:2]}"
    )


# Deterministic regressions: ids a teacher names that are not ids at all.
GARBAGE_IDS = ("not-a-uuid", "0", "' OR 1=1 --", "00000000-0000-0000-0000-00000000000g", "a\x00b", "{}")
ID_FIELDS = [
    ("control", "attempt_id"),
    ("rtc", "attempt_id"),
    ("watch", "room_id"),
    ("unwatch", "room_id"),
    ("announce", "room_id"),
]


@pytest.mark.parametrize(("event", "field"), ID_FIELDS, ids=lambda v: v)
async def test_garbage_ids_from_teachers(
    world: World, caplog: pytest.LogCaptureFixture, event: str, field: str
) -> None:
    _, bystander, teacher, attempt_id = await fuzz_world(world)
    failures = []
    for garbage in GARBAGE_IDS:
        payload = {**valid_payloads(world, attempt_id)[("/teacher", event)], field: garbage}
        FIGURES["fuzz cases: Socket.IO garbage ids"] += 1
        ack = await teacher.call(event, payload)
        problem = ack_shape_problem(ack)
        if problem or (not ack["ok"] and ack["error"]["code"] == "internal"):
            failures.append(f"/teacher {event} {field}={garbage!r}: {problem or ack}")
    await bystander_still_works(bystander, 1)
    assert not failures, "\n".join(failures)


async def test_deeply_nested_packet(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A packet nested deeper than any JSON encoder allows, sent on a raw Engine.IO socket."""
    live = world.live
    _fuzzer, bystander, _, _ = await fuzz_world(world)
    [token] = await live.invites(world.room_x["id"], 1, prefix="raw")
    url = live.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    depth = 50_000
    FIGURES["fuzz cases: Socket.IO raw packets"] += 1
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0"), opened
        await ws.send_str("40/student," + json.dumps({"token": token}))
        connected = await ws.receive_str(timeout=5)
        assert connected.startswith("40/student"), connected
        await ws.send_str('42/student,1["event",' + "[" * depth + "]" * depth + "]")
        await ws.send_str('42/student,2["join",{}]')
        reply = None
        try:
            while reply is None:
                msg = await ws.receive_str(timeout=5)
                if msg.startswith("43/student,2"):
                    reply = msg
                elif msg == "2":
                    await ws.send_str("3")
        except (TimeoutError, TypeError):
            pass
    await bystander_still_works(bystander, 1)
    errors = our_errors(caplog)
    assert not errors, "errors logged for a deeply nested packet:\n" + "\n".join(errors[:5])


def test_every_event_is_fuzzed() -> None:
    assert {e for _, e in EVENTS} == set(StudentNamespace.handlers) | set(TeacherNamespace.handlers)
