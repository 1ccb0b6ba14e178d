"""A simulated student on the snapshot transport, as cheap for its sender as the WebRTC
replay: the clip's frames are JPEG-encoded once (`replay.snapshot_jpegs`) and each student
sends the one its clock points at, once per sample interval, as a binary `frame` event over
a python-socketio client — what `server/static/js/snapshots.js` does in a browser.

Every student starts at its own place in the clip and after its own delay (the same ones
the WebRTC replay uses), so the covered-camera and two-face stretches are spread over the
minute. The send loop is bounded: it ends at `MAX_SECONDS` or when the bench stops it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import socketio

# Longer than any bench run (stages <= 600 s each, a handful of them), short enough that a
# sender left behind by a crashed bench stops by itself.
MAX_SECONDS = 3 * 3600


@dataclass
class SnapshotStudent:
    token: str
    start: int  # index into the clip's frames
    delay: float
    sio: socketio.AsyncClient | None = None
    task: asyncio.Task[None] | None = None
    sent: int = 0
    acked: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def on_ack(self, ack: Any = None) -> None:
        if isinstance(ack, dict) and ack.get("ok"):
            self.acked += 1
        else:
            code = str(ack.get("error", {}).get("code")) if isinstance(ack, dict) else "no_ack"
            self.refused[code] = self.refused.get(code, 0) + 1

    @property
    def connected(self) -> bool:
        return self.sio is not None and self.sio.connected


async def join(base: str, jpegs: list[bytes], fps: int, st: SnapshotStudent, errors: list[str]) -> bool:
    """Connect, join, and start sending; False (with the reason in `errors`) if refused."""
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            base, namespaces=["/student"], auth={"token": st.token}, transports=["websocket"], wait_timeout=30
        )
        ack = await sio.call("join", {}, namespace="/student", timeout=30)
        analysis = ack.get("analysis", {}) if ack.get("ok") else {}
        if not analysis.get("enabled") or analysis.get("transport") != "snapshot":
            errors.append(f"join: {ack}"[:200])
            await sio.disconnect()
            return False
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:200])
        await sio.disconnect()
        return False
    st.sio = sio
    interval = float(analysis.get("sample_interval_seconds", 1.0))
    st.task = asyncio.get_running_loop().create_task(_send(st, sio, jpegs, fps, interval))
    return True


async def _send(st: SnapshotStudent, sio: socketio.AsyncClient, jpegs: list[bytes], fps: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(st.delay)
    started = loop.time()
    # The clip's clock: a frame every 1/fps s; the page sends the one showing at each tick.
    step = max(1, round(interval * fps))
    index = st.start
    tick = 0
    while loop.time() - started < MAX_SECONDS and sio.connected:
        try:
            await sio.emit("frame", {"jpeg": jpegs[index % len(jpegs)]}, namespace="/student", callback=st.on_ack)
        except socketio.exceptions.SocketIOError:
            return
        st.sent += 1
        index += step
        tick += 1
        # Paced from the start, like the page: a late wake-up does not shift later frames.
        await asyncio.sleep(max(0.0, started + tick * interval - loop.time()))


async def stop(students: list[SnapshotStudent]) -> None:
    tasks = [s.task for s in students if s.task is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(s.sio.disconnect() for s in students if s.sio), return_exceptions=True)


def refused(students: list[SnapshotStudent]) -> dict[str, int]:
    total: dict[str, int] = {}
    for student in students:
        for code, count in student.refused.items():
            total[code] = total.get(code, 0) + count
    return total
