"""The audit log: who did or viewed what, and when."""

from __future__ import annotations

import json
from typing import Any

from rooms.tokens import Claims

from .database import Pool


class AuditLog:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(
        self,
        claims: Claims,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO audit_log (actor_role, actor_id, action, target_type, target_id, details)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            claims.role,
            claims.sub,
            action,
            target_type,
            target_id,
            json.dumps(details or {}),
        )

    async def entries(self, target_type: str, target_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT at, actor_role, actor_id, action, details FROM audit_log"
            " WHERE target_type = $1 AND target_id = $2 ORDER BY at, id",
            target_type,
            target_id,
        )
        return [
            {
                "at": r["at"].isoformat(),
                "actor_role": r["actor_role"],
                "actor_id": r["actor_id"],
                "action": r["action"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]
