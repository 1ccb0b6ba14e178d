"""A camera that costs its sender almost nothing: a VP8 clip encoded once, replayed as
packets by every simulated student.

aiortc's `RTCRtpSender` calls the encoder's `pack()` instead of `encode()` when a track's
`recv()` returns an `av.Packet` rather than a frame (`_next_encoded_frame`; the same path
`MediaPlayer(decode=False)` uses). A hundred real senders would spend both cores of this
machine on VP8 encoding; replaying packets leaves the sender with SRTP and RTP only, so
the receiving node is what gets measured.

The clip is what a student page sends (320x240, 2 fps, ~100 kbps) and is built to make
the rules work: a face that moves, then a covered camera (no_face, camera_blocked), then
two faces (multiple_faces), then the face again. Keyframes sit every `gop` frames and the
clip's length is a multiple of `gop`, so a replay that starts at a keyframe index and
wraps around always feeds the decoder a keyframe where it needs one. Timestamps keep
increasing across the wrap: the receiver's jitter buffer would drop a frame that went
back in time.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamTrack

Frame = npt.NDArray[np.uint8]
VIDEO_CLOCK = 90_000


@dataclass(frozen=True)
class Clip:
    packets: list[bytes]
    keyframes: list[int]  # indexes into `packets`
    fps: int
    width: int
    height: int
    script: list[str]  # what each frame shows: "face", "dark", "two"

    @property
    def kbps(self) -> float:
        return sum(len(p) for p in self.packets) * 8 * self.fps / len(self.packets) / 1000


@lru_cache(maxsize=1)
def _astronaut() -> Frame:
    import skimage.data

    rgb = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _frame(kind: str, index: int, width: int, height: int, rng: np.random.Generator, motion: float = 1.0) -> Frame:
    if kind == "dark":
        # A hand over the lens: almost black, a little sensor noise.
        base = np.full((height, width, 3), 8, np.int16)
    elif kind == "two":
        pair = np.hstack([_astronaut(), _astronaut()])
        strip = cv2.resize(pair, (width, height // 3 * 2), interpolation=cv2.INTER_AREA)
        pad = (height - strip.shape[0]) // 2
        base = cv2.copyMakeBorder(
            strip, pad, height - strip.shape[0] - pad, 0, 0, cv2.BORDER_CONSTANT, value=(40, 40, 40)
        ).astype(np.int16)
    else:
        # The student shifts and leans a little from frame to frame.
        image = _astronaut()
        size = image.shape[0]
        # motion 1: the face sways across the picture and grows and shrinks (a camera
        # panning, the worst case for skipping unchanged frames); 0.1: a student at a desk.
        crop = int(size * (0.86 + 0.06 * motion * np.sin(index / 7)))
        x = int((size - crop) * (0.5 + 0.5 * motion * np.sin(index / 5)))
        y = int((size - crop) * (0.5 + 0.5 * motion * np.cos(index / 9)))
        base = cv2.resize(image[y : y + crop, x : x + crop], (width, height), interpolation=cv2.INTER_AREA).astype(
            np.int16
        )
    noisy = base + rng.normal(0, 2.5, base.shape).astype(np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def script(seconds: int, fps: int) -> list[str]:
    """Per frame: mostly a face; 6 s covered and 5 s of two faces in every minute."""
    kinds = []
    for i in range(seconds * fps):
        t = (i / fps) % 60
        kinds.append("dark" if 30 <= t < 36 else "two" if 45 <= t < 50 else "face")
    return kinds


def encode_clip(
    seconds: int = 60,
    fps: int = 2,
    width: int = 320,
    height: int = 240,
    kbps: int = 100,
    gop_seconds: int = 10,
    motion: float = 1.0,
) -> Clip:
    """Encode the scripted clip once with libvpx (VP8), as a browser would send it."""
    gop = gop_seconds * fps
    if (seconds * fps) % gop:
        raise ValueError("the clip must be a whole number of GOPs")
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.bit_rate = kbps * 1000
    codec.gop_size = gop
    # Real-time settings, like a browser's encoder: no look-ahead, so no frame is held back.
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "keyint_min": str(gop),
        "auto-alt-ref": "0",
    }
    rng = np.random.default_rng(7)
    kinds = script(seconds, fps)
    packets: list[bytes] = []
    keyframes: list[int] = []
    for i, kind in enumerate(kinds):
        frame = av.VideoFrame.from_ndarray(_frame(kind, i, width, height, rng, motion), format="bgr24").reformat(
            format="yuv420p"
        )
        frame.pts = i
        if i % gop == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in codec.encode(frame):
            if packet.is_keyframe:
                keyframes.append(len(packets))
            packets.append(bytes(packet))
    for packet in codec.encode(None):
        if packet.is_keyframe:
            keyframes.append(len(packets))
        packets.append(bytes(packet))
    if len(packets) != len(kinds) or any(k % gop for k in keyframes) or 0 not in keyframes:
        raise RuntimeError(f"unexpected encoder output: {len(packets)} packets, keyframes at {keyframes}")
    return Clip(packets, keyframes, fps, width, height, kinds)


class ReplayTrack(MediaStreamTrack):
    """Replays `clip` from keyframe `start`, paced at the clip's frame rate, forever.

    `delay` holds the first frame back that many seconds: students who all joined within
    a second would otherwise cover their cameras at the same moments, every minute.
    """

    kind = "video"

    def __init__(self, clip: Clip, start: int = 0, delay: float = 0.0) -> None:
        super().__init__()
        if start not in clip.keyframes:
            raise ValueError("a replay must start on a keyframe")
        self._clip = clip
        self._start = start
        self._step = VIDEO_CLOCK // clip.fps
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._delay = delay
        self._clock_start: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet[Any]:
        if self._clock_start is None:
            self._clock_start = time.monotonic() + self._delay
        delay = self._clock_start + self.sent / self._clip.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._clip.packets[(self._start + self.sent) % len(self._clip.packets)]
        packet = av.Packet(data)
        packet.pts = self.sent * self._step
        packet.time_base = self._time_base
        self.sent += 1
        return packet


def snapshot_jpegs(clip: Clip, quality: int = 60) -> list[bytes]:
    """The clip as the snapshot transport's student page would send it: each frame decoded
    from the same VP8 packets (so both transports see the same pictures, artefacts
    included) and JPEG-encoded once at the page's quality (0.6 in `snapshots.js`)."""
    decoder = av.CodecContext.create("libvpx", "r")
    jpegs: list[bytes] = []
    for data in clip.packets:
        for frame in decoder.decode(av.Packet(data)):
            image = frame.to_ndarray(format="bgr24")
            ok, encoded = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
            if not ok:
                raise RuntimeError("cannot JPEG-encode a clip frame")
            jpegs.append(bytes(encoded.tobytes()))
    if len(jpegs) != len(clip.packets):
        raise RuntimeError(f"decoded {len(jpegs)} of {len(clip.packets)} clip frames")
    return jpegs
