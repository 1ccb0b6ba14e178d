"""Where a node's analysis CPU goes, by stage, in ms per student-second (bench_node.py).

Two sources, both read from outside the node as an operator could:

- `/metrics` `proctor_analysis_stage_seconds{stage}`: the sampler's own thread-time
  counters (media/sampler.py) — JPEG/VP8-frame decoding to BGR, the change check, face
  detection (resize included), frame statistics, thumbnails, evidence JPEGs in the worker
  threads; the rules on the loop;
- per-thread CPU of the node process (psutil): the event loop's thread (the main thread:
  Socket.IO, RTP/SRTP receive and depacketising on the WebRTC path, pushes to teachers,
  the rules) and all the others together (on the WebRTC path aiortc's VP8 decoder thread
  per student and libvpx's own threads; the sampler's workers).

"other threads" = all threads − loop thread − the worker stages: on the WebRTC path
that is the decoding of every received frame (2 fps), which the sampler never asked for.
"""

from __future__ import annotations

from typing import Any

import psutil  # type: ignore[import-untyped]

STAGE_METRIC = "proctor_analysis_stage_seconds"
DETECTIONS_METRIC = "proctor_analysis_detections"
WORKER_STAGES = ("decode", "change", "detect", "stats", "thumbnail", "evidence")
ROWS = ("loop thread", "  of which rules", *(f"worker: {s}" for s in WORKER_STAGES), "other threads", "total")


def parse_labelled(text: str) -> dict[str, float]:
    """`name{label="x"} value` lines of the two analysis metrics, as {"name:x": value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith((STAGE_METRIC + "{", DETECTIONS_METRIC + "{")):
            name, rest = line.split("{", 1)
            label = rest.split('"', 2)[1]
            out[f"{name}:{label}"] = float(line.rsplit(" ", 1)[1])
    return out


def thread_cpu(proc: psutil.Process) -> tuple[float, float]:
    """(the main thread's CPU seconds, the whole process's) — the main thread runs the loop."""
    main = next((t for t in proc.threads() if t.id == proc.pid), None)
    total = proc.cpu_times()
    return (main.user_time + main.system_time) if main else 0.0, float(total.user + total.system)


def profile(
    m0: dict[str, float],
    m1: dict[str, float],
    cpu0: tuple[float, float],
    cpu1: tuple[float, float],
    student_seconds: float,
) -> dict[str, Any]:
    """ms of CPU per student-second by stage, and how often detection was skipped."""

    def delta(key: str) -> float:
        return m1.get(key, 0.0) - m0.get(key, 0.0)

    per = 1000.0 / student_seconds if student_seconds else 0.0
    loop = cpu1[0] - cpu0[0]
    total = cpu1[1] - cpu0[1]
    workers = {stage: delta(f"{STAGE_METRIC}:{stage}") for stage in WORKER_STAGES}
    rows = {
        "loop thread": loop,
        "  of which rules": delta(f"{STAGE_METRIC}:rules"),
        **{f"worker: {stage}": seconds for stage, seconds in workers.items()},
        "other threads": max(0.0, total - loop - sum(workers.values())),
        "total": total,
    }
    detected = delta(f"{DETECTIONS_METRIC}:detected")
    unchanged = delta(f"{DETECTIONS_METRIC}:unchanged")
    return {
        "ms_per_student_second": {name: round(seconds * per, 3) for name, seconds in rows.items()},
        "detections": int(detected),
        "unchanged_skipped": int(unchanged),
        "skipped_share": round(unchanged / (detected + unchanged), 3) if detected + unchanged else None,
    }


def print_profiles(columns: list[tuple[str, dict[str, Any]]]) -> None:
    """One column per (transport, students) stage, one row per stage."""
    if not columns:
        return
    width = max(14, *(len(name) + 2 for name, _ in columns))
    print("\n  ms CPU per student-second, by stage")
    print("  " + "stage".ljust(22) + "".join(name.rjust(width) for name, _ in columns))
    for row in ROWS:
        cells = "".join(f"{p['ms_per_student_second'].get(row, 0.0):.2f}".rjust(width) for _, p in columns)
        print("  " + row.ljust(22) + cells)
    cells = "".join(
        (f"{p['skipped_share'] * 100:.0f} %" if p["skipped_share"] is not None else "-").rjust(width)
        for _, p in columns
    )
    print("  " + "detections skipped".ljust(22) + cells, flush=True)
