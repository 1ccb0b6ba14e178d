"""The admission's pace (signaling/guard.py `Pacer`, `Admission.reserve`): pure logic."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rooms.errors import NoCapacity, RateLimited
from signaling.guard import Admission, Pacer


def environ(address: str = "10.0.0.1") -> dict[str, Any]:
    return {"REMOTE_ADDR": address}


def test_a_burst_goes_at_once_and_the_rest_queue_at_the_rate() -> None:
    pacer = Pacer(rate=10, burst=3, max_wait=5)
    waits = [pacer.reserve(100.0) for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])


def test_turns_are_first_come_first_served_as_time_passes() -> None:
    pacer = Pacer(rate=10, burst=1, max_wait=5)
    assert pacer.reserve(0.0) == 0
    assert pacer.reserve(0.0) == pytest.approx(0.1)
    # 0.05 s later the next free turn is at 0.2: 0.15 s away.
    assert pacer.reserve(0.05) == pytest.approx(0.15)
    # Long idle: the burst is back, never more.
    assert pacer.reserve(10.0) == 0
    assert pacer.reserve(10.0) == pytest.approx(0.1)


def test_a_queue_longer_than_max_wait_is_refused_without_booking() -> None:
    pacer = Pacer(rate=10, burst=1, max_wait=0.25)
    assert [pacer.reserve(0.0) for _ in range(3)] == pytest.approx([0, 0.1, 0.2])
    assert pacer.reserve(0.0) is None
    assert pacer.reserve(0.0) is None  # the refusal took no turn
    assert pacer.backlog(0.0) == pytest.approx(0.3)
    assert pacer.reserve(0.1) == pytest.approx(0.2)


def test_admission_queues_instead_of_refusing_within_max_wait() -> None:
    admission = Admission(100, per_ip_rate=1000, per_ip_burst=1000, node_rate=10, node_burst=2, max_wait=1.0)
    waits = [admission.reserve(environ()) for _ in range(12)]
    assert waits[:2] == [0, 0]
    assert waits[2] == pytest.approx(0.1, abs=0.02)
    assert waits[-1] == pytest.approx(1.0, abs=0.02)
    with pytest.raises(RateLimited) as caught:
        admission.reserve(environ())
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after is not None and 0.5 <= caught.value.retry_after <= 1.0 + 0.01


def test_admission_counts_waiting_connects_against_the_cap() -> None:
    admission = Admission(3, per_ip_rate=1000, per_ip_burst=1000)
    admission.connected, admission.waiting = 2, 1
    with pytest.raises(NoCapacity):
        admission.reserve(environ())


def test_admission_refuses_an_address_over_its_rate_before_queueing() -> None:
    admission = Admission(100, per_ip_rate=0.01, per_ip_burst=2, node_rate=10, node_burst=1)
    admission.reserve(environ())
    admission.reserve(environ())
    with pytest.raises(RateLimited):
        admission.reserve(environ())
    assert admission.reserve(environ("10.0.0.2")) == pytest.approx(0.2, abs=0.02)  # two turns were booked


async def test_admit_waits_its_turn_and_counts_itself_waiting() -> None:
    admission = Admission(100, per_ip_rate=1000, per_ip_burst=1000, node_rate=20, node_burst=1)
    await admission.admit(environ())  # the burst: at once
    waiter = asyncio.create_task(admission.admit(environ()))  # its turn is 50 ms away
    await asyncio.sleep(0.01)
    assert admission.waiting == 1 and not waiter.done()
    await waiter
    assert admission.waiting == 0
