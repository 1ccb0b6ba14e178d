"""The per-student switch: a speaking exam's join says whether this student is listened to,
and the host keeps a microphone track only for those who are (real node, real Postgres)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.analysis import PEERS
from server.keys import ATTEMPTS, POOL
from tests.support.images import Frame
from tests.support.live import Client, Live
from tests.support.media import SyntheticCamera, wait_until
from tests.support.node import EXAM_BODY

SPEAKING_EXAM: dict[str, Any] = {**EXAM_BODY, "rules": {"analysis": {"enabled": True, "speaking": True}}}


async def offer_with_microphone(student: Client, image: Frame) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SyntheticCamera(image))
    pc.addTrack(AudioStreamTrack())  # aiortc's silent 20 ms frames
    await pc.setLocalDescription(await pc.createOffer())
    ack = await student.call("rtc", {"target": "server", "type": "offer", "sdp": pc.localDescription.sdp})
    assert ack["ok"], ack
    await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type=ack["type"]))
    return pc


async def test_an_accommodation_switches_the_microphone_off_for_one_student(live: Live, one_face: Frame) -> None:
    room = await live.room(exam=SPEAKING_EXAM)
    listened_token, accommodated_token = await live.invites(room["id"], 2)
    listened, joined = await live.student(listened_token)
    assert joined["analysis"]["speaking"] is True
    accommodated, first = await live.student(accommodated_token)
    attempt_id = first["attempt"]["attempt_id"]
    pool = live.app[POOL]  # type: ignore[attr-defined]
    await pool.execute("UPDATE attempts SET accommodations = '[\"speaking\"]'::jsonb WHERE id = $1::uuid", attempt_id)
    live.app[ATTEMPTS].forget(attempt_id)  # type: ignore[attr-defined]
    rejoined = await accommodated.call("join")
    assert rejoined["ok"] and rejoined["analysis"]["speaking"] is False
    assert rejoined["analysis"]["enabled"] is True, "the camera is still analysed"

    pcs = [await offer_with_microphone(listened, one_face), await offer_with_microphone(accommodated, one_face)]
    try:
        peers = live.app[PEERS]  # type: ignore[attr-defined]
        await wait_until(lambda: peers.live_count == 2, 10, "both peers")
        sources = {source.attempt_id: source for source in peers.sources()}
        assert sources[joined["attempt"]["attempt_id"]].audio is not None
        assert sources[attempt_id].audio is None, "an accommodated student's microphone is not kept"
        await asyncio.sleep(0.5)
        ring = sources[joined["attempt"]["attempt_id"]].audio
        assert ring is not None and ring.received > 0, "the listened student's microphone reaches the ring"
    finally:
        for pc in pcs:
            await pc.close()
