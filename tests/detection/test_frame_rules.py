"""Step 13's rules on synthetic detections: head pose from landmarks, the "unable to judge"
states, their per-exam and per-student switches, and the moment a rule fires."""

from __future__ import annotations

import random

import pytest

from detection import Face, FrameStats, RuleSettings, RuleViolation, StudentRules
from media import AnalysisSettings

BRIGHT = FrameStats(mean=120.0, stddev=50.0, sharpness=0.8, height=240)
# Eyes 40 px apart at y=100, mouth corners at y=140: the nose's height picks the pitch ratio.
FRONTAL = ((180.0, 100.0), (220.0, 100.0), (200.0, 120.0), (185.0, 140.0), (215.0, 140.0))  # yaw 0, pitch 0.5
TURNED = ((180.0, 100.0), (220.0, 100.0), (217.0, 120.0), (185.0, 140.0), (215.0, 140.0))  # yaw 0.425
DOWN = ((180.0, 100.0), (220.0, 100.0), (200.0, 132.0), (185.0, 140.0), (215.0, 140.0))  # pitch 0.8


def face(landmarks: tuple[tuple[float, float], ...] = FRONTAL, *, height: float = 100.0, score: float = 0.9) -> Face:
    return Face(x1=160.0, y1=70.0, x2=240.0, y2=70.0 + height, score=score, landmarks=landmarks)


def feed(
    rules: StudentRules, seconds: int, stats: FrameStats = BRIGHT, faces: tuple[Face, ...] = ()
) -> list[RuleViolation]:
    """One frame a second for ``seconds`` seconds, from t=0."""
    raised: list[RuleViolation] = []
    for ts in range(seconds):
        raised += rules.observe(float(ts), stats, faces)
    return raised


def test_head_turned_says_how_far_and_how_long() -> None:
    (violation,) = feed(StudentRules(RuleSettings()), 10, faces=(face(TURNED),))

    assert violation.kind == "head_turned"
    assert violation.explanation == "Head turned to the side for 3.0 s (yaw ratio 0.42 > 0.30)"
    assert violation.details == {"yaw_ratio": 0.425, "yaw_ratio_max": 0.425, "threshold": 0.3, "observed_seconds": 3.0}
    assert (violation.started_at, violation.duration) == (0.0, 3.0)


def test_looking_down_from_the_nose_nearing_the_mouth_line() -> None:
    (violation,) = feed(StudentRules(RuleSettings()), 10, faces=(face(DOWN),))

    assert violation.kind == "looking_down"
    assert violation.explanation == "Head tilted down for 3.0 s (pitch ratio 0.80 > 0.75)"
    assert violation.details["pitch_ratio"] == pytest.approx(0.8)
    assert feed(StudentRules(RuleSettings()), 10, faces=(face(FRONTAL),)) == []


def test_head_pose_thresholds_and_holds_come_from_the_exam() -> None:
    lenient = RuleSettings.from_rules({"analysis": {"yaw_ratio": 0.5, "pitch_ratio": 0.9}})
    assert feed(StudentRules(lenient), 20, faces=(face(TURNED),)) == []
    assert feed(StudentRules(lenient), 20, faces=(face(DOWN),)) == []

    slow = RuleSettings.from_rules({"analysis": {"head_turned_seconds": 6, "looking_down_seconds": 1}})
    assert [(v.kind, v.duration) for v in feed(StudentRules(slow), 20, faces=(face(TURNED),))] == [("head_turned", 6.0)]
    assert [(v.kind, v.duration) for v in feed(StudentRules(slow), 20, faces=(face(DOWN),))] == [("looking_down", 1.0)]


def test_a_dark_frame_without_a_face_is_unable_to_judge_not_no_face() -> None:
    dim = FrameStats(mean=28.0, stddev=20.0, sharpness=0.8, height=240)  # above dark_mean 25, below 30

    (violation,) = feed(StudentRules(RuleSettings()), 10, stats=dim)

    assert violation.kind == "too_dark"
    assert violation.details["state"] == "unable_to_judge"
    assert violation.details["threshold"] == 30.0
    assert violation.explanation == "Too dark to judge for 3.0 s (mean luminance 28 < 30); not counted as 'No face'"
    # A face found in the same light is judged as usual: nothing to say.
    assert feed(StudentRules(RuleSettings()), 10, stats=dim, faces=(face(),)) == []


def test_darker_than_dark_mean_is_camera_blocked_and_still_not_no_face() -> None:
    black = FrameStats(mean=5.0, stddev=20.0, sharpness=0.8, height=240)

    assert [v.kind for v in feed(StudentRules(RuleSettings()), 10, stats=black)] == ["camera_blocked"]


def test_a_too_small_face_is_not_judged_for_head_pose() -> None:
    far = face(TURNED, height=30.0)  # 30 / 240 = 12.5 % of the frame, under 16 %

    (violation,) = feed(StudentRules(RuleSettings()), 10, faces=(far,))

    assert violation.kind == "face_too_small"
    assert violation.details["state"] == "unable_to_judge"
    assert violation.explanation == "Face too far to judge for 3.0 s (face height 12% of the frame < 16%)"
    # Frames whose height was not measured never judge face size.
    unmeasured = FrameStats(mean=120.0, stddev=50.0)
    assert [v.kind for v in feed(StudentRules(RuleSettings()), 10, stats=unmeasured, faces=(far,))] == ["head_turned"]


