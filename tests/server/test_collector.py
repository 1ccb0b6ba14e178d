"""GC pause timing and the freeze after a burst of connections."""

from __future__ import annotations

import gc

import pytest

from server.collector import BurstFreezer, PauseTimer


def test_pause_timer_observes_each_collection() -> None:
    seen: list[tuple[int, float]] = []
    timer = PauseTimer(lambda generation, seconds: seen.append((generation, seconds)))
    gc.callbacks.append(timer)
    try:
        gc.collect(1)
    finally:
        gc.callbacks.remove(timer)
    assert [g for g, _ in seen] == [1] and seen[0][1] >= 0


def test_a_burst_is_frozen_once_it_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    freezes: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    sockets = [0]
    freezer = BurstFreezer(lambda: sockets[0], burst=100, settled=2.0)
    for t, count in enumerate((50, 150, 300, 400)):  # connecting: never frozen meanwhile
        sockets[0] = count
        assert freezer.tick(now=float(t)) == 0
    assert freezer.tick(now=4.0) == 0  # quiet for 1 s only
    assert freezer.tick(now=5.5) == 400  # quiet for 2.5 s: the burst's 400 sockets
    assert freezer.tick(now=9.0) == 0 and freezes == [1]
    sockets[0] = 450  # too few new ones for another freeze
    assert freezer.tick(now=20.0) == 0 and freezer.tick(now=30.0) == 0


def test_sockets_that_left_do_not_count_towards_the_next_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "freeze", lambda: None)
    sockets = [1000]
    freezer = BurstFreezer(lambda: sockets[0], burst=100, settled=1.0)
    sockets[0] = 200
    freezer.tick(now=0.0)
    sockets[0] = 290
    assert freezer.tick(now=5.0) == 0
    sockets[0] = 320
    freezer.tick(now=6.0)
    assert freezer.tick(now=8.0) == 120


def test_pause_timer_survives_a_collection_with_no_stack_left() -> None:
    """A collection can start at the bottom of a hostile, deeply nested JSON parse; the
    timer must not fail inside itself there (an unraisable RecursionError in the REST fuzz
    test). Entering its frame may still fail at the very limit: nothing can catch that."""
    timer = PauseTimer(lambda generation, seconds: None)
    inside: list[str] = []

    def down() -> None:
        try:
            down()
        except RecursionError:
            try:
                timer("start", {"generation": 0})
                timer("stop", {"generation": 0, "collected": 0})
            except RecursionError as exc:
                tb = exc.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                if tb is not None and tb.tb_frame.f_code.co_name in ("__call__", "_record"):
                    inside.append(tb.tb_frame.f_code.co_name)
                raise

    down()
    assert inside == []
