"""What the domain decides about a flag the server's analysis raised (pure: stand-in store).

The exam's rules weigh it, its evidence is kept for the exam's retention period, it gets a
server sequence number, and an attempt that has ended takes no more flags.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.events import AnalysisFlag, Record, ViolationRecord, WriteResult
from rooms.timer import submit

from .fakes import Fixture


class RecordingWriter:
    def __init__(self) -> None:
        self.records: list[ViolationRecord] = []

    async def submit(self, record: Record) -> WriteResult:
        assert isinstance(record, ViolationRecord)
        self.records.append(record)
        return WriteResult(True, len(self.records))


def _flag(**changes: Any) -> AnalysisFlag:
    values: dict[str, Any] = {
        "kind": "paste",
        "started_at": time.time() - 4,
        "duration": 3.0,
        "confidence": 0.91,
        "explanation": "No face seen for 3.0 s",
        "details": {"observed_seconds": 3.2},
        "evidence_jpeg": b"\xff\xd8jpeg",
    }
    values.update(changes)
    return AnalysisFlag(**values)


async def test_a_flag_is_weighed_kept_for_the_retention_and_numbered() -> None:
    f = Fixture.build()
    writer = RecordingWriter()
    f.attempts._writer = writer  # the only stand-in swapped: what was handed to the writer
    joined = await f.attempts.join(f.student)
    flag = _flag()
    before = datetime.now(UTC)
    result = await f.attempts.analysis_flag(joined.attempt.id, flag)
    assert result is not None and result.stored
    [record] = writer.records
    assert record.source == "server" and record.kind == "paste"
    assert record.severity == 3.0  # the exam's weight for paste
    assert record.occurred_at == datetime.fromtimestamp(flag.started_at, UTC)
    details = record.details
    assert details["explanation"] == "No face seen for 3.0 s" and "reason" not in details
    assert details["observed_seconds"] == 3.2 and details["duration"] == 3.0
    evidence = record.evidence
    assert evidence is not None and evidence.data == flag.evidence_jpeg
    retention = f.catalog._exam.rules.evidence_retention_days
    assert before + timedelta(days=retention) <= evidence.expires_at <= datetime.now(UTC) + timedelta(days=retention)
    # Sequence numbers of server flags grow and never repeat.
    await f.attempts.analysis_flag(joined.attempt.id, _flag())
    seqs = [r.seq for r in writer.records]
    assert seqs[1] > seqs[0]


async def test_a_flag_without_a_frame_has_no_evidence_and_an_ended_attempt_takes_none() -> None:
    f = Fixture.build()
    writer = RecordingWriter()
    f.attempts._writer = writer
    joined = await f.attempts.join(f.student)
    await f.attempts.analysis_flag(joined.attempt.id, _flag(kind="copy", evidence_jpeg=b""))
    assert writer.records[0].evidence is None
    assert writer.records[0].severity == 2.0
    f.store.attempts[joined.attempt.id] = submit("student")(joined.attempt, f.store.now) or joined.attempt
    assert await f.attempts.analysis_flag(joined.attempt.id, _flag()) is None
    assert len(writer.records) == 1
