"""Roles per room: which action on a room (or its exam) needs which role. Pure rules, no SQL.

A teacher's role in a room is one of owner, proctor, reviewer (strongest first). Where it
comes from — the exam's creator, a `room_members` row, a minted token's `rooms` claim — is
decided in `rooms/store/members.py`; what the role then allows is decided here, once, for
every edge (REST routes, `/teacher` events, live view). Admins may do everything; students
never act through a room role (their own attempt and exam are checked where they are read).
docs/accounts.md ("Roles") shows this table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol

from .errors import Forbidden
from .tokens import Claims

RoomRole = Literal["owner", "proctor", "reviewer"]
# Strongest first: a teacher with several sources of a role gets the strongest.
ROOM_ROLES: tuple[RoomRole, ...] = ("owner", "proctor", "reviewer")

Action = Literal[
    "exam.read",  # read an exam (its questions and rules)
    "exam.add_room",  # open another room on the exam
    "exam.export",  # download the exam with its answer keys (Moodle XML)
    "exam.edit",  # edit (or version), duplicate, archive, delete the exam; list its rooms
    "room.edit",  # rename the room, change its seats, close it
    "room.grade",  # grade answers by hand (essays), read answers with their keys
    "room.members",  # list, add and remove the room's colleagues
    "room.invite",  # issue student invites
    "room.watch",  # the live roster and its deltas
    "room.control",  # warn, message, pause, resume, extend, terminate an attempt
    "room.announce",  # announce to the whole room
    "room.live_view",  # open a student's live camera
    "room.attempts",  # list the room's attempts (the review page)
    "room.timeline",  # read an attempt's timeline
    "room.report",  # download the room's CSV report
    "room.evidence",  # view evidence JPEGs
    "room.review",  # confirm or dismiss a flag
    "exam.schedule",  # set or clear the exam's window (rooms/scheduling.py)
    "room.schedule",  # set or clear the room's own window
    "room.accommodations",  # list and edit per-student accommodations
]

_ALL: frozenset[RoomRole] = frozenset(ROOM_ROLES)
_LIVE: frozenset[RoomRole] = frozenset({"owner", "proctor"})
_OWNER: frozenset[RoomRole] = frozenset({"owner"})

# action -> the room roles that may do it. A proctor also reads timelines and evidence and
# decides flags: the live dashboard shows them next to the tiles (and minted teacher tokens,
# which map to proctor, always could). A reviewer has no live controls and no live view.
NEEDS: dict[Action, frozenset[RoomRole]] = {
    "exam.read": _ALL,
    "exam.add_room": _OWNER,
    "exam.export": _OWNER,
    "exam.edit": _OWNER,
    "room.edit": _OWNER,
    "room.grade": _ALL,  # roles are nested: whoever reviews a room may mark it
    "room.members": _OWNER,
    "room.invite": _LIVE,
    "room.watch": _LIVE,
    "room.control": _LIVE,
    "room.announce": _LIVE,
    "room.live_view": _LIVE,
    "room.attempts": _ALL,
    "room.timeline": _ALL,
    "room.report": _ALL,
    "room.evidence": _ALL,
    "room.review": _ALL,
    "exam.schedule": _OWNER,
    "room.schedule": _OWNER,
    "room.accommodations": _LIVE,
}

_WHAT: dict[Action, str] = {
    "exam.read": "read this exam",
    "exam.add_room": "open rooms on this exam",
    "exam.export": "export this exam",
    "exam.edit": "change this exam",
    "room.edit": "change this room",
    "room.grade": "grade answers in this room",
    "room.members": "manage this room's colleagues",
    "room.invite": "invite students to this room",
    "room.watch": "watch this room live",
    "room.control": "control attempts in this room",
    "room.announce": "announce to this room",
    "room.live_view": "open live views in this room",
    "room.attempts": "list this room's attempts",
    "room.timeline": "read timelines of this room",
    "room.report": "download this room's report",
    "room.evidence": "view evidence of this room",
    "room.review": "review flags of this room",
    "exam.schedule": "schedule this exam",
    "room.schedule": "schedule this room",
    "room.accommodations": "set accommodations in this room",
}


def strongest(roles: Iterable[RoomRole | None]) -> RoomRole | None:
    found = {r for r in roles if r is not None}
    for role in ROOM_ROLES:
        if role in found:
            return role
    return None


def allows(claims: Claims, action: Action, role: RoomRole | None) -> bool:
    """Whether `claims`, holding `role` in the room (None: no role), may do `action`."""
    if claims.role == "admin":
        return True
    if claims.role != "teacher" or role is None:
        return False
    return role in NEEDS[action]


def require(claims: Claims, action: Action, role: RoomRole | None) -> None:
    if allows(claims, action, role):
        return
    if claims.role == "teacher" and role is not None:
        needed = " or ".join(r for r in ROOM_ROLES if r in NEEDS[action])
        raise Forbidden(f"a {role} cannot {_WHAT[action]}; it needs the {needed} role")
    raise Forbidden("this token does not give access to that room")


def minimum(action: Action) -> RoomRole:
    """The weakest room role that may do `action` (the roles are nested: owner ⊇ proctor ⊇ …)."""
    return [r for r in ROOM_ROLES if r in NEEDS[action]][-1]


def vocabulary() -> dict[str, object]:
    """The roles for the pages (/app-config.json): strongest first, with the actions each may do."""
    return {
        "room_roles": [
            {"id": role, "label": role.capitalize(), "actions": sorted(a for a, r in NEEDS.items() if role in r)}
            for role in ROOM_ROLES
        ],
    }


class AccountDirectory(Protocol):
    """The accounts colleagues are added from (part A's accounts; `rooms.store.members` reads a table)."""

    async def find_by_email(self, email: str) -> tuple[str, str] | None:
        """(account id, name) of the active account with that email, or None."""
        ...
