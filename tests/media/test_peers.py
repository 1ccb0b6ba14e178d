"""AnalysisPeers against real in-process aiortc peers: offers, draining, replacement,
closing from either side, and offers that must be refused."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from detection import RuleSettings
from media import AnalysisPeers, AnalysisSettings, MediaError
from media.priority import BACKGROUND_NICENESS
from tests.support.images import Frame
from tests.support.media import HEIGHT, WIDTH, SyntheticCamera, connect_student, wait_until

SETTINGS = AnalysisSettings(rule_settings=RuleSettings())


async def _client_offer(image: Frame | None, *, audio_only: bool = False) -> tuple[RTCPeerConnection, str]:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if audio_only:
        client.addTransceiver("audio", direction="sendonly")
    elif image is not None:
        client.addTrack(SyntheticCamera(image))
    await client.setLocalDescription(await client.createOffer())
    return client, client.localDescription.sdp


@pytest.mark.asyncio
async def test_offer_is_answered_and_track_drained_into_one_frame_slot(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame
) -> None:
    clients.append(await connect_student(peers, "a1", one_face, SETTINGS))
    assert peers.live_count == 1
    source = peers.source("a1")
    assert source is not None
    await wait_until(lambda: source.slot.frames_received >= 5, 10, "five frames")
    sample = source.slot.latest()
    assert sample is not None
    assert (sample.width, sample.height) == (WIDTH, HEIGHT)
    assert sample.seq == source.slot.frames_received
    image = sample.to_bgr()
    assert image.shape == (HEIGHT, WIDTH, 3)
    # VP8 is lossy; the photograph must still be recognisably the one sent.
    assert float(abs(image.astype(int) - one_face.astype(int)).mean()) < 20
    # The receiver's decoder thread yields the cores to the event loop (media/priority.py);
    # the in-process client only sends, so every decoder thread here is the server's.
    decoders = [t for t in threading.enumerate() if t.name == "video-decoder" and t.native_id is not None]
    assert decoders, [t.name for t in threading.enumerate()]
    assert all(
        os.getpriority(os.PRIO_PROCESS, t.native_id) >= BACKGROUND_NICENESS for t in decoders if t.native_id is not None
    )


@pytest.mark.asyncio
async def test_server_close_and_close_all_return_live_count_to_zero(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame
) -> None:
    for attempt in ("a1", "a2", "a3"):
        clients.append(await connect_student(peers, attempt, one_face, SETTINGS))
    assert peers.live_count == 3
    assert await peers.close("a1") is True
    assert await peers.close("a1") is False
    assert peers.live_count == 2 and "a1" not in peers
    await peers.close_all()
    assert peers.live_count == 0
    assert peers.sources() == []
    # The students see the server side go away.
    await wait_until(lambda: all(c.connectionState == "closed" for c in clients), 10, "clients to see the close")


@pytest.mark.asyncio
async def test_client_closing_its_side_removes_the_peer(peers: AnalysisPeers, one_face: Frame) -> None:
    client = await connect_student(peers, "a1", one_face, SETTINGS)
    source = peers.source("a1")
    assert source is not None
    await wait_until(lambda: source.slot.frames_received >= 2, 10, "frames")
    await client.close()
    await wait_until(lambda: peers.live_count == 0, 10, "the peer to be removed")
    # The last frame is released with the peer.
    await wait_until(lambda: source.slot.latest() is None, 10, "the slot to be cleared")


@pytest.mark.asyncio
async def test_new_offer_for_same_attempt_replaces_the_peer(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame, blank: Frame
) -> None:
    first = await connect_student(peers, "a1", one_face, SETTINGS)
    clients.append(first)
    old = peers.source("a1")
    second = await connect_student(peers, "a1", blank, SETTINGS)
    clients.append(second)
    new = peers.source("a1")
    assert peers.live_count == 1
    assert old is not None and new is not None and new.slot is not old.slot
    await wait_until(lambda: first.connectionState == "closed", 10, "the old peer to close")
    await wait_until(lambda: new.slot.frames_received >= 2, 10, "frames on the new peer")
    assert peers.live_count == 1


@pytest.mark.asyncio
async def test_concurrent_offers_for_one_attempt_leave_one_peer(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame
) -> None:
    offers = [await _client_offer(one_face) for _ in range(3)]
    clients.extend(client for client, _ in offers)
    results = await asyncio.gather(
        *(peers.accept_offer("a1", sdp, "offer", SETTINGS) for _, sdp in offers),
        return_exceptions=True,
    )
    answered = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert answered, results
    assert all(isinstance(r, MediaError) and r.category == "conflict" for r in refused), refused
    assert peers.live_count == 1


async def _real_offer(one_face: Frame) -> str:
    client, sdp = await _client_offer(one_face)
    await client.close()
    return sdp


def _without(sdp: str, prefix: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefix))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sdp: "", id="empty"),
        pytest.param(lambda sdp: "this is not an SDP", id="garbage"),
        pytest.param(lambda sdp: "v=0\r\nm=video notaport RTP\r\n", id="bad-m-line"),
        pytest.param(lambda sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", id="no-media"),
        pytest.param(lambda sdp: sdp[: len(sdp) // 3], id="truncated"),
        pytest.param(lambda sdp: _without(sdp, "a=fingerprint"), id="no-fingerprint"),
        pytest.param(lambda sdp: _without(sdp, "a=ice-ufrag"), id="no-ice-credentials"),
        pytest.param(
            lambda sdp: sdp.replace("VP8/90000", "XYZ/90000").replace("H264/90000", "XYZ/90000"), id="no-common-codec"
        ),
        pytest.param(lambda sdp: sdp + "x" * 70_000, id="oversized"),
    ],
)
@pytest.mark.asyncio
async def test_malformed_offer_is_refused_as_invalid(peers: AnalysisPeers, one_face: Frame, mangle: object) -> None:
    sdp = mangle(await _real_offer(one_face))  # type: ignore[operator]
    with pytest.raises(MediaError) as caught:
        await peers.accept_offer("a1", sdp, "offer", SETTINGS)
    assert caught.value.category == "invalid", caught.value
    assert peers.live_count == 0


@pytest.mark.asyncio
async def test_offer_of_wrong_type_or_without_video_is_invalid(peers: AnalysisPeers, one_face: Frame) -> None:
    sdp = await _real_offer(one_face)
    for type_ in ("answer", "bogus"):
        with pytest.raises(MediaError) as caught:
            await peers.accept_offer("a1", sdp, type_, SETTINGS)
        assert caught.value.category == "invalid"
    client, audio_sdp = await _client_offer(None, audio_only=True)
    await client.close()
    with pytest.raises(MediaError) as caught:
        await peers.accept_offer("a1", audio_sdp, "offer", SETTINGS)
    assert caught.value.category == "invalid"
    assert "no video" in str(caught.value)
    assert peers.live_count == 0


@pytest.mark.asyncio
async def test_disabled_analysis_and_full_node_are_unavailable(one_face: Frame) -> None:
    registry = AnalysisPeers(max_peers=1)
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sdp = await _real_offer(one_face)
        off = AnalysisSettings(rule_settings=RuleSettings(), enabled=False)
        with pytest.raises(MediaError) as caught:
            await registry.accept_offer("a1", sdp, "offer", off)
        assert caught.value.category == "unavailable"

        client = await connect_student(registry, "a1", one_face, SETTINGS)
        with pytest.raises(MediaError) as caught:
            await registry.accept_offer("a2", await _real_offer(one_face), "offer", SETTINGS)
        assert caught.value.category == "unavailable"
        assert registry.live_count == 1
    finally:
        await client.close()
        await registry.close_all()


@pytest.mark.asyncio
async def test_ice_candidate_for_unknown_attempt_or_malformed_is_refused(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame
) -> None:
    with pytest.raises(MediaError) as caught:
        await peers.add_ice_candidate("nobody", "candidate:1 1 udp 1 10.0.0.1 9 typ host", "0", 0)
    assert caught.value.category == "not_found"
    clients.append(await connect_student(peers, "a1", one_face, SETTINGS))
    with pytest.raises(MediaError) as caught:
        await peers.add_ice_candidate("a1", "candidate:garbage", "0", 0)
    assert caught.value.category == "invalid"
    # A well-formed trickled candidate and the end-of-candidates marker are accepted.
    await peers.add_ice_candidate("a1", "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host", "0", 0)
    await peers.add_ice_candidate("a1", "", "0", 0)
