"""The one-frame slot per student, the loop that drains a received track into it, and the
JPEG encodings made from a sampled frame (evidence and dashboard thumbnail).

A slot holds either a decoded WebRTC frame (`av.VideoFrame`) or, on the snapshot transport
(`media/snapshots.py`), the JPEG the student's page sent: that JPEG is decoded only when
sampled, and is itself the thumbnail and the evidence, so nothing is re-encoded.

Why a slot and not a queue: aiortc's receiver decodes every packet in its own thread and
parks each decoded frame on an unbounded `asyncio.Queue` until `recv()` takes it; a track
nobody drains grows without limit (measured: 1 GB in 26 s with three students). The drain
loop below therefore always runs at the sender's frame rate and overwrites a single slot;
the sampler reads the slot at its own, much lower, rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .errors import MediaError
from .priority import lower_decoder_threads

BGRImage = npt.NDArray[np.uint8]

EVIDENCE_JPEG_QUALITY = 70
THUMBNAIL_JPEG_QUALITY = 60
THUMBNAIL_WIDTH = 160


@dataclass(frozen=True, slots=True)
class FrameSample:
    """A frame as it sat in the slot, with when it arrived.

    The frame stays in its decoded (usually yuv420p) form: converting to BGR costs more
    than the drain loop should pay at 5–30 fps, so it happens only for the frames the
    sampler actually takes, and off the event loop. A snapshot's `frame` is its JPEG bytes.
    """

    frame: av.VideoFrame | bytes
    seq: int
    received_at: float  # wall clock (time.time()), what evidence and rules are stamped with
    received_monotonic: float  # time.monotonic(), for ages that must not jump with NTP

    @property
    def jpeg(self) -> bytes | None:
        """The student's own JPEG (snapshot transport), else None."""
        return self.frame if isinstance(self.frame, bytes) else None

    @property
    def width(self) -> int:
        return int(self.frame.width) if isinstance(self.frame, av.VideoFrame) else int(self.to_bgr().shape[1])

    @property
    def height(self) -> int:
        return int(self.frame.height) if isinstance(self.frame, av.VideoFrame) else int(self.to_bgr().shape[0])

    def to_bgr(self) -> BGRImage:
        """Convert to a BGR uint8 array (blocking; call from a worker thread)."""
        if isinstance(self.frame, bytes):
            return decode_jpeg(self.frame)
        # bgr24 always yields uint8; the stub's union covers every pixel format.
        image = np.asarray(self.frame.to_ndarray(format="bgr24"), dtype=np.uint8)
        return image


class LatestFrame:
    """Holds only the newest decoded frame of one track; older frames are released."""

    __slots__ = ("_received", "_sample")

    def __init__(self) -> None:
        self._sample: FrameSample | None = None
        self._received = 0

    def put(self, frame: av.VideoFrame | bytes) -> None:
        self._received += 1
        self._sample = FrameSample(
            frame=frame,
            seq=self._received,
            received_at=time.time(),
            received_monotonic=time.monotonic(),
        )

    def latest(self) -> FrameSample | None:
        return self._sample

    @property
    def frames_received(self) -> int:
        return self._received

    def clear(self) -> None:
        # Dropping the reference lets the decoder's buffer go as soon as a peer closes.
        self._sample = None


async def drain_track(track: MediaStreamTrack, slot: LatestFrame | None) -> None:
    """Receive every frame of `track` until it ends; keep video frames in `slot`.

    With `slot` None (audio, or anything we do not analyse) frames are discarded: they
    must still be received, or aiortc keeps them all.
    """
    first = True
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            # The remote side stopped the track or the peer closed: a normal end.
            return
        if first:
            # The track's decoder thread exists now: it yields the cores to the loop.
            first = False
            lower_decoder_threads()
        if slot is not None and isinstance(frame, av.VideoFrame):
            slot.put(frame)


def decode_jpeg(data: bytes) -> BGRImage:
    """Decode a JPEG to BGR (blocking); `MediaError("invalid")` when it is not one."""
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise MediaError("invalid", "the snapshot is not a decodable JPEG")
    return np.asarray(decoded, dtype=np.uint8)


def encode_jpeg(image: BGRImage, quality: int) -> bytes:
    """JPEG-encode a BGR image (blocking; call from a worker thread)."""
    ok, buffer = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise MediaError("invalid", f"cannot JPEG-encode an image of shape {image.shape}")
    return bytes(buffer.tobytes())


def evidence_jpeg(image: BGRImage) -> bytes:
    """The full sampled frame, as kept with a violation."""
    return encode_jpeg(image, EVIDENCE_JPEG_QUALITY)


def thumbnail_jpeg(image: BGRImage, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A small JPEG for the dashboard roster (160×120 for a 4:3 camera)."""
    height, src_width = image.shape[:2]
    if src_width > width:
        new_height = max(1, round(height * width / src_width))
        # INTER_AREA: the right filter for shrinking; the others alias on faces.
        small = cv2.resize(image, (width, new_height), interpolation=cv2.INTER_AREA)
        image = np.asarray(small, dtype=np.uint8)
    return encode_jpeg(image, THUMBNAIL_JPEG_QUALITY)
