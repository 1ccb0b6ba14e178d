"""What an edit of an exam does: change it in place, correct its keys, or start a new version.

Pure rules (docs/exams.md, "Versions and lifecycle"); rooms/store/catalog.py applies them in
one transaction.

- No attempt has started on this version: the edit changes it in place.
- Attempts have started and only answer keys changed (`KEY_FIELDS`): the keys are corrected in
  place and every attempt of the version is graded again (audited, before and after).
- Anything else once attempts have started: a new version in the same family; running and
  finished attempts keep theirs, the family's rooms move to the new one for new attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import Conflict
from .exam import KEY_FIELDS, ExamSpec

EditKind = Literal["unchanged", "in_place", "keys", "version"]


def _without_keys(spec: ExamSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    data["questions"] = [{k: v for k, v in q.items() if k not in KEY_FIELDS} for q in data["questions"]]
    return data


def edit_kind(current: ExamSpec, edited: ExamSpec, *, has_attempts: bool) -> EditKind:
    """How `edited` replaces `current` (see the module's docstring)."""
    if current == edited:
        return "unchanged"
    if not has_attempts:
        return "in_place"
    if _without_keys(current) == _without_keys(edited):
        return "keys"
    return "version"


def merge(current: ExamSpec, patch: dict[str, Any]) -> ExamSpec:
    """`current` with the top-level fields of a PATCH body replaced (validated as a whole)."""
    unknown = set(patch) - set(ExamSpec.model_fields)
    if unknown:
        from .errors import Invalid

        raise Invalid("the body has unknown fields", fields={name: "unknown field" for name in sorted(unknown)})
    return ExamSpec.model_validate({**current.model_dump(mode="json"), **patch})


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """What an edit did: `exam_id` is the exam as it is now (a new id when `kind` is version)."""

    kind: EditKind
    exam_id: str
    previous_id: str


def require_latest(exam_version: int, latest_version: int) -> None:
    """Edits go to the newest version of a family; older ones keep the attempts that used them."""
    if exam_version != latest_version:
        raise Conflict(f"this is version {exam_version}; edit the newest version ({latest_version})", code="not_latest")
