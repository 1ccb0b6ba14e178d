"""Fixtures for media tests: real aiortc peers in process, a synthetic camera made of real
photographs, the real face detector, and a sink that records what the sampler delivers.

A missing model or scikit-image fails the tests (never skips them) and says what to install.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from detection import FaceDetector, ModelNotFound, RuleViolation
from media import AnalysisPeers, AnalysisSettings
from tests.support.images import Frame, astronaut_bgr

WIDTH, HEIGHT = 320, 240
FPS = 5
VIDEO_CLOCK = 90_000


@pytest.fixture(scope="session")
def one_face() -> Frame:
    """The astronaut portrait at 320x240: one frontal face."""
    return np.asarray(cv2.resize(astronaut_bgr(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA), np.uint8)


@pytest.fixture(scope="session")
def two_faces() -> Frame:
    """Two astronauts side by side, letterboxed into 320x240 (aspect ratio kept)."""
    pair = np.hstack([astronaut_bgr(), astronaut_bgr()])
    strip = cv2.resize(pair, (WIDTH, HEIGHT // 3 * 2), interpolation=cv2.INTER_AREA)
    pad = (HEIGHT - strip.shape[0]) // 2
    framed = cv2.copyMakeBorder(strip, pad, HEIGHT - strip.shape[0] - pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.asarray(framed, np.uint8)


@pytest.fixture(scope="session")
def blank() -> Frame:
    """A flat grey frame (a camera facing a wall): no face, and flat enough to count as blocked.

    Grey, not black: a dark frame without a face is "unable to judge", so it raises only
    camera_blocked; a bright flat one raises no_face as well.
    """
    return np.full((HEIGHT, WIDTH, 3), 128, np.uint8)


@pytest.fixture(scope="session")
def face_detector() -> FaceDetector:
    try:
        return FaceDetector()
    except ModelNotFound as exc:
        pytest.fail(f"the face model is required for these tests: {exc}", pytrace=False)


class SyntheticCamera(VideoStreamTrack):
    """A camera that shows one still image at `fps`, paced in real time like a webcam.

    aiortc's `VideoStreamTrack.next_timestamp` paces at 30 fps; a student page caps its
    camera lower, so this track keeps its own clock.
    """

    def __init__(self, image: Frame, fps: int = FPS) -> None:
        super().__init__()
        self._image = image
        self._fps = fps
        self._count = 0
        self._clock_start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._clock_start is None:
            self._clock_start = time.monotonic()
        delay = self._clock_start + self._count / self._fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame.from_ndarray(self._image, format="bgr24")
        frame.pts = self._count * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


async def connect_student(
    peers: AnalysisPeers, attempt_id: str, image: Frame, settings: AnalysisSettings
) -> RTCPeerConnection:
    """A student page in miniature: offer a camera track, apply the server's answer."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTrack(SyntheticCamera(image))
    await client.setLocalDescription(await client.createOffer())
    offer = client.localDescription
    sdp, type_ = await peers.accept_offer(attempt_id, offer.sdp, offer.type, settings)
    await client.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
    # Until DTLS is up neither side can tell the other it closed; tests that close want
    # a connected pair, as a real exam has.
    await wait_until(lambda: client.connectionState == "connected", 10, f"{attempt_id} to connect")
    return client


@dataclass
class RecordingSink:
    """An `AnalysisSink` that keeps everything it is given."""

    violations: list[tuple[str, RuleViolation, bytes]] = field(default_factory=list)
    thumbnails: list[tuple[str, bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def violation(self, attempt_id: str, violation: RuleViolation, evidence_jpeg: bytes) -> None:
        self.violations.append((attempt_id, violation, evidence_jpeg))
        self.changed.set()

    async def thumbnail(self, attempt_id: str, jpeg: bytes) -> None:
        self.thumbnails.append((attempt_id, jpeg))
        self.changed.set()

    def kinds(self, attempt_id: str) -> set[str]:
        return {v.kind for a, v, _ in self.violations if a == attempt_id}

    def thumbnails_of(self, attempt_id: str) -> list[bytes]:
        return [jpeg for a, jpeg in self.thumbnails if a == attempt_id]

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Wait until `condition()` holds after a delivery; fail with what we got."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = sorted({(a, v.kind) for a, v, _ in self.violations})
                pytest.fail(f"timed out; violations so far: {got}, thumbnails: {len(self.thumbnails)}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def peers() -> AsyncIterator[AnalysisPeers]:
    registry = AnalysisPeers(ice_servers=[])
    try:
        yield registry
    finally:
        await registry.close_all()


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[list[RTCPeerConnection]]:
    """Client peers a test opens; closed at teardown so no transport outlives the test."""
    opened: list[RTCPeerConnection] = []
    try:
        yield opened
    finally:
        await asyncio.gather(*(client.close() for client in opened))
