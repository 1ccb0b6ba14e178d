"""The grade outbox in Postgres (lti_grade_outbox): enqueue with supersede, claim with a lease,
and the three ends of a try (delivered, later, failed), plus the admins' list and retry.

A score is a row before it is a request: whatever happens to the node or the platform, the
row stays until a platform acknowledged that very version. Workers on several nodes claim
with `FOR UPDATE SKIP LOCKED`; a claim pushes `next_try_at` out by a lease, so a node that dies
mid-delivery leaves the row to be claimed again once the lease ran out (docs/lti.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from rooms.lti_scores import Delivery, DeliveryState, Progress

from .database import Pool

# A newer score for the same attempt replaces the row's score and re-queues it; its timestamp
# is later than the one it replaces even if two arrive within the clock's resolution.
_ENQUEUE = """
INSERT INTO lti_grade_outbox AS o (id, attempt_id, link_id, user_id, score_given, score_maximum,
                                   activity_progress, grading_progress, scored_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp())
ON CONFLICT (attempt_id) DO UPDATE SET
    link_id = excluded.link_id, user_id = excluded.user_id,
    score_given = excluded.score_given, score_maximum = excluded.score_maximum,
    activity_progress = excluded.activity_progress, grading_progress = excluded.grading_progress,
    scored_at = greatest(clock_timestamp(), o.scored_at + interval '1 millisecond'),
    version = o.version + 1, state = 'pending', tries = 0, next_try_at = now(), last_error = '',
    updated_at = now()
