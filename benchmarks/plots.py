"""Draw the benchmark plots (PNG, docs/img/) from the newest results in benchmarks/results/.

    python -m benchmarks.plots

- load-latency.png: event->teacher and event->ack p50/p99 vs connected students, ours vs
  the bare relay and the raw WebSocket server (newest `load-final-*.json`, or `--load FILE`);
- storage-batch.png: durable violations/s and commit latency vs writer batch size, with the
  single-row INSERT and COPY baselines (newest `storage-*.json`);
- analysis-cpu.png: cores used vs students analysed (from `analysis-decode.txt`, the saved
  output of benchmarks/analysis/bench_decode.py, and `analysis-inference.txt`);
- analysis-node.png: the real node analysing students — loop lag, cores and analysed rate vs
  students (newest `analysis-node-sweep-*.json`) and RSS over the 10-minute soak (newest
  `analysis-node-soak-*.json`), both from benchmarks/analysis/bench_node.py.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
COLOURS = {"ours": "#c0392b", "relay": "#2980b9", "echo": "#27ae60", "ours-nogc": "#8e44ad"}
LABELS = {
    "ours": "proctor node",
    "relay": "bare python-socketio relay",
    "echo": "raw aiohttp WebSocket",
    "ours-nogc": "proctor node, GC tuning off",
}


def newest(pattern: str) -> Path | None:
    files = sorted(RESULTS.glob(pattern), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def load_latency(path: Path) -> Path:
    report = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in (
        (axes[0], "event_to_teacher", "event → teacher"),
        (axes[1], "event_to_ack", "event → durable ack"),
    ):
        marked = False
        for name, result in report["targets"].items():
            stages = [s for s in result.get("stages", []) if "load" in s]
            if not stages:
                continue
            xs = [s["load"]["students"] for s in stages]
            colour = COLOURS.get(name, "grey")
            ax.plot(
                xs,
                [s["load"][key]["p99_ms"] for s in stages],
                "o-",
                color=colour,
                label=f"{LABELS.get(name, name)} p99",
            )
            ax.plot(
                xs,
                [s["load"][key]["p50_ms"] for s in stages],
                "s--",
                color=colour,
                alpha=0.6,
                label=f"{LABELS.get(name, name)} p50",
            )
            # Where the generator itself was late (starved or saturated) the point says so.
            bad = [s for s in stages if s["load"]["generator"]["saturated"]]
            if bad:
                ax.plot(
                    [s["load"]["students"] for s in bad],
                    [s["load"][key]["p99_ms"] for s in bad],
                    "x",
                    color="black",
                    ms=11,
                    mew=2,
                    label=None if marked else "generator late: not the server's figure",
                )
                marked = True
        ax.axhline(100 if key == "event_to_teacher" else 150, color="black", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("connected students (0.2 events/s each, rooms of 30)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency, ms (log)")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle("Latency vs connected students — one server process on one core (dotted: target)")
    fig.tight_layout()
    out = IMG / "load-latency.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def storage_batch(path: Path) -> Path:
    report = json.loads(path.read_text())
    sat = [r for r in report["writer"] if r["mode"] == "saturated"]
    paced = [r for r in report["writer"] if r["mode"] == "paced"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(
        [r["batch_size"] for r in sat],
        [r["rows_per_s"] for r in sat],
        "o-",
        color=COLOURS["ours"],
        label="EventWriter (5,000 in flight)",
    )
    single = [r for r in report["writer"] if r["mode"] == "saturated, 1 flusher"]
    if single:
        ax1.plot(
            [r["batch_size"] for r in single],
            [r["rows_per_s"] for r in single],
            "o:",
            color=COLOURS["ours"],
            alpha=0.5,
            label="EventWriter, one flusher",
        )
    styles = {"single-row INSERT": ":", "COPY": "--", "unnest, no score": "-."}
    for b in report["baselines"]:
        label = b["mode"] + (f" ×{b['connections']} conn" if "connections" in b else "")
        ax1.axhline(b["rows_per_s"], ls=styles.get(b["mode"], ":"), color="grey", lw=1)
        ax1.annotate(
            f"{label}: {b['rows_per_s']:,}/s",
            (sat[0]["batch_size"], b["rows_per_s"]),
            fontsize=7,
            xytext=(2, 2),
            textcoords="offset points",
        )
    ax1.axhline(50_000, color="black", lw=0.8, ls=":")
    ax1.annotate(
        "target 50,000/s", (sat[0]["batch_size"], 50_000), fontsize=7, xytext=(2, -9), textcoords="offset points"
    )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("writer batch size (rows per transaction)")
    ax1.set_ylabel("durable violations / s (log)")
    ax1.set_title("throughput")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="lower right")
    for rows, label, style in (
        (sat, "5,000 in flight (saturated)", "o-"),
        (paced, f"{paced[0]['offered_per_s']:,.0f}/s offered" if paced else "", "s--"),
    ):
        if rows:
            ax2.plot([r["batch_size"] for r in rows], [r["p99_ms"] for r in rows], style, label=f"p99, {label}")
            ax2.plot(
                [r["batch_size"] for r in rows], [r["p50_ms"] for r in rows], style, alpha=0.5, label=f"p50, {label}"
            )
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("writer batch size")
    ax2.set_ylabel("submit → commit, ms (log)")
    ax2.set_title("commit latency")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle("Durable writer (rooms/store/event_writer.py) against embedded Postgres, fsync on")
    fig.tight_layout()
    out = IMG / "storage-batch.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def analysis_cpu(decode: Path, inference: Path | None) -> Path:
    rows: list[tuple[int, float]] = []
    for line in decode.read_text().splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+)\s", line)
        if m:
            rows.append((int(m.group(1)), float(m.group(2))))
    detect_ms: float | None = None
    if inference is not None:
        for line in inference.read_text().splitlines():
            # "320x240     batch 8     12.34 ..." -> the batched ms/frame at 320x240
            m = re.match(r"\s*320x240\s+batch\s*(\d+)\s+([\d.]+)", line)
            if m and int(m.group(1)) == 8:
                detect_ms = float(m.group(2))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = [r[0] for r in rows]
    ax.plot(
        xs,
        [n * ms / 1000 for n, ms in rows],
        "o-",
        color=COLOURS["ours"],
        label="measured: receive + decode + sample + detect (bench_decode --detect)",
    )
    if detect_ms is not None and rows:
        # Extrapolation: decode cost per student from the largest measured count, plus one
        # batched detection per student per second.
        n_max, ms_max = rows[-1]
        grid = list(range(0, max(60, 2 * n_max) + 1, 5))
        ax.plot(
            grid,
            [n * ms_max / 1000 for n in grid],
            ":",
            color="grey",
            label=f"linear from {n_max} students ({ms_max:.1f} ms CPU per student-second)",
        )
        ax.plot(
            grid,
            [n * detect_ms / 1000 for n in grid],
            "--",
            color=COLOURS["relay"],
            label=f"detection only, 1 sample/s, batch 8 ({detect_ms:.1f} ms/frame)",
        )
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xlabel("students analysed on the node (320x240 @ 5 fps in, 1 sample/s analysed)")
    ax.set_ylabel("CPU, cores")
    ax.set_title("Server-side analysis: CPU vs students analysed")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = IMG / "analysis-cpu.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def analysis_node(sweep: Path | None, soak: Path | None) -> Path:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if sweep is not None:
        stages = json.loads(sweep.read_text())["stages"]
        xs = [s["students"] for s in stages]
        ax1.plot(xs, [s["loop_lag"]["p99_ms"] for s in stages], "o-", color=COLOURS["ours"], label="loop lag p99")
        ax1.plot(
            xs, [s["loop_lag"]["max_ms"] for s in stages], "^:", color=COLOURS["ours"], alpha=0.6, label="loop lag max"
        )
        ax1.plot(
            xs, [s["loop_lag"]["p50_ms"] for s in stages], "s--", color=COLOURS["ours"], alpha=0.6, label="loop lag p50"
        )
        ax1.axhline(50, color="black", lw=0.8, ls=":")
        ax1.annotate("target p99 < 50 ms", (xs[0], 50), fontsize=7, xytext=(2, 3), textcoords="offset points")
        ax1.set_xlabel("students analysed (320x240 @ 2 fps VP8 in, 1 sample/s, 160-px detection)")
        ax1.set_ylabel("event-loop lag, ms")
        ax1.grid(True, alpha=0.3)
        right = ax1.twinx()
        right.plot(xs, [s["server_cores"] for s in stages], "D-", color=COLOURS["relay"], label="node CPU, cores")
        right.plot(
            xs,
            [s["analysed_fps_per_student"] for s in stages],
            "x-",
            color=COLOURS["echo"],
            label="analysed samples/s per student",
        )
        right.plot(xs, [s["sender_cores"] for s in stages], "v--", color="grey", label="senders' CPU, cores")
        right.set_ylim(0, 2.0)
        right.set_ylabel("cores  /  samples per second")
        lines = ax1.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax1.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
        ax1.set_title(f"sweep, {stages[0]['seconds']:.0f} s per stage")
    if soak is not None:
        stage = json.loads(soak.read_text())["stages"][-1]
        points = stage["rss_mb"]
        ax2.plot(
            [t / 60 for t, _ in points],
            [v for _, v in points],
            "o-",
            color=COLOURS["ours"],
            label=f"RSS, {stage['students']} students (slope after warm-up "
            f"{stage['rss_slope_mb_per_min']:+.2f} MB/min)",
        )
        ax2.set_ylim(0, max(v for _, v in points) * 1.2)
        ax2.set_xlabel("minutes into the soak")
        ax2.set_ylabel("node RSS, MB")
        lag = stage["loop_lag"]
        ax2.set_title(
            f"soak: loop lag p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms, "
            f"{stage['analysed_fps_per_student']} samples/s per student",
            fontsize=9,
        )
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle("Server-side analysis on the real node (proctor serve, 2-core VM; senders on the same machine)")
    fig.tight_layout()
    out = IMG / "analysis-node.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=Path)
    parser.add_argument("--storage", type=Path)
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    made: list[Any] = []
    load = args.load or newest("load-final-*.json")
    if load:
        made.append(load_latency(load))
    storage = args.storage or newest("storage-*.json")
    if storage:
        made.append(storage_batch(storage))
    decode = RESULTS / "analysis-decode.txt"
    if decode.exists():
        inference = RESULTS / "analysis-inference.txt"
        made.append(analysis_cpu(decode, inference if inference.exists() else None))
    node_sweep, node_soak = newest("analysis-node-sweep-*.json"), newest("analysis-node-soak-*.json")
    if node_sweep or node_soak:
        made.append(analysis_node(node_sweep, node_soak))
    for path in made:
        print(path)


if __name__ == "__main__":
    main()
