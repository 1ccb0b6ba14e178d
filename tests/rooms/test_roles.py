"""The table of rooms/roles.py: which action needs which room role (pure rules)."""

from __future__ import annotations

import typing

import pytest

from rooms.errors import Forbidden
from rooms.roles import NEEDS, ROOM_ROLES, Action, RoomRole, allows, minimum, require, strongest
from rooms.tokens import Claims

TEACHER = Claims(role="teacher", sub="t-1")
ADMIN = Claims(role="admin", sub="admin")
STUDENT = Claims(role="student", sub="s-1", exam_id="e", room_id="r")

# The table as the brief and docs/accounts.md state it, written out independently.
EXPECTED: dict[str, set[str]] = {
    "exam.read": {"owner", "proctor", "reviewer"},
    "exam.add_room": {"owner"},
    "exam.export": {"owner"},
    "exam.edit": {"owner"},
    "room.edit": {"owner"},
    "room.grade": {"owner", "proctor", "reviewer"},
    "room.members": {"owner"},
    "room.invite": {"owner", "proctor"},
    "room.watch": {"owner", "proctor"},
    "room.control": {"owner", "proctor"},
    "room.announce": {"owner", "proctor"},
    "room.live_view": {"owner", "proctor"},
    "room.attempts": {"owner", "proctor", "reviewer"},
    "room.timeline": {"owner", "proctor", "reviewer"},
    "room.report": {"owner", "proctor", "reviewer"},
    "room.evidence": {"owner", "proctor", "reviewer"},
    "room.review": {"owner", "proctor", "reviewer"},
    "exam.schedule": {"owner"},
    "room.schedule": {"owner"},
    "room.accommodations": {"owner", "proctor"},
}


def test_every_action_has_a_row_and_the_rows_are_as_documented() -> None:
    assert set(typing.get_args(Action)) == set(NEEDS) == set(EXPECTED)
    assert {a: set(r) for a, r in NEEDS.items()} == EXPECTED


def test_roles_are_nested_so_a_stronger_role_never_loses_an_action() -> None:
    for action, roles in NEEDS.items():
        weakest = ROOM_ROLES.index(minimum(action))
        assert set(roles) == set(ROOM_ROLES[: weakest + 1]), action


@pytest.mark.parametrize("action", sorted(NEEDS))
@pytest.mark.parametrize("role", [*ROOM_ROLES, None])
def test_teacher_gets_exactly_the_table(action: Action, role: RoomRole | None) -> None:
    want = role is not None and role in EXPECTED[action]
    assert allows(TEACHER, action, role) is want
    if want:
        require(TEACHER, action, role)
    else:
        with pytest.raises(Forbidden):
            require(TEACHER, action, role)


@pytest.mark.parametrize("action", sorted(NEEDS))
def test_admins_may_everything_and_students_nothing_by_room_role(action: Action) -> None:
    assert allows(ADMIN, action, None)
    for role in (*ROOM_ROLES, None):
        assert not allows(STUDENT, action, role)


def test_refusal_names_the_role_needed() -> None:
    with pytest.raises(Forbidden) as caught:
        require(TEACHER, "room.control", "reviewer")
    assert "reviewer cannot control" in str(caught.value) and "owner or proctor" in str(caught.value)
    with pytest.raises(Forbidden, match="does not give access"):
        require(TEACHER, "room.watch", None)


def test_strongest_of_several_sources() -> None:
    assert strongest(["reviewer", None, "proctor"]) == "proctor"
    assert strongest(["reviewer", "owner"]) == "owner"
    assert strongest([None, None]) is None
    assert strongest([]) is None
