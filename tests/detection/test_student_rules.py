from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from detection import Face, FrameStats, RuleSettings, RuleViolation, StudentRules

BRIGHT = FrameStats(mean=120.0, stddev=50.0)
BLACK = FrameStats(mean=0.0, stddev=0.0)
FRONTAL = ((180.0, 100.0), (220.0, 100.0), (200.0, 120.0), (185.0, 140.0), (215.0, 140.0))
TURNED = ((180.0, 100.0), (220.0, 100.0), (224.0, 120.0), (185.0, 140.0), (215.0, 140.0))  # 0.6


def face(score: float = 0.9, landmarks: tuple[tuple[float, float], ...] = FRONTAL) -> Face:
    return Face(x1=160.0, y1=70.0, x2=240.0, y2=170.0, score=score, landmarks=landmarks)


def clock(start: float = 100.0, step: float = 0.5) -> Iterator[float]:
    ts = start
    while True:
        yield ts
        ts += step


def run(
    rules: StudentRules,
    times: Iterator[float],
    frames: int,
    stats: FrameStats = BRIGHT,
    faces: Sequence[Face] = (),
) -> list[tuple[float, RuleViolation]]:
    """Feed ``frames`` identical frames; returns (ts, violation) for each one raised."""
    raised = []
    for _ in range(frames):
        ts = next(times)
        raised += [(ts, violation) for violation in rules.observe(ts, stats, faces)]
    return raised


def test_one_face_in_a_bright_frame_raises_nothing() -> None:
    rules = StudentRules(RuleSettings())

    assert run(rules, clock(), 40, faces=[face()]) == []


def test_no_face_fires_once_after_its_hold_time_then_rearms() -> None:
    rules = StudentRules(RuleSettings())
    times = clock(start=100.0)

    first = run(rules, times, 20)  # 100.0 .. 109.5 with no face
    assert [(ts, v.kind, v.started_at, v.duration) for ts, v in first] == [(103.0, "no_face", 100.0, 3.0)]
    assert first[0][1].explanation == "No face seen for 3.0 s (best score 0.00 < 0.50)"
    assert first[0][1].confidence == pytest.approx(1.0)

    assert run(rules, times, 1, faces=[face()]) == []  # face back at 110.0: re-armed
    again = run(rules, times, 8)  # 110.5 .. 114.0
    assert [(ts, v.started_at) for ts, v in again] == [(113.5, 110.5)]


def test_no_face_reports_the_best_score_below_threshold() -> None:
    rules = StudentRules(RuleSettings(no_face_seconds=1.0))

    raised = run(rules, clock(), 3, faces=[face(score=0.12), face(score=0.05)])

    violation = raised[0][1]
    assert violation.explanation == "No face seen for 1.0 s (best score 0.12 < 0.50)"
    assert violation.confidence == pytest.approx(0.88)


def test_a_single_good_frame_restarts_the_hold_time() -> None:
    rules = StudentRules(RuleSettings())
    times = clock()

    assert run(rules, times, 5) == []  # 2.0 s without a face
    assert run(rules, times, 1, faces=[face()]) == []
    assert run(rules, times, 6) == []  # 2.5 s again: not yet 3
    assert [v.kind for _, v in run(rules, times, 1)] == ["no_face"]


def test_multiple_faces() -> None:
    rules = StudentRules(RuleSettings())
    times = clock(start=0.0)

    raised = run(rules, times, 10, faces=[face(0.95), face(0.8), face(0.3)])

    assert [(ts, v.kind, v.duration) for ts, v in raised] == [(2.0, "multiple_faces", 2.0)]
    assert raised[0][1].confidence == pytest.approx(0.8)
    assert raised[0][1].explanation == "2 faces seen for 2.0 s (second face score 0.80 >= 0.50)"
    # Head pose is judged only with exactly one face, however turned these are.
    assert run(rules, times, 20, faces=[face(landmarks=TURNED), face(landmarks=TURNED)]) == []