RETURNING id, version
"""

_CLAIM = """
UPDATE lti_grade_outbox SET tries = tries + 1, next_try_at = now() + make_interval(secs => $2)
WHERE id IN (SELECT id FROM lti_grade_outbox WHERE state = 'pending' AND next_try_at <= now()
             ORDER BY next_try_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING *
"""

# Where an attempt's score goes: the room's resource link and the student's platform subject,
# on the same platform. No row: the attempt is not an LTI one, and nothing is published.
_TARGET = """
SELECT l.id AS link_id, u.subject
FROM attempts a
JOIN lti_links l ON l.room_id = a.room_id
JOIN lti_users u ON u.student_id = a.student_id AND u.platform_id = l.platform_id
WHERE a.id = $1
ORDER BY l.updated_at DESC
LIMIT 1
"""


# A node that stopped between an attempt's commit and the enqueue (the signal runs after the
# commit) would leave a submitted LTI attempt without a row: each worker start fills such gaps
# with the attempt's grade as it stands (rooms/lti_scores.py's progress rules), or "submitted,
# not graded yet" when it has none (grading then enqueues the score itself). Recent ones only.
_ENQUEUE_MISSING = """
INSERT INTO lti_grade_outbox
    (id, attempt_id, link_id, user_id, score_given, score_maximum, activity_progress, grading_progress, scored_at)
SELECT gen_random_uuid(), a.id, t.link_id, t.subject, g.given, g.maximum,
       CASE WHEN g.given IS NOT NULL AND a.grade_final THEN 'Completed' ELSE 'Submitted' END,
       CASE WHEN g.given IS NULL THEN 'Pending' WHEN a.grade_final THEN 'FullyGraded' ELSE 'PendingManual' END,
       clock_timestamp()
FROM attempts a
CROSS JOIN LATERAL (
    SELECT CASE WHEN a.grade_max > 0 THEN a.grade END AS given,
           CASE WHEN a.grade_max > 0 THEN a.grade_max END AS maximum
) g
CROSS JOIN LATERAL (
    SELECT l.id AS link_id, u.subject FROM lti_links l
    JOIN lti_users u ON u.student_id = a.student_id AND u.platform_id = l.platform_id
    WHERE l.room_id = a.room_id ORDER BY l.updated_at DESC LIMIT 1
) t
WHERE a.status = 'submitted' AND a.submitted_at > now() - make_interval(days => $1)
  AND NOT EXISTS (SELECT 1 FROM lti_grade_outbox o WHERE o.attempt_id = a.id)
ON CONFLICT (attempt_id) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Target:
    link_id: str
    user_id: str


def _delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(
        id=str(row["id"]),
        attempt_id=str(row["attempt_id"]),
        link_id=str(row["link_id"]),
        user_id=row["user_id"],
        score_given=row["score_given"],
        score_maximum=row["score_maximum"],
        activity_progress=row["activity_progress"],
        grading_progress=row["grading_progress"],
        scored_at=row["scored_at"],
        version=row["version"],
        tries=row["tries"],
    )


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "attempt_id": str(row["attempt_id"]),
        "link_id": str(row["link_id"]),
        "state": row["state"],
        "tries": row["tries"],
        "score_given": row["score_given"],
        "score_maximum": row["score_maximum"],
        "activity_progress": row["activity_progress"],
        "grading_progress": row["grading_progress"],
        "last_error": row["last_error"],
        "next_try_at": row["next_try_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


class GradeOutbox:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def target(self, attempt_id: str) -> Target | None:
        row = await self._pool.fetchrow(_TARGET, uuid.UUID(attempt_id))
        return Target(str(row["link_id"]), row["subject"]) if row is not None else None

    async def enqueue(
        self,
        attempt_id: str,
        target: Target,
        score_given: float | None,
        score_maximum: float | None,
        progress: Progress,
    ) -> tuple[str, int]:
        row = await self._pool.fetchrow(
            _ENQUEUE,
            uuid.uuid4(),
            uuid.UUID(attempt_id),
            uuid.UUID(target.link_id),
            target.user_id,
            score_given,
            score_maximum,
            progress.activity,
            progress.grading,
        )
        assert row is not None
        return str(row["id"]), int(row["version"])

    async def enqueue_missing(self, days: int = 30) -> int:
        """Queue submitted LTI attempts of the last `days` that have no row; how many."""
        status = await self._pool.execute(_ENQUEUE_MISSING, days)
        return int(str(status).rsplit(" ", 1)[-1])

    async def claim(self, limit: int, lease_seconds: float) -> list[Delivery]:
        rows = await self._pool.fetch(_CLAIM, limit, lease_seconds)
        return [_delivery(r) for r in rows]

    async def delivered(self, delivery: Delivery) -> bool:
        """Mark this version delivered; False if a newer score superseded it meanwhile (that
        one stays pending and goes next)."""
        status = await self._pool.execute(
            "UPDATE lti_grade_outbox SET state = 'delivered', delivered_version = version, delivered_at = now(),"
            " last_error = '', updated_at = now() WHERE id = $1 AND version = $2",
            uuid.UUID(delivery.id),
            delivery.version,
        )
        return str(status).endswith(" 1")

    async def release(self, delivery: Delivery) -> None:
        """Give a claimed row back undelivered (the try was interrupted, not failed)."""
        await self._pool.execute(
            "UPDATE lti_grade_outbox SET next_try_at = now(), tries = greatest(tries - 1, 0)"
            " WHERE id = $1 AND version = $2",
            uuid.UUID(delivery.id),
            delivery.version,
        )

    async def later(self, delivery: Delivery, error: str, delay_seconds: float, *, failed: bool) -> None:
        await self._pool.execute(
            "UPDATE lti_grade_outbox SET state = $3, last_error = $4,"
            " next_try_at = now() + make_interval(secs => $5), updated_at = now() WHERE id = $1 AND version = $2",
            uuid.UUID(delivery.id),
            delivery.version,
            "failed" if failed else "pending",
            error[:500],
            delay_seconds,
        )

    async def listing(self, state: DeliveryState | None, limit: int = 200) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT * FROM lti_grade_outbox WHERE $1::text IS NULL OR state = $1 ORDER BY updated_at DESC LIMIT $2",
            state,
            limit,
        )
        return [_public(r) for r in rows]

    async def retry(self, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        """Put a failed delivery back in the queue with a fresh count of tries (an admin's call)."""
        row = await self._pool.fetchrow(
            "UPDATE lti_grade_outbox SET state = 'pending', tries = 0, next_try_at = now(), updated_at = now()"
            " WHERE id = $1 AND state = 'failed' RETURNING *",
            delivery_id,
        )
        return _public(row) if row is not None else None

    async def state_of(self, attempt_id: str) -> dict[str, Any] | None:
        row = await self._pool.fetchrow("SELECT * FROM lti_grade_outbox WHERE attempt_id = $1", uuid.UUID(attempt_id))
        return _public(row) if row is not None else None
