"""AnalysisSampler end to end: real aiortc peers, the real CenterFace detector and the real
rules, with hold times shortened so a test takes seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiortc import RTCPeerConnection

from detection import Face, FaceDetector, RuleSettings, RuleViolation
from media import AnalysisPeers, AnalysisSampler, AnalysisSettings, Snapshots
from tests.support.images import Frame
from tests.support.media import HEIGHT, WIDTH, RecordingSink, connect_student, wait_until

FAST_RULES = RuleSettings(
    no_face_seconds=0.6,
    multiple_faces_seconds=0.6,
    camera_blocked_seconds=0.6,
    looking_away_seconds=0.6,
)
FAST = AnalysisSettings(rule_settings=FAST_RULES, sample_interval=0.2, thumbnail_interval=0.6)
TICK = 0.05


def _decode(jpeg: bytes) -> Frame:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return np.asarray(image, np.uint8)


class SlowDetector:
    """The real detector behind a sleep: a node whose inference cannot keep up."""

    def __init__(self, inner: FaceDetector, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.calls = 0

    def detect_batch(self, frames: Sequence[Frame]) -> list[list[Face]]:
        self.calls += 1
        time.sleep(self._delay)
        return self._inner.detect_batch(frames)


class FailingSink(RecordingSink):
    """Fails every thumbnail delivery; violations still get through."""

    async def thumbnail(self, attempt_id: str, jpeg: bytes) -> None:
        raise RuntimeError("dashboard is down")


@pytest.mark.asyncio
async def test_three_students_in_one_batch_get_the_right_violations(
    peers: AnalysisPeers,
    clients: list[RTCPeerConnection],
    face_detector: FaceDetector,
    one_face: Frame,
    two_faces: Frame,
    blank: Frame,
) -> None:
    sink = RecordingSink()
    async with AnalysisSampler(peers, face_detector, sink, tick=TICK) as sampler:
        for attempt, image in (("one", one_face), ("two", two_faces), ("blank", blank)):
            clients.append(await connect_student(peers, attempt, image, FAST))

        await sink.wait_for(
            lambda: {"multiple_faces"} <= sink.kinds("two") and {"no_face", "camera_blocked"} <= sink.kinds("blank"),
            timeout=15,
        )
        # The one-face student has been observed for as long as the others needed to
        # raise theirs, and then some: long enough for any hold time to have passed.
        await wait_until(lambda: len(sink.thumbnails_of("one")) >= 3, 10, "three thumbnails")
        stats = sampler.stats

    assert sink.kinds("one") == set(), sink.violations
    assert sink.kinds("two") == {"multiple_faces"}
    assert sink.kinds("blank") == {"no_face", "camera_blocked"}
    # One violation per episode, not one per frame.
    assert len([v for a, v, _ in sink.violations if a == "two"]) == 1

    for attempt, violation, evidence in sink.violations:
        assert isinstance(violation, RuleViolation)
        assert violation.duration >= 0.6 and violation.explanation
        assert _decode(evidence).shape == (HEIGHT, WIDTH, 3), attempt
    two_evidence = next(e for a, _, e in sink.violations if a == "two")
    # The evidence is the frame that showed two faces, not some other student's.
    assert len(face_detector.detect(_decode(two_evidence))) == 2

    for attempt in ("one", "two", "blank"):
        thumbnails = sink.thumbnails_of(attempt)
        assert thumbnails, attempt
        assert _decode(thumbnails[0]).shape == (120, 160, 3)

    assert stats.students == 3
    assert stats.max_batch_size >= 2, "students due on the same tick share one batch"
    assert stats.samples >= 3 * 4


@pytest.mark.asyncio
async def test_slow_detector_drops_samples_and_keeps_the_loop_responsive(
    peers: AnalysisPeers,
    clients: list[RTCPeerConnection],
    face_detector: FaceDetector,
    one_face: Frame,
    two_faces: Frame,
) -> None:
    # onnxruntime grows its arena on the first runs of each batch size; do that before
    # memory is measured.
    face_detector.detect_batch([one_face])
    face_detector.detect_batch([one_face, two_faces])
    slow = SlowDetector(face_detector, delay=1.0)
    sink = RecordingSink()
    async with AnalysisSampler(peers, slow, sink, tick=TICK, skip_unchanged=False) as sampler:
        clients.append(await connect_student(peers, "a1", one_face, FAST))
        clients.append(await connect_student(peers, "a2", two_faces, FAST))
        source = peers.source("a1")
        assert source is not None
        # Connection set-up (key generation, DTLS) and the first batches' one-off
        # allocations (encoders, decoders, JPEG) are not what is measured here.
        await wait_until(lambda: sampler.stats.batches >= 2, 5, "two batches")
        sampler.loop_lag.reset_max()
        received_before = source.slot.frames_received
        dropped_before = sampler.dropped_frames
        rss_before = _rss_bytes()

        round_trips = []
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            started = time.perf_counter()
            await asyncio.sleep(0)
            round_trips.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
            assert _receive_backlog(peers, "a1") <= 3, "decoded frames are piling up"

        stats = sampler.stats
        max_lag = sampler.loop_lag.max_lag
        rss_growth = _rss_bytes() - rss_before

    assert max(round_trips) < 0.05, f"loop round trip {max(round_trips) * 1000:.1f} ms"
    assert max_lag < 0.05, f"loop lag {max_lag * 1000:.1f} ms"
    # Two students due every 0.2 s, a batch every ~1 s: most samples must be dropped.
    assert sampler.dropped_frames - dropped_before >= 8, stats
    assert stats.batches <= 6, "batches must not queue up behind a slow detector"
    # The track is drained at the sender's rate (5 fps) whatever the detector does...
    assert source.slot.frames_received - received_before >= 10
    # ... and only the newest frame is kept.
    sample = source.slot.latest()
    assert sample is not None and sample.seq == source.slot.frames_received
    # Loose on purpose (allocator noise); the backlog check above is the precise one.
    assert rss_growth < 32 * 1024 * 1024, f"RSS grew {rss_growth / 1e6:.0f} MB"


@pytest.mark.asyncio
async def test_a_failing_sink_does_not_stop_analysis(
    peers: AnalysisPeers,
    clients: list[RTCPeerConnection],
    face_detector: FaceDetector,
    blank: Frame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FailingSink()
    async with AnalysisSampler(peers, face_detector, sink, tick=TICK):
        clients.append(await connect_student(peers, "a1", blank, FAST))
        await sink.wait_for(lambda: {"no_face", "camera_blocked"} <= sink.kinds("a1"), timeout=10)
    assert "analysis sink failed" in caplog.text


@pytest.mark.asyncio
async def test_ended_attempt_is_forgotten_and_reconnect_keeps_analysing(
    peers: AnalysisPeers,
    clients: list[RTCPeerConnection],
    face_detector: FaceDetector,
    one_face: Frame,
    blank: Frame,
) -> None:
    sink = RecordingSink()
    async with AnalysisSampler(peers, face_detector, sink, tick=TICK) as sampler:
        clients.append(await connect_student(peers, "a1", one_face, FAST))
        await wait_until(lambda: sampler.stats.samples >= 2, 10, "samples")
        # The student reconnects (a new offer, a new peer) and now shows a blank camera.
        clients.append(await connect_student(peers, "a1", blank, FAST))
        await sink.wait_for(lambda: "no_face" in sink.kinds("a1"), timeout=10)
        await peers.close("a1")
        await wait_until(lambda: sampler.stats.students == 0, 5, "the attempt to be forgotten")
    assert sink.kinds("a1") == {"no_face", "camera_blocked"}


def _rss_bytes() -> int:
    # Linux only, like the server; resident pages times the page size.
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def _receive_backlog(peers: AnalysisPeers, attempt_id: str) -> int:
    """Decoded frames aiortc holds for the track that nobody has received yet.

    Reaches into aiortc's RemoteStreamTrack queue and our registry on purpose: this is
    exactly the unbounded buffer the drain loop exists to keep empty.
    """
    peer = peers._peers[attempt_id]
    backlog = 0
    for receiver in peer.pc.getReceivers():
        queue = getattr(receiver.track, "_queue", None)
        if queue is not None:
            backlog += queue.qsize()
    return backlog


# -- paced senders (the snapshot transport): every frame the page sends is a sample --------------

PACED = AnalysisSettings(rule_settings=FAST_RULES, sample_interval=0.4, thumbnail_interval=1.2)


def _jpeg(image: Frame) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), 60])
    assert ok
    return bytes(buffer.tobytes())


async def _send_paced(snapshots: Snapshots, attempt_id: str, jpeg: bytes, count: int, swing: float) -> None:
    """Put `count` frames one interval apart on the monotonic clock's interval grid, each
    `swing` s early or late in turn: the sampler's own clock ticks on that grid (lane 0), so
    every other frame lands just after a sample time, as a page's timer and the network can."""
    interval = PACED.sample_interval
    first = (time.monotonic() // interval + 2) * interval
    for k in range(count):
        at = first + k * interval + (swing if k % 2 else -swing)
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        snapshots.put(attempt_id, jpeg, PACED)


@pytest.mark.asyncio
async def test_a_paced_sender_has_every_frame_analysed_once_whatever_its_jitter(
    face_detector: FaceDetector, one_face: Frame
) -> None:
    snapshots = Snapshots()
    sink = RecordingSink()
    async with AnalysisSampler(snapshots, face_detector, sink, tick=TICK, skip_unchanged=False) as sampler:
        # Before the change, a sender this jittery lost every other frame to the sampler's
        # second clock: the frame after a late one replaced it before the next sample time.
        await _send_paced(snapshots, "s1", _jpeg(one_face), count=12, swing=0.08)
        await wait_until(lambda: sampler.stats.samples >= 12, 3, "every frame analysed")
        stats = sampler.stats
        slot_seq = snapshots.sources()[0].slot.frames_received
    assert slot_seq == 12
    assert (stats.samples, stats.dropped_frames, stats.stale_samples) == (12, 0, 0), stats
    assert sink.kinds("s1") == set()
    assert len(sink.thumbnails_of("s1")) >= 3


@pytest.mark.asyncio
async def test_a_paced_sender_that_stops_is_stale_and_its_last_frame_not_analysed_again(
    face_detector: FaceDetector, blank: Frame
) -> None:
    snapshots = Snapshots()
    sink = RecordingSink()
    async with AnalysisSampler(snapshots, face_detector, sink, tick=TICK, skip_unchanged=False) as sampler:
        await _send_paced(snapshots, "s1", _jpeg(blank), count=3, swing=0.0)
        await wait_until(lambda: sampler.stats.samples >= 3, 3, "three frames analysed")
        # The page stopped: 1.5 intervals without a frame, then one stale sample per interval.
        await asyncio.sleep(0.6 + 4 * PACED.sample_interval + 0.1)
        stats = sampler.stats
    assert stats.samples == 3, "a frame is analysed once, however long it stays in the slot"
    assert 4 <= stats.stale_samples <= 6, stats
    assert stats.dropped_frames == 0


@pytest.mark.asyncio
async def test_a_slow_detector_counts_every_replaced_frame_as_dropped(
    face_detector: FaceDetector, one_face: Frame
) -> None:
    face_detector.detect_batch([one_face])
    slow = SlowDetector(face_detector, delay=1.0)
    snapshots = Snapshots()
    sink = RecordingSink()
    async with AnalysisSampler(snapshots, slow, sink, tick=TICK, skip_unchanged=False) as sampler:
        await _send_paced(snapshots, "s1", _jpeg(one_face), count=10, swing=0.0)
        # Every frame sent is accounted for: analysed, or replaced while the detector was busy.
        await wait_until(
            lambda: sampler.stats.samples + sampler.stats.dropped_frames >= 10, 4, "every frame accounted for"
        )
        stats = sampler.stats
    assert stats.samples + stats.dropped_frames == 10, stats
    assert stats.dropped_frames >= 5, "a one-second detector takes about one frame in 2.5"
    assert stats.batches == stats.samples, "one frame per batch: nothing queues behind the detector"
