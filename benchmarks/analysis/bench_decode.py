"""What receiving students' cameras costs the host node: CPU per student-second of the
receive + decode + drain path (`media.AnalysisPeers`), and frames lost on the way.

N synthetic cameras (320x240, 5 fps, like the student page sends) run as aiortc peers in a
*child* process, so that their encoding is not billed to the receiver; this process is
the node. CPU is `time.process_time()` of this process (all its threads: aiortc decodes
in one thread per track) over a fixed window after every peer has connected.

    python benchmarks/analysis/bench_decode.py --students 5 20 --seconds 15
    python benchmarks/analysis/bench_decode.py --students 20 --detect   # + sampler & ONNX

Not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing as mp
import resource
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detection import FaceDetector, RuleSettings, RuleViolation, ScaledDetector
from media import AnalysisPeers, AnalysisSampler, AnalysisSettings, LoopLagMonitor

Frame = npt.NDArray[np.uint8]
VIDEO_CLOCK = 90_000
WARM_UP_SECONDS = 2.0


def _camera_image(width: int, height: int) -> Frame:
    try:
        import skimage.data

        rgb = skimage.data.astronaut()  # type: ignore[no-untyped-call]
        image = cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), (width, height))
    except ImportError:
        # Without scikit-image: a gradient, still something for the encoder to chew on.
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        image = np.repeat(np.repeat(ramp[None, :, None], height, axis=0), 3, axis=2)
    return np.asarray(image, np.uint8)


class NoisyCamera(VideoStreamTrack):
    """A still image plus sensor-like noise, paced at `fps`: a real webcam never sends
    two identical frames, and identical frames would make decoding unrealistically cheap."""

    def __init__(self, image: Frame, fps: int, noise: float, seed: int) -> None:
        super().__init__()
        self._image = image.astype(np.int16)
        self._fps = fps
        self._noise = noise
        self._rng = np.random.default_rng(seed)
        self._clock_start: float | None = None
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        if self._clock_start is None:
            self._clock_start = time.monotonic()
        delay = self._clock_start + self.sent / self._fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        noisy = self._image + self._rng.normal(0, self._noise, self._image.shape).astype(np.int16)
        frame = av.VideoFrame.from_ndarray(np.clip(noisy, 0, 255).astype(np.uint8), format="bgr24")
        frame.pts = self.sent * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


def _senders(conn: Connection, students: int, width: int, height: int, fps: int, noise: float) -> None:
    asyncio.run(_senders_main(conn, students, width, height, fps, noise))


async def _senders_main(conn: Connection, students: int, width: int, height: int, fps: int, noise: float) -> None:
    loop = asyncio.get_running_loop()
    image = _camera_image(width, height)
    clients = []
    cameras = []
    offers = []
    for index in range(students):
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        camera = NoisyCamera(image, fps, noise, seed=index)
        client.addTrack(camera)
        await client.setLocalDescription(await client.createOffer())
        clients.append(client)
        cameras.append(camera)
        offers.append(client.localDescription.sdp)
    conn.send(offers)
    answers = await loop.run_in_executor(None, conn.recv)
    for client, answer in zip(clients, answers, strict=True):
        await client.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await loop.run_in_executor(None, conn.recv)  # "stop"
    # Closed first, so that no frame is sent after it was counted.
    await asyncio.gather(*(client.close() for client in clients))
    conn.send([camera.sent for camera in cameras])


class CountingSink:
    def __init__(self) -> None:
        self.violations = 0
        self.thumbnails = 0

    async def violation(self, attempt_id: str, violation: RuleViolation, evidence_jpeg: bytes) -> None:
        self.violations += 1

    async def thumbnail(self, attempt_id: str, jpeg: bytes) -> None:
        self.thumbnails += 1


@dataclass(frozen=True)
class Result:
    students: int
    seconds: float
    cpu_ms_per_student_second: float
    frames_sent: int
    frames_received: int
    sampler_dropped: int | None
    samples_analysed: int | None
    max_loop_lag_ms: float
    max_rss_mb: float


async def run(args: argparse.Namespace, students: int) -> Result:
    loop = asyncio.get_running_loop()
    context = mp.get_context("spawn")
    parent_conn, child_conn = context.Pipe()
    child = context.Process(
        target=_senders,
        args=(child_conn, students, args.width, args.height, args.fps, args.noise),
        daemon=True,
    )
    child.start()
    peers = AnalysisPeers()
    settings = AnalysisSettings(rule_settings=RuleSettings(), sample_interval=args.sample_interval)
    detector: FaceDetector | ScaledDetector = FaceDetector()
    if args.detect_width:
        detector = ScaledDetector(detector, args.detect_width)
    sampler = AnalysisSampler(peers, detector, CountingSink()) if args.detect else None
    lag = sampler.loop_lag if sampler is not None else LoopLagMonitor()
    try:
        offers = await loop.run_in_executor(None, parent_conn.recv)
        answers = []
        for index, sdp in enumerate(offers):
            answer, _ = await peers.accept_offer(f"s{index}", sdp, "offer", settings)
            answers.append(answer)
        parent_conn.send(answers)
        # Kept here: a source leaves `peers.sources()` when its peer closes at the end.
        sources = peers.sources()
        if sampler is not None:
            await sampler.start()
        else:
            lag.start()
        await asyncio.sleep(WARM_UP_SECONDS)
        lag.reset_max()
        dropped_before = sampler.dropped_frames if sampler else 0
        samples_before = sampler.stats.samples if sampler else 0
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        max_lag = lag.max_lag
        parent_conn.send("stop")
        sent_counts = await loop.run_in_executor(None, parent_conn.recv)
        await asyncio.sleep(0.5)  # the last packets still in flight
        return Result(
            students=students,
            seconds=wall,
            cpu_ms_per_student_second=cpu * 1000 / (students * wall),
            frames_sent=sum(sent_counts),
            frames_received=sum(source.slot.frames_received for source in sources),
            sampler_dropped=(sampler.dropped_frames - dropped_before) if sampler else None,
            samples_analysed=(sampler.stats.samples - samples_before) if sampler else None,
            max_loop_lag_ms=max_lag * 1000,
            max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
    finally:
        if sampler is not None:
            await sampler.stop()
        else:
            await lag.stop()
        await peers.close_all()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window (<= 600)")
    parser.add_argument("--fps", type=int, default=5)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise std-dev (0 = still)")
    parser.add_argument("--detect", action="store_true", help="also run the sampler and CenterFace")
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument(
        "--detect-width",
        type=int,
        default=0,
        help="detect on a copy this wide (the server's PROCTOR_ANALYSIS_DETECT_WIDTH, 160)",
    )
    args = parser.parse_args()
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600] (600 for the memory soak)")

    print(
        f"receiver: {args.width}x{args.height} @ {args.fps} fps, noise {args.noise}, "
        f"window {args.seconds:.0f} s, detect={'on' if args.detect else 'off'}"
    )
    print("students  cpu ms/student-s  sent  received  lost  sampler-dropped  analysed  max-lag-ms  max-rss-MB")
    for students in args.students:
        result = asyncio.run(run(args, students))
        lost = result.frames_sent - result.frames_received
        dropped = "-" if result.sampler_dropped is None else str(result.sampler_dropped)
        analysed = "-" if result.samples_analysed is None else str(result.samples_analysed)
        print(
            f"{result.students:8d}  {result.cpu_ms_per_student_second:16.1f}  {result.frames_sent:4d}  "
            f"{result.frames_received:8d}  {lost:4d}  {dropped:>15}  {analysed:>8}  "
            f"{result.max_loop_lag_ms:10.1f}  {result.max_rss_mb:10.0f}"
        )


if __name__ == "__main__":
    main()
