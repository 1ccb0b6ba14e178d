"""Per-attempt order and pools (rooms/arrangement.py): deterministic, and answers map back."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from rooms.arrangement import arrange, student_questions
from rooms.exam import Pool, Question
from rooms.grading import score

SINGLES = tuple(
    Question(id=f"q{i}", kind="single", text=f"Q{i}", options=tuple(f"q{i}-o{j}" for j in range(5)), correct=(i % 5,))
    for i in range(12)
)
MULTIPLE = Question(id="m", kind="multiple", text="M", options=("a", "b", "c", "d"), correct=(0, 3), scoring="partial")
QUESTIONS = (*SINGLES, MULTIPLE)


def test_the_same_attempt_gets_the_same_arrangement_every_time() -> None:
    attempt = str(uuid.uuid4())
    a = arrange(attempt, QUESTIONS, shuffle_questions=True, shuffle_options=True)
    b = arrange(attempt, QUESTIONS, shuffle_questions=True, shuffle_options=True)
    assert a == b
    others = {arrange(str(uuid.uuid4()), QUESTIONS, shuffle_questions=True).question_ids for _ in range(5)}
    assert len(others) > 1  # different attempts, different orders


def test_a_fixed_attempt_id_has_a_fixed_order_across_processes() -> None:
    # sha256-seeded: the same on every node and after a restart (PYTHONHASHSEED plays no part).
    ids = arrange("00000000-0000-0000-0000-000000000001", QUESTIONS, shuffle_questions=True).question_ids
    assert ids == arrange("00000000-0000-0000-0000-000000000001", QUESTIONS, shuffle_questions=True).question_ids
    assert sorted(ids) == sorted(q.id for q in QUESTIONS)


def test_no_shuffle_keeps_the_exam_order() -> None:
    a = arrange(str(uuid.uuid4()), QUESTIONS)
    assert a.question_ids == tuple(q.id for q in QUESTIONS)
    assert a.options == {}


def test_pools_draw_n_and_keep_unpooled_questions() -> None:
    pool = Pool(id="p", questions=tuple(f"q{i}" for i in range(10)), draw=3)
    for _ in range(20):
        a = arrange(str(uuid.uuid4()), QUESTIONS, pools=(pool,))
        pooled = [q for q in a.question_ids if q in pool.questions]
        assert len(pooled) == 3
        assert {"q10", "q11", "m"} <= set(a.question_ids)
        assert len(a.question_ids) == 6


def test_student_view_shows_options_in_display_order_without_key() -> None:
    a = arrange(str(uuid.uuid4()), QUESTIONS, shuffle_options=True)
    view = student_questions(QUESTIONS, a)
    for shown in view:
        assert "correct" not in shown
        original = next(q for q in QUESTIONS if q.id == shown["id"])
        assert shown["options"] == [original.options[i] for i in a.options[shown["id"]]]


@given(attempt=st.uuids(), data=st.data())
def test_a_displayed_answer_maps_back_to_the_option_the_student_saw(attempt: uuid.UUID, data: st.DataObject) -> None:
    a = arrange(str(attempt), QUESTIONS, shuffle_questions=True, shuffle_options=True)
    view = {q["id"]: q for q in student_questions(QUESTIONS, a)}
    for q in QUESTIONS:
        shown = data.draw(st.integers(0, len(q.options) - 1))
        original = a.to_original(q, shown) if q.kind == "single" else a.to_original(q, [shown])[0]
        # The text the student clicked is the text of the stored original option.
        assert q.options[original] == view[q.id]["options"][shown]
        back = a.to_displayed(q, original) if q.kind == "single" else a.to_displayed(q, [original])[0]
        assert back == shown
    # Grading the original indexes is order-free: clicking the right text scores full marks.
    m = QUESTIONS[-1]
    right_shown = [view["m"]["options"].index(m.options[i]) for i in (0, 3)]
    result = score(m, a.to_original(m, right_shown))
    assert result is not None and result.points == m.points
