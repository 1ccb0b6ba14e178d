"""py-spy evidence: sample the server during a phase and summarise where its time went.

`py-spy record -f raw` writes one line per distinct stack with its sample count; the
summary gives each frame's inclusive share and the share of samples that carry no Python
frame below the loop (time inside uvloop/libuv and C extensions: I/O, scheduling).
"""

from __future__ import annotations

import collections
import os
import subprocess
from pathlib import Path
from typing import Any

PY_SPY = Path(os.environ.get("PY_SPY", "/work/venv/bin/py-spy"))


def start(pid: int, seconds: float, out: Path, cpu: int | None) -> subprocess.Popen[bytes] | None:
    if not PY_SPY.exists():
        return None
    return subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, int(seconds))),
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
            "-r",
            os.environ.get("PYSPY_RATE", "50"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
    )


def summarise(raw: Path, top: int = 25) -> dict[str, Any]:
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    loop_only = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, n_text = line.rsplit(" ", 1)
        n = int(n_text)
        total += n
        frames = stack.split(";")
        # Frames below the event loop's run(); none means the sample was in native code.
        at = next((i for i, f in enumerate(frames) if f.startswith("Runner.run")), None)
        below = frames[at + 1 :] if at is not None else frames
        if not below:
            loop_only += n
        for f in set(below):
            inclusive[_short(f)] += n
        if below:
            leaf[_short(below[-1])] += n
    pct = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "native_loop_pct": pct(loop_only),
        "inclusive_pct": [[pct(n), f] for f, n in inclusive.most_common(top)],
        "self_pct": [[pct(n), f] for f, n in leaf.most_common(15)],
        "raw": str(raw),
    }


def _short(frame: str) -> str:
    # "func (path/to/site-packages/pkg/mod.py:123)" -> "func (pkg/mod.py:123)"
    return frame.replace("/work/venv/lib/python3.11/site-packages/", "").replace("/work/main/", "")[:140]