def test_a_blurred_frame_without_a_face_is_unable_to_judge() -> None:
    blurred = FrameStats(mean=120.0, stddev=40.0, sharpness=0.01, height=240)

    (violation,) = feed(StudentRules(RuleSettings()), 10, stats=blurred)

    assert violation.kind == "too_blurred"
    assert violation.details == {
        "state": "unable_to_judge",
        "cause": "too_blurred",
        "value": 0.01,
        "threshold": 0.03,
        "observed_seconds": 3.0,
    }
    assert feed(StudentRules(RuleSettings()), 10, stats=blurred, faces=(face(),)) == []


def test_states_switch_off_per_exam_and_per_student() -> None:
    dim = FrameStats(mean=28.0, stddev=20.0, sharpness=0.8, height=240)
    far = face(height=30.0)

    exam_off = RuleSettings.from_rules({"analysis": {"disabled": ["too_dark", "face_too_small"]}})
    assert feed(StudentRules(exam_off), 10, stats=dim) == []  # still no "No face": the frame is too dark
    assert feed(StudentRules(exam_off), 10, faces=(far,)) == []

    student = AnalysisSettings.from_rules({}, ["too_blurred", "head_turned", "extra_time"]).rule_settings
    blurred = FrameStats(mean=120.0, stddev=40.0, sharpness=0.01, height=240)
    assert feed(StudentRules(student), 10, stats=blurred) == []
    assert feed(StudentRules(student), 10, faces=(face(TURNED),)) == []
    assert [v.kind for v in feed(StudentRules(student), 10, faces=(face(DOWN),))] == ["looking_down"]

    # The bounds switch the judging itself off: too_dark_mean 0 lets a dim frame raise "No face" again.
    judging_off = RuleSettings.from_rules({"analysis": {"too_dark_mean": 0, "dark_mean": 0}})
    assert [v.kind for v in feed(StudentRules(judging_off), 10, stats=dim)] == ["no_face"]


# --- when a rule fires ------------------------------------------------------------------

JITTERED = [100.1, 101.0, 102.1, 102.9, 104.0, 105.1, 105.9, 107.0]  # 1 s samples, +-0.2 s jitter


def test_a_tick_landing_just_short_of_the_hold_fires_and_reports_the_hold() -> None:
    rules = StudentRules(RuleSettings())  # no_face: 3 s

    fired = [(ts, v) for ts in JITTERED for v in rules.observe(ts, BRIGHT, [])]

    # 102.9 is 2.8 s after the start: the sample nearest to the 3 s mark. Waiting for the
    # next one (104.0) flagged "No face seen for 3.9 s" with a 3 s rule.
    assert [(ts, v.started_at, v.duration) for ts, v in fired] == [(102.9, 100.1, 3.0)]
    assert fired[0][1].explanation == "No face seen for 3.0 s (best score 0.00 < 0.50)"
    assert fired[0][1].details["observed_seconds"] == pytest.approx(2.8)


@pytest.mark.parametrize("interval", [0.5, 1.0, 2.0])
def test_under_jitter_every_flag_reads_its_hold_and_fires_at_the_nearest_sample(interval: float) -> None:
    jitter = random.Random(7)
    rules = StudentRules(RuleSettings(no_face_seconds=3.0))
    ts, fired = 0.0, []
    for index in range(400):
        ts += interval + jitter.uniform(-0.2, 0.2) * interval
        present = (index // 15) % 2 == 1  # 15 samples away, 15 samples back, ...
        fired += [(ts, v) for v in rules.observe(ts, BRIGHT, [face()] if present else [])]

    assert len(fired) >= 10
    late = []
    for when, violation in fired:
        assert violation.duration == 3.0
        assert "for 3.0 s" in violation.explanation
        late.append(when - violation.started_at - 3.0)
    # Never earlier than the slack (0.4 of an interval), never a whole (jittered) interval late,
    # and on average on the mark: "first sample at or past the hold" was half an interval late.
    assert min(late) >= -0.4 * interval * 1.2 - 1e-9
    assert max(late) < 0.8 * interval + 1e-9
    assert abs(sum(late) / len(late)) < 0.3 * interval


def test_the_first_sample_never_fires_a_held_rule() -> None:
    rules = StudentRules(RuleSettings(no_face_seconds=0.5))

    assert rules.observe(0.0, BRIGHT, []) == []  # no interval known yet: no slack
    # 0.4 s later: slack 0.4 * 0.4 = 0.16, so 0.4 >= 0.5 - 0.16 and the flag reads the hold.
    assert [v.duration for v in rules.observe(0.4, BRIGHT, [])] == [0.5]


def test_sparse_samples_fire_no_earlier_than_half_the_hold() -> None:
    rules = StudentRules(RuleSettings(no_face_seconds=3.0))

    assert rules.observe(0.0, BRIGHT, []) == []
    assert rules.observe(1.4, BRIGHT, []) == []  # slack min(0.4 * 1.4, 1.5) = 0.56: 1.4 < 2.44
    assert [v.kind for v in rules.observe(2.6, BRIGHT, [])] == ["no_face"]  # 2.6 >= 3 - 0.52


def test_an_older_exam_that_names_looking_away_still_loads_and_switches_head_pose_off() -> None:
    from rooms.exam import Rules

    stored = {
        "weights": {"looking_away": 2, "no_face": 3},
        "analysis": {"enabled": True, "disabled": ["looking_away"], "looking_away_seconds": 4},
    }
    rules = Rules.model_validate(stored)

    settings = RuleSettings.from_rules(rules.model_dump(mode="json"))
    assert {"head_turned", "looking_down"} <= settings.disabled
    assert feed(StudentRules(settings), 10, faces=(face(TURNED),)) == []
    assert Rules().weight("too_dark") == 0.0 and Rules().weight("head_turned") == 1.0