def test_head_turned() -> None:
    rules = StudentRules(RuleSettings())
    times = clock(start=0.0)

    raised = run(rules, times, 12, faces=[face(0.9, TURNED)])

    assert [(ts, v.kind, v.started_at) for ts, v in raised] == [(3.0, "head_turned", 0.0)]
    assert raised[0][1].confidence == pytest.approx(0.9)
    assert raised[0][1].explanation == "Head turned to the side for 3.0 s (yaw ratio 0.60 > 0.30)"
    # Facing the camera again re-arms it.
    assert run(rules, times, 1, faces=[face()]) == []
    assert [v.kind for _, v in run(rules, times, 11, faces=[face(0.9, TURNED)])] == ["head_turned"]


def test_faces_without_landmarks_are_not_looking_away() -> None:
    rules = StudentRules(RuleSettings())

    assert run(rules, clock(), 20, faces=[face(landmarks=())]) == []


def test_blank_frame_raises_camera_blocked_but_not_no_face() -> None:
    rules = StudentRules(RuleSettings())

    # A dark frame proves nothing about the student's presence: only the camera is flagged.
    raised = run(rules, clock(start=0.0), 10, stats=BLACK)

    assert [(ts, v.kind) for ts, v in raised] == [(2.0, "camera_blocked")]
    blocked = raised[0][1]
    assert blocked.confidence == pytest.approx(1.0)
    assert blocked.explanation == (
        "Camera blocked or covered for 2.0 s (mean luminance 0 < 25; luminance std-dev 0.0 < 8.0)"
    )


@pytest.mark.parametrize(
    ("stats", "cause"),
    [
        (FrameStats(mean=10.0, stddev=30.0), "mean luminance 10 < 25"),
        (FrameStats(mean=200.0, stddev=2.0), "luminance std-dev 2.0 < 8.0"),
    ],
    ids=["dark", "uniform"],
)
def test_dark_or_uniform_frame_is_blocked_unless_a_face_is_seen(stats: FrameStats, cause: str) -> None:
    # CenterFace finds faces in frames this dark (docs/analysis-quality.md): a face seen
    # means the camera is not covered.
    assert run(StudentRules(RuleSettings()), clock(start=0.0), 5, stats=stats, faces=[face()]) == []

    raised = run(StudentRules(RuleSettings()), clock(start=0.0), 5, stats=stats)

    assert [v.kind for _, v in raised] == ["camera_blocked"]
    assert raised[0][1].explanation.endswith(f"({cause})")
    assert 0.5 < raised[0][1].confidence < 1.0


def test_accommodated_rules_never_fire() -> None:
    rules = StudentRules(RuleSettings.from_rules({}, accommodations=["looking_away", "camera_blocked"]))
    times = clock()

    assert run(rules, times, 30, faces=[face(landmarks=TURNED)]) == []  # "looking_away" covers head_turned
    assert [v.kind for _, v in run(rules, times, 30, stats=FrameStats(mean=200.0, stddev=2.0))] == ["no_face"]


def test_a_long_gap_between_frames_does_not_count_as_holding() -> None:
    rules = StudentRules(RuleSettings())

    assert rules.observe(0.0, BRIGHT, []) == []
    assert rules.observe(2.0, BRIGHT, []) == []
    assert rules.observe(30.0, BRIGHT, []) == []  # 28 s of nothing seen: restart
    assert rules.observe(32.0, BRIGHT, []) == []
    assert [v.started_at for v in rules.observe(33.0, BRIGHT, [])] == [30.0]


def test_out_of_order_frames_are_ignored() -> None:
    rules = StudentRules(RuleSettings())

    assert rules.observe(10.0, BRIGHT, []) == []
    assert rules.observe(9.0, BRIGHT, [face()]) == []  # late: must not clear the episode
    assert [v.duration for v in rules.observe(13.0, BRIGHT, [])] == [3.0]


def test_reset_forgets_episodes() -> None:
    rules = StudentRules(RuleSettings())

    rules.observe(0.0, BRIGHT, [])
    rules.reset()
    assert rules.observe(3.0, BRIGHT, []) == []
    assert [v.started_at for v in rules.observe(6.0, BRIGHT, [])] == [3.0]


def test_zero_hold_time_fires_on_the_first_frame() -> None:
    rules = StudentRules(RuleSettings(multiple_faces_seconds=0))

    assert [v.duration for v in rules.observe(5.0, BRIGHT, [face(), face()])] == [0.0]
