"""The clear cases of the labelled quality set (benchmarks/analysis/scenes.py), judged by the
real CenterFace model at the node's 160-px detect width (with its full-size recheck) and the
real rules.

Not a snapshot of the benchmark's figures: each frame has a right answer (one face and no
flag, nobody and "No face", two people and "Several faces", a real turned head and "Head
turned", a covered camera and "Camera blocked"), and every clear frame must get it.
"""

from __future__ import annotations

import pytest

from benchmarks.analysis.quality import DETECT_WIDTH, RECHECK, Outcome, judge
from benchmarks.analysis.scenes import HEIGHT, WIDTH, Scene, scenes
from detection import FaceDetector, RuleSettings, ScaledDetector

CLEAR = ("clear", "two people", "no person", "face-like poster", "head turned (real photo)", "camera covered")


@pytest.fixture(scope="module")
def outcomes(detector: FaceDetector) -> list[Outcome]:
    subset = [scene for scene in scenes(small=True) if scene.condition in CLEAR]
    return judge(ScaledDetector(detector, DETECT_WIDTH, recheck=RECHECK), RuleSettings(), subset)


def test_the_subset_covers_every_clear_condition(outcomes: list[Outcome]) -> None:
    assert {o.scene.condition for o in outcomes} == set(CLEAR)
    assert all(o.scene.image.shape == (HEIGHT, WIDTH, 3) for o in outcomes)
    assert len(outcomes) >= 15


@pytest.mark.parametrize("condition", CLEAR)
def test_each_clear_frame_gets_the_right_people_count_and_flags(outcomes: list[Outcome], condition: str) -> None:
    wrong = [
        f"{o.scene.name}: {len(o.confident)} face(s) seen, raised {sorted(o.raised)}, expected "
        f"{o.scene.faces} face(s) and {sorted(o.scene.expected)}"
        for o in outcomes
        if o.scene.condition == condition and not _right(o.scene, o)
    ]
    assert not wrong, "\n".join(wrong)


def _right(scene: Scene, outcome: Outcome) -> bool:
    # Exactly the expected flags with weight: a state (weight 0) would also be wrong on these frames.
    return outcome.detected_right and outcome.raised == scene.expected


def test_the_real_turned_head_is_explained_in_plain_words(outcomes: list[Outcome]) -> None:
    from detection import StudentRules, frame_stats

    turned = next(o for o in outcomes if o.scene.condition == "head turned (real photo)")
    rules = StudentRules(RuleSettings())
    stats = frame_stats(turned.scene.image)
    raised = [v for ts in range(5) for v in rules.observe(float(ts), stats, turned.faces)]
    assert [v.kind for v in raised] == ["head_turned"]
    assert raised[0].explanation.startswith("Head turned to the side for 3.0 s (yaw ratio ")
    assert float(raised[0].details["yaw_ratio"]) > RuleSettings().yaw_ratio
