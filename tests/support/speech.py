"""Sounds for the speaking tests: real synthetic speech from `espeak-ng`, and silence, tones
and keyboard-like clicks made with numpy. 16-bit PCM WAV files and 16 kHz float arrays.

A missing espeak-ng fails the test that needs it, saying what to install; never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

Pcm = npt.NDArray[np.int16]
Samples = npt.NDArray[np.float32]
RATE = 16_000

SENTENCES = (
    "Can you tell me the answer to question three? I think it is forty two, "
    "but the second part asks for the square root of two, so write one point four one."
)


def espeak_pcm(text: str = SENTENCES, rate: int = RATE) -> Pcm:
    """`text` spoken by espeak-ng, mono 16-bit at `rate` Hz."""
    program = shutil.which("espeak-ng")
    if program is None:
        pytest.fail(
            "espeak-ng makes the test speech: apt-get install espeak-ng (./install.sh test installs it)", pytrace=False
        )
    wav = subprocess.run([program, "--stdout", text], check=True, capture_output=True, timeout=60).stdout
    path_rate, pcm = _parse_wav(wav)
    return resample(pcm, path_rate, rate)


def _parse_wav(data: bytes) -> tuple[int, Pcm]:
    import io

    # espeak-ng writes a streaming header (length 0x7fffffff); wave reads what is there.
    with wave.open(io.BytesIO(data)) as source:
        rate = source.getframerate()
        frames = source.readframes(source.getnframes())
    return rate, np.frombuffer(frames[: len(frames) // 2 * 2], np.int16)


def resample(pcm: Pcm, source_rate: int, rate: int) -> Pcm:
    if source_rate == rate:
        return pcm
    count = int(len(pcm) * rate / source_rate)
    positions = np.linspace(0, len(pcm) - 1, count)
    return np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)


def silence(seconds: float, rate: int = RATE) -> Pcm:
    return np.zeros(int(seconds * rate), np.int16)


def tone(seconds: float, hz: float = 440.0, rate: int = RATE, level: float = 0.3) -> Pcm:
    t = np.arange(int(seconds * rate)) / rate
    return (level * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def clicks(seconds: float, per_second: float = 8.0, rate: int = RATE, seed: int = 1) -> Pcm:
    """Keyboard-like: short decaying noise bursts at random moments, ~8 keys a second."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate))
    burst = int(0.01 * rate)
    for start in rng.integers(0, len(out) - burst, int(seconds * per_second)):
        out[start : start + burst] += rng.normal(0, 8000, burst) * np.exp(-np.arange(burst) / (burst / 5))
    return np.clip(out, -32767, 32767).astype(np.int16)


def as_float(pcm: Pcm) -> Samples:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def write_wav(path: Path, pcm: Pcm, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path
