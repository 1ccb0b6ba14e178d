"""The microphone of a speaking exam, server side: a real aiortc client sends espeak-ng speech
then silence beside its camera; the peer drains it into a bounded ring, the speech listener
runs the real voice model and raises `speaking` once, with the duration and a camera frame."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
import numpy as np
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from detection import RuleSettings, VoiceModel
from media import AnalysisPeers, AnalysisSettings, AnalysisSource, AudioRing, LatestFrame, SpeechListener
from tests.support.images import Frame
from tests.support.media import RecordingSink, SyntheticCamera, wait_until
from tests.support.speech import Pcm, espeak_pcm, resample, silence

LISTEN = AnalysisSettings(rule_settings=RuleSettings(speaking=True, speaking_seconds=2.0, speaking_window_seconds=8.0))
NOT_LISTENING = AnalysisSettings(rule_settings=RuleSettings())
RATE = 48_000
FRAME = 960  # 20 ms, what a browser's Opus encoder sends


class WavMicrophone(AudioStreamTrack):
    """Plays `pcm` (48 kHz mono) once, then silence, paced in real time like a microphone."""

    def __init__(self, pcm: Pcm) -> None:
        super().__init__()
        self._pcm = pcm
        self._sent = 0
        self._began: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._began is None:
            self._began = time.monotonic()
        delay = self._began + self._sent / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        piece = self._pcm[self._sent : self._sent + FRAME]
        piece = np.pad(piece, (0, FRAME - len(piece)))
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += FRAME
        return frame


async def connect(
    peers: AnalysisPeers, attempt_id: str, image: Frame, pcm: Pcm, settings: AnalysisSettings
) -> RTCPeerConnection:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTrack(SyntheticCamera(image))
    client.addTrack(WavMicrophone(pcm))
    await client.setLocalDescription(await client.createOffer())
    sdp, type_ = await peers.accept_offer(attempt_id, client.localDescription.sdp, "offer", settings)
    await client.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
    await wait_until(lambda: client.connectionState == "connected", 10, f"{attempt_id} to connect")
    return client


def test_the_ring_is_bounded_and_counts_what_it_dropped() -> None:
    ring = AudioRing(seconds=1.0)
    frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
    for _ in range(1000):
        ring.put(frame)
    assert len(ring) == 50 and ring.dropped == 950 and ring.received == 1000
    assert len(ring.take()) == 50 and len(ring) == 0


async def test_speech_on_the_microphone_raises_speaking_once_with_duration_and_frame(
    peers: AnalysisPeers, clients: list[RTCPeerConnection], one_face: Frame
) -> None:
    speech = resample(espeak_pcm(), 16_000, RATE)
    spoken = len(speech) / RATE
    talking = np.concatenate([silence(1, RATE), speech, silence(30, RATE)])
    clients.append(await connect(peers, "talker", one_face, talking, LISTEN))
    clients.append(await connect(peers, "deaf", one_face, talking, NOT_LISTENING))
    quiet = silence(60, RATE)
    clients.append(await connect(peers, "quiet", one_face, quiet, LISTEN))
    [talker] = [s for s in peers.sources() if s.attempt_id == "talker"]
    [deaf] = [s for s in peers.sources() if s.attempt_id == "deaf"]
    assert talker.audio is not None and deaf.audio is None, "only a listening exam keeps the microphone"

    sink = RecordingSink()
    async with SpeechListener(peers, VoiceModel(), sink, tick=0.25) as listener:
        await sink.wait_for(lambda: "speaking" in sink.kinds("talker"), timeout=spoken + 10)
        await asyncio.sleep(max(0.0, spoken - 2.0) + 1.5)  # the rest of the speech, then silence
        stats = listener.stats
    [(attempt, violation, evidence)] = sink.violations
    assert attempt == "talker" and violation.kind == "speaking"
    assert 2.0 <= violation.duration < 2.5
    assert violation.explanation.startswith("Speech heard for ")
    assert evidence[:2] == b"\xff\xd8", "the camera frame of the moment is the evidence"
    assert stats.students == 2 and stats.listened_seconds > 2 * 2.0
    assert stats.dropped_audio_frames == 0


class SlowModel(VoiceModel):
    """The real model, made slow: the listener must drop audio, not queue it."""

    def probabilities(self, work: Any) -> Any:
        time.sleep(0.5)
        return super().probabilities(work)


async def test_a_busy_listener_drops_the_oldest_audio_and_queues_nothing() -> None:
    ring = AudioRing(seconds=0.2)  # 10 frames
    source = AnalysisSource("a", LISTEN, LatestFrame(), ring)

    class Sources:
        def sources(self) -> list[AnalysisSource]:
            return [source]

    def frame() -> av.AudioFrame:
        made = av.AudioFrame.from_ndarray(np.zeros((1, FRAME), np.int16), format="s16", layout="mono")
        made.sample_rate = RATE
        return made

    sink = RecordingSink()
    async with SpeechListener(Sources(), SlowModel(), sink, tick=60) as listener:
        for _ in range(100):
            ring.put(frame())
        listener.tick_once()  # takes the ring's 10 frames into a batch that takes 0.5 s
        assert len(ring) == 0
        for _ in range(100):
            ring.put(frame())
        listener.tick_once()  # busy: takes nothing
        assert len(ring) == 10, "the ring stays at its bound while the listener is busy"
        await listener.wait_idle()
        stats = listener.stats
    assert stats.batches == 1 and stats.dropped_audio_frames == 180
    assert stats.listened_seconds < 0.25 and sink.violations == []
