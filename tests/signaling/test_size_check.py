"""The guard's payload size check: exact when the packet could carry too much, skipped when not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from rooms.tokens import Claims, TokenService
from signaling import transport
from signaling.guard import _ENCODED_PER_RAW_CHAR, Ack, GuardedNamespace, Limits, Session, ok

LIMIT = 1024


class Echo(BaseModel):
    text: str = ""


class EchoNamespace(GuardedNamespace):
    role = "student"
    handlers = {"echo": (Echo, "echo")}  # noqa: RUF012  (shaped as GuardedNamespace declares it, like signaling/student.py)

    async def echo(self, session: Session, msg: Echo) -> Ack:
        return ok(length=len(msg.text))


def namespace() -> EchoNamespace:
    ns = EchoNamespace("/t", TokenService("s" * 32), Limits(LIMIT, 1000.0, 1000))
    ns.open_session("sid", Claims(role="student", sub="x", room_id=None, expires_at=None))
    return ns


async def dispatch(ns: EchoNamespace, payload: Any, raw: int | None) -> Ack:
    # What ProctorServer._handle_eio_message sets for the packet an event arrived in.
    token = transport._RAW_LENGTH.set(raw)
    try:
        return await ns._dispatch("sid", "echo", payload, extra_args=False)
    finally:
        transport._RAW_LENGTH.reset(token)


@pytest.mark.parametrize("raw", [None, 10_000])
async def test_an_oversized_payload_is_refused_with_too_large(raw: int | None) -> None:
    ack = await dispatch(namespace(), {"text": "x" * (LIMIT + 1)}, raw)
    assert ack["error"]["code"] == "too_large"


async def test_the_size_counts_ascii_escapes_as_before() -> None:
    # 200 characters outside the BMP: 200 in the packet, 2,400 once escaped: over the limit.
    payload = {"text": "\U0001f600" * 200}
    assert len(json.dumps(payload, separators=(",", ":"))) > LIMIT
    ack = await dispatch(namespace(), payload, len(json.dumps(payload, ensure_ascii=False)) + 20)
    assert ack["error"]["code"] == "too_large"


async def test_a_short_packet_skips_the_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("re-encoded a payload whose packet was short")

    monkeypatch.setattr("signaling.guard.json.dumps", fail)
    raw = LIMIT // _ENCODED_PER_RAW_CHAR
    ack = await dispatch(namespace(), {"text": "abc"}, raw)
    assert ack == {"ok": True, "length": 3}


async def test_a_payload_just_under_the_limit_passes() -> None:
    text = "x" * (LIMIT - len('{"text":""}'))
    ack = await dispatch(namespace(), {"text": text}, LIMIT + 40)
    assert ack == {"ok": True, "length": len(text)}
