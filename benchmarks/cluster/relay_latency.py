"""Cross-node event -> teacher latency, and Redis room-bus messages per node.

For each configuration it starts a loopback cluster (server/cli/cluster.py: Redis, Postgres,
N `proctor serve` processes; Nginx too, but clients connect to the nodes directly so the
placement of every client is chosen, not hashed): every room's teacher on node-1, its
students on the other nodes (all on node-1 when N = 1, which runs without Redis, as
`proctor serve` does by default). Each student sends `rate` client events per second; the
latency is from the student's send to the teacher's `violation` (it includes the durable
commit, which is the same in every configuration). Bounded: `--seconds` of load per
configuration, a fixed number of clients, loopback only.

    /work/venv/bin/python benchmarks/cluster/relay_latency.py --rooms 4 --students 10 --rate 2 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.cli.cluster import LocalCluster, NodeProcess, http_json

EXAM = {
    "title": "Bench",
    "duration_minutes": 60,
    "questions": [{"id": "q1", "kind": "single", "text": "?", "options": ["a", "b"]}],
}


@dataclass
class Result:
    label: str
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    redis: dict[str, tuple[float, float]]  # node -> (published/s, received/s)


def scrape(node: NodeProcess) -> tuple[float, float]:
    import urllib.request

    with urllib.request.urlopen(node.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for direction in ("published", "received"):
        match = re.search(rf'proctor_redis_messages{{direction="{direction}"}} ([0-9.e+]+)', text)
        values[direction] = float(match.group(1)) if match else 0.0
    return values["published"], values["received"]


async def run(cluster: LocalCluster, label: str, rooms: int, students: int, rate: float, seconds: float) -> Result:
    admin = cluster.admin_token
    first = cluster.nodes[0]
    student_nodes = cluster.nodes[1:] or cluster.nodes
    latencies: list[float] = []
    clients: list[socketio.AsyncClient] = []
    plans: list[tuple[socketio.AsyncClient, str]] = []
    for r in range(rooms):
        _, exam = http_json(first.url + "/api/exams", method="POST", token=admin, body=EXAM)
        _, room = http_json(
            first.url + f"/api/exams/{exam['id']}/rooms",
            method="POST",
            token=admin,
            body={"name": f"R{r}", "seats": students},
        )
        _, inv = http_json(
            first.url + f"/api/rooms/{room['id']}/invites",
            method="POST",
            token=admin,
            body={"students": [{"id": f"s{r}-{i}", "name": f"S{i}"} for i in range(students)]},
        )
        _, tok = http_json(
            first.url + "/api/tokens",
            method="POST",
            token=admin,
            body={"role": "teacher", "sub": f"t{r}", "rooms": [room["id"]]},
        )
        teacher = socketio.AsyncClient(reconnection=False)

        def on_violation(data: Any) -> None:
            latencies.append(time.time() - float(data["details"]["t"]))

        teacher.on("violation", on_violation, namespace="/teacher")
        await teacher.connect(
            first.url, namespaces=["/teacher"], auth={"token": tok["token"]}, transports=["websocket"]
        )
        ack = await teacher.call("watch", {"room_id": room["id"]}, namespace="/teacher")
        assert ack["ok"], ack
        clients.append(teacher)
        for i, invite in enumerate(inv["invites"]):
            node = student_nodes[(r * students + i) % len(student_nodes)]
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(
                node.url, namespaces=["/student"], auth={"token": invite["token"]}, transports=["websocket"]
            )
            ack = await sio.call("join", {}, namespace="/student")
            assert ack["ok"], ack
            clients.append(sio)
            plans.append((sio, ack["attempt"]["attempt_id"]))

    sent = 0
    stop_at = time.monotonic() + seconds

    async def student_loop(sio: socketio.AsyncClient) -> None:
        nonlocal sent
        seq = 0
        await asyncio.sleep(random.random() / rate)
        while time.monotonic() < stop_at:
            seq += 1
            payload = {
                "seq": seq,
                "kind": "window_blur",
                "occurred_at": datetime.now(UTC).isoformat(),
                "details": {"t": time.time()},
            }
            await sio.emit("event", payload, namespace="/student")
            sent += 1
            await asyncio.sleep(1 / rate)

    await asyncio.sleep(1.0)
    before = {n.node_id: scrape(n) for n in cluster.nodes}
    started = time.monotonic()
    await asyncio.gather(*(student_loop(sio) for sio, _ in plans))
    await asyncio.sleep(1.0)  # let the last ones arrive
    elapsed = time.monotonic() - started
    after = {n.node_id: scrape(n) for n in cluster.nodes}
    for sio in clients:
        await sio.disconnect()
    redis = {
        node: ((after[node][0] - before[node][0]) / elapsed, (after[node][1] - before[node][1]) / elapsed)
        for node in before
    }
    ordered = sorted(latencies) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Result(label, sent, len(latencies), statistics.median(ordered) * 1000, p99 * 1000, redis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--students", type=int, default=10, help="per room")
    parser.add_argument("--rate", type=float, default=2.0, help="events per student per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--configs", default="1,2:room,3:room,3:single", help="nodes[:channels] list; 1 = one node without Redis"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results: list[Result] = []
    for config in args.configs.split(","):
        nodes_text, _, mode = config.partition(":")
        nodes = int(nodes_text)
        mode = mode or "room"
        label = "1 node (no Redis)" if nodes == 1 else f"{nodes} nodes, {mode} channels"
        env = {
            "PROCTOR_REDIS_CHANNELS": mode,
            "PROCTOR_EVENTS_PER_SECOND": "50",
            "PROCTOR_ROOMS_PER_NODE": "50",
            "PROCTOR_LOG_LEVEL": "WARNING",
        }
        cluster = LocalCluster(
            root=Path(tempfile.mkdtemp(prefix="proctor-bench-cluster-")), node_count=nodes, env=env, use_redis=nodes > 1
        )
        print(f"== {label}: starting", flush=True)
        cluster.start()
        try:
            result = asyncio.run(run(cluster, label, args.rooms, args.students, args.rate, args.seconds))
        finally:
            cluster.stop()
        results.append(result)
        print(
            f"   sent {result.sent}, delivered {result.received}, "
            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms",
            flush=True,
        )
        for node, (pub, rec) in result.redis.items():
            print(f"   {node}: Redis published {pub:.0f}/s, received {rec:.0f}/s", flush=True)
    print(
        f"\nload: {args.rooms} rooms x {args.students} students x {args.rate}/s events, "
        f"{args.seconds:.0f} s per configuration"
    )
    print(f"{'configuration':32} {'p50 ms':>8} {'p99 ms':>8} {'delivered':>10}  Redis msgs/s per node (pub/recv)")
    for r in results:
        per_node = "  ".join(f"{n}:{p:.0f}/{q:.0f}" for n, (p, q) in r.redis.items())
        print(f"{r.label:32} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.received:>5}/{r.sent:<5}  {per_node}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2))


if __name__ == "__main__":
    main()
