"""A student is offline for two minutes with unacknowledged events, then comes back: same
attempt and deadline, everything re-sent and stored once, presence reconnecting → offline →
online, and the gap is one neutral `network_gap` on the timeline, never a violation."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from server.keys import POOL
from server.settings import Settings
from tests.support.live import running_node

from .figures import record
from .resend import ResendingStudent, check_exactly_once, stored_rows

OFFLINE = 120.0
GRACE = 2.0  # PROCTOR_RECONNECT_GRACE_SECONDS for this node: presence goes offline quickly


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_client_offline_for_two_minutes_resumes_and_resends(settings: Settings) -> None:
    async with running_node(settings.replace(reconnect_grace_seconds=GRACE, writer_flush_ms=5.0)) as live:
        pool = live.app[POOL]  # type: ignore[attr-defined]
        room = await live.room()
        [token] = await live.invites(room["id"], 1)
        teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
        client, joined = await live.student(token)
        attempt_id = joined["attempt"]["attempt_id"]
        student = ResendingStudent(client, attempt_id, seq=joined["last_seq"])
        for _ in range(5):
            student.new_event()
        await student.settle(10)

        # Twenty more go out without waiting for their acks, and the transport is aborted.
        for _ in range(20):
            await student.emit_only(student.queue_event())
        await client.sio.eio.disconnect(abort=True)
        loop = asyncio.get_running_loop()
        gone_at = loop.time()
        unacked_at_abort = len(student.pending)

        await teacher.received.wait_for(
            "presence", lambda d: d["attempt_id"] == attempt_id and d["presence"] == "reconnecting"
        )
        await teacher.received.wait_for(
            "presence", lambda d: d["attempt_id"] == attempt_id and d["presence"] == "offline", timeout=GRACE + 5
        )
        offline_after = loop.time() - gone_at
        stored_while_away = len(await stored_rows(pool, attempt_id))
        await asyncio.sleep(max(0.0, OFFLINE - (loop.time() - gone_at)))

        again, rejoined = await live.student(token)
        back_at = loop.time()
        assert rejoined["resumed"] is True
        assert rejoined["attempt"]["attempt_id"] == attempt_id
        assert rejoined["attempt"]["deadline"] == joined["attempt"]["deadline"]  # same deadline
        student.attach(again, rejoined["last_seq"])
        await student.resend_pending()
        await student.settle(10)
        resent_in = loop.time() - back_at
        for _ in range(3):
            student.new_event()
        await student.settle(10)

        def online_again() -> bool:
            return [d["presence"] for d in teacher.received.events["presence"] if d["attempt_id"] == attempt_id].count(
                "online"
            ) >= 2

        # Polls what the teacher received (a Recorder), measuring how long the return took.
        while not online_again() and loop.time() - back_at < 10:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        online_in = loop.time() - back_at
        rows = await stored_rows(pool, attempt_id)
        timeline = await live.rest("GET", f"/api/attempts/{attempt_id}/timeline")
        roster = await teacher.call("watch", {"room_id": room["id"]})
        await asyncio.sleep(0.3)
        states = [d["presence"] for d in teacher.received.events["presence"] if d["attempt_id"] == attempt_id]
        pushed = Counter(v["seq"] for v in teacher.received.events["violation"] if v["attempt_id"] == attempt_id)
        gaps = [e for e in timeline["entries"] if e["type"] == "network_gap"]
        violations = [e for e in timeline["entries"] if e["type"] == "violation"]
        record(
            "client_offline_2min",
            offline_s=round(back_at - gone_at, 1),
            grace_s=GRACE,
            events=student.seq,
            unacked_at_abort=unacked_at_abort,
            stored_while_away=stored_while_away,
            resends=student.sends - student.seq,
            resent_and_acked_in_s=round(resent_in, 2),
            offline_presence_after_s=round(offline_after, 2),
            online_presence_after_reconnect_s=round(online_in, 2),
            presence_sequence=states,
            network_gaps=[g["details"]["seconds"] for g in gaps],
            timeline_violations=len(violations),
            teacher_violations=sum(pushed.values()),
        )
        check_exactly_once(student, rows, saw_every_ack=False)
        assert states == ["online", "reconnecting", "offline", "online"], states
        assert len(gaps) == 1 and gaps[0]["details"]["seconds"] >= OFFLINE, gaps
        # The gap is no violation: the timeline's violations are exactly the events sent.
        assert sorted(v["seq"] for v in violations) == list(range(1, student.seq + 1))
        assert {(v["source"], v["kind"]) for v in violations} == {("client", "copy")}
        assert dict(pushed) == {seq: 1 for seq in range(1, student.seq + 1)}, "each event reaches the teacher once"
        [entry] = [s for s in roster["students"] if s["id"] == attempt_id]
        assert entry["presence"] == "online" and entry["violations"] == student.seq
        await student.close()
