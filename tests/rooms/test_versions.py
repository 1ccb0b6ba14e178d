"""What an edit does (rooms/versions.py): in place, key correction, or a new version."""

from __future__ import annotations

import pytest

from rooms.errors import Conflict, Invalid
from rooms.exam import ExamSpec
from rooms.versions import edit_kind, merge, require_latest

SPEC = ExamSpec.model_validate(ExamSpec.model_config["json_schema_extra"]["example"])  # type: ignore[index]


def edited(**changes: object) -> ExamSpec:
    return SPEC.model_copy(update=changes)


def with_key(correct: list[int]) -> ExamSpec:
    data = SPEC.model_dump(mode="json")
    data["questions"][0]["correct"] = correct
    return ExamSpec.model_validate(data)


def test_unchanged_is_unchanged() -> None:
    assert edit_kind(SPEC, SPEC, has_attempts=True) == "unchanged"


def test_before_any_attempt_an_edit_is_in_place() -> None:
    assert edit_kind(SPEC, edited(title="New"), has_attempts=False) == "in_place"
    assert edit_kind(SPEC, with_key([0]), has_attempts=False) == "in_place"


def test_after_an_attempt_a_key_change_is_a_correction() -> None:
    assert edit_kind(SPEC, with_key([2]), has_attempts=True) == "keys"


def test_after_an_attempt_other_changes_make_a_version() -> None:
    assert edit_kind(SPEC, edited(title="New"), has_attempts=True) == "version"
    assert edit_kind(SPEC, edited(shuffle_questions=True), has_attempts=True) == "version"


def test_merge_replaces_top_level_fields_and_validates() -> None:
    assert merge(SPEC, {"title": "T"}).title == "T"
    with pytest.raises(Invalid):
        merge(SPEC, {"nope": 1})


def test_only_the_newest_version_is_edited() -> None:
    require_latest(3, 3)
    with pytest.raises(Conflict):
        require_latest(2, 3)
