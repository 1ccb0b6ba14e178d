"""What listening for speech costs the host node, beside what the camera analysis costs, in
the same run: ms of CPU per student-second.

Audio path (media/audio.py + media/listener.py + detection/voice.py): Opus decode of 20 ms
packets (what aiortc's decoder thread does for a browser microphone), resampling to 16 kHz
mono, and Silero VAD batched across the students of a 0.5 s tick — for students who talk all
the time (every chunk goes through the model) and for silent ones (the RMS gate skips the
model). Video path (media/sampler.py at 1 sample/s, the page's 2 fps): VP8 decode of both
frames, BGR conversion, face detection on a 160-px copy, frame statistics.

Everything runs in this process, one thread, from pre-encoded packets, so the figure is the
work itself (no network, no encoder billed). CPU is `time.process_time()`.

    python benchmarks/analysis/bench_vad.py --students 20 --seconds 10

Not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detection import FaceDetector, ScaledDetector, VoiceModel, VoiceStream, frame_stats
from media.audio import Resampler

RATE = 48_000
FRAME = 960
TICK_FRAMES = 25  # 0.5 s of 20 ms frames: what the listener takes per tick
Pcm = npt.NDArray[np.int16]


def _speech(seconds: float) -> Pcm:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("bench_vad needs espeak-ng for the speech: apt-get install espeak-ng")
    text = "Can you tell me the answer to question three? I think it is forty two. " * 3
    import io
    import wave

    wav = subprocess.run([espeak, "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as source:
        rate = source.getframerate()
        raw = np.frombuffer(source.readframes(source.getnframes()), np.int16)
    pcm = np.interp(np.linspace(0, len(raw) - 1, int(len(raw) * RATE / rate)), np.arange(len(raw)), raw)
    return np.resize(pcm.astype(np.int16), int(seconds * RATE))


def _opus_packets(pcm: Pcm) -> list[Any]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = RATE
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.bit_rate = 32_000
    encoder.time_base = Fraction(1, RATE)
    packets: list[Any] = []
    stereo = np.repeat(pcm[: len(pcm) // FRAME * FRAME], 2)
    for index in range(0, len(stereo) // 2, FRAME):
        frame = av.AudioFrame.from_ndarray(
            stereo[index * 2 : (index + FRAME) * 2].reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = RATE
        frame.pts = index
        packets.extend(encoder.encode(frame))
    return packets


def audio_ms_per_student_second(model: VoiceModel, pcm: Pcm, students: int) -> tuple[float, float]:
    """(decode, resample + VAD) ms of CPU per student-second."""
    packets = _opus_packets(pcm)
    decoders = [av.CodecContext.create("opus", "r") for _ in range(students)]
    for decoder in decoders:
        decoder.sample_rate = RATE
        decoder.layout = "stereo"
    streams = [VoiceStream() for _ in range(students)]
    resamplers = [Resampler() for _ in range(students)]
    decode = listen = 0.0
    for start in range(0, len(packets), TICK_FRAMES):
        tick = packets[start : start + TICK_FRAMES]
        began = time.process_time()
        frames = [[f for packet in tick for f in decoder.decode(av.Packet(bytes(packet)))] for decoder in decoders]
        decode += time.process_time() - began
        began = time.process_time()
        audio = [resampler.samples(mine) for resampler, mine in zip(resamplers, frames, strict=True)]
        model.probabilities(list(zip(streams, audio, strict=True)))
        listen += time.process_time() - began
    seconds = len(packets) * FRAME / RATE * students
    return decode / seconds * 1000, listen / seconds * 1000


def video_ms_per_student_second(students: int, seconds: int) -> float:
    """Decode at 2 fps, analyse 1 frame a second (detect at 160 px), per student-second."""
    import skimage.data

    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    image = cv2.resize(np.ascontiguousarray(astronaut[:, :, ::-1]), (320, 240))
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.bit_rate = 100_000
    encoder.time_base = Fraction(1, 2)
    rng = np.random.default_rng(0)
    packets: list[Any] = []
    for index in range(2 * seconds):
        noisy = np.clip(image.astype(np.int16) + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(noisy, format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        packets.extend(encoder.encode(frame))
    detector = ScaledDetector(FaceDetector(), 160)
    decoders = [av.CodecContext.create("vp8", "r") for _ in range(students)]
    began = time.process_time()
    for index, packet in enumerate(packets):
        decoded = [f for decoder in decoders for f in decoder.decode(av.Packet(bytes(packet)))]
        if index % 2 == 0 and decoded:
            images = [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in decoded]
            detector.detect_batch(images)
            for picture in images:
                frame_stats(picture)
    return (time.process_time() - began) / (students * len(packets) / 2) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    model = VoiceModel()
    speech = _speech(args.seconds)
    quiet = np.zeros_like(speech)
    print(
        f"{'students':>8} {'audio decode':>13} {'VAD talking':>12} {'VAD silent':>11} "
        f"{'audio talking':>14} {'video analysis':>15}   (ms CPU per student-second)"
    )
    for students in args.students:
        decode, talking = audio_ms_per_student_second(model, speech, students)
        _, silent = audio_ms_per_student_second(model, quiet, students)
        video = video_ms_per_student_second(students, args.seconds)
        print(
            f"{students:>8} {decode:>13.2f} {talking:>12.2f} {silent:>11.2f} {decode + talking:>14.2f} {video:>15.2f}"
        )


if __name__ == "__main__":
    main()
