"""Presence's grace (rooms/presence.py), on the in-process store and a real event loop with a
short grace: a student who drops is reconnecting at once and offline only once the grace has
passed; coming back within it records a network gap (a neutral timeline entry) and never
shows offline; a grace timer that fires after the student came back, here or on another
node, marks nobody offline."""

from __future__ import annotations

import asyncio
import time

from rooms.presence import LocalPresence, PresenceTracker
from rooms.protocols import PresenceState, PresenceWrite

# Long beside the short waits inside it (AWHILE), so a busy machine cannot make them overrun it.
GRACE = 0.5
AWHILE = 0.05
PAST_GRACE = GRACE + 0.3
ROOM, SEAT = "room-1", "attempt-1"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[PresenceState] = []
        self.at: list[float] = []  # loop time of each change
        self.gaps: list[tuple[float, float]] = []

    async def changed(self, room_id: str, attempt_id: str, state: PresenceState) -> None:
        assert (room_id, attempt_id) == (ROOM, SEAT)
        self.changes.append(state)
        self.at.append(asyncio.get_running_loop().time())

    async def gap(self, attempt_id: str, started: float, ended: float) -> None:
        self.gaps.append((started, ended))


def tracker(store: LocalPresence | None = None) -> tuple[PresenceTracker, LocalPresence, Recorder]:
    store = store or LocalPresence()
    seen = Recorder()
    return PresenceTracker(store, GRACE, seen.changed, seen.gap), store, seen


async def test_a_drop_is_reconnecting_at_once_and_offline_after_the_grace() -> None:
    presence, store, seen = tracker()
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    assert seen.changes == ["online", "reconnecting"]
    await asyncio.sleep(AWHILE)
    assert seen.changes == ["online", "reconnecting"]  # still inside the grace
    await asyncio.sleep(PAST_GRACE)
    assert seen.changes == ["online", "reconnecting", "offline"]
    # Never sooner than the grace (a timer may fire a clock tick early, never more).
    assert seen.at[2] - seen.at[1] >= GRACE - 0.01
    assert await store.room(ROOM) == {SEAT: "offline"}
    presence.close()


async def test_a_rejoin_within_the_grace_records_the_gap_and_never_shows_offline() -> None:
    presence, store, seen = tracker()
    await presence.connected(ROOM, SEAT)
    left = time.time()
    await presence.disconnected(SEAT)
    await asyncio.sleep(AWHILE)
    await presence.connected(ROOM, SEAT)
    back = time.time()
    await asyncio.sleep(PAST_GRACE)  # past the grace: the cancelled timer does nothing
    assert seen.changes == ["online", "reconnecting", "online"]
    [(started, ended)] = seen.gaps
    assert left <= started <= ended <= back
    assert ended - started >= AWHILE * 0.9
    assert await store.room(ROOM) == {SEAT: "online"}
    presence.close()


async def test_a_rejoin_after_offline_records_the_whole_absence() -> None:
    presence, _, seen = tracker()
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    await asyncio.sleep(PAST_GRACE)
    await presence.connected(ROOM, SEAT)
    assert seen.changes == ["online", "reconnecting", "offline", "online"]
    [(started, ended)] = seen.gaps
    assert ended - started >= GRACE  # from the drop, not from going offline
    presence.close()


async def test_a_second_tab_keeps_the_student_online() -> None:
    presence, _, seen = tracker()
    await presence.connected(ROOM, SEAT)
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    await asyncio.sleep(PAST_GRACE)
    assert seen.changes == ["online", "online"] and presence.connections(SEAT) == 1
    presence.close()


async def test_a_stale_timer_cannot_mark_a_returned_student_offline() -> None:
    presence, store, seen = tracker()
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    await presence.connected(ROOM, SEAT)
    # The grace timer of the drop fires after the student is back (it was due in the same
    # turn of the loop as the reconnect): it must see the connection and do nothing.
    presence._spawn_offline(SEAT)
    await asyncio.sleep(0.01)
    assert seen.changes == ["online", "reconnecting", "online"]
    assert await store.room(ROOM) == {SEAT: "online"}
    presence.close()


class MovedElsewhere(LocalPresence):
    """The student reconnected on another node: this node's later writes lose (a cluster's
    compare-and-set store refuses a state older than the one stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.moved = False

    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        if self.moved:
            return PresenceWrite(False)
        return await super().set(room_id, attempt_id, state)


async def test_a_timer_that_lost_to_another_node_tells_no_teacher() -> None:
    store = MovedElsewhere()
    presence, _, seen = tracker(store)
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    store.moved = True
    await asyncio.sleep(PAST_GRACE)
    assert seen.changes == ["online", "reconnecting"]
    presence.close()


async def test_a_submitted_attempt_never_goes_offline() -> None:
    presence, store, seen = tracker()
    await presence.connected(ROOM, SEAT)
    await presence.disconnected(SEAT)
    await presence.submitted(ROOM, SEAT)
    await asyncio.sleep(PAST_GRACE)
    assert seen.changes == ["online", "reconnecting", "submitted"]
    assert await store.room(ROOM) == {SEAT: "submitted"}
    presence.close()
