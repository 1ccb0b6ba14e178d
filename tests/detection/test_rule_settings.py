from __future__ import annotations

import math
from typing import Any

import pytest

from detection import InvalidRules, RuleSettings


def test_no_analysis_section_gives_defaults() -> None:
    assert RuleSettings.from_rules({}) == RuleSettings()
    assert RuleSettings.from_rules({"analysis": None, "shuffle": True}) == RuleSettings()


def test_reads_known_keys_and_ignores_others() -> None:
    settings = RuleSettings.from_rules(
        {
            "max_tab_switches": 3,
            "analysis": {
                "threshold": 0.6,
                "no_face_seconds": 5,
                "multiple_faces_seconds": 1.5,
                "looking_away_seconds": 8,
                "camera_blocked_seconds": 4,
                "dark_mean": 30,
                "uniform_stddev": 6.5,
                "sampling_fps": 2,
            },
        }
    )

    assert settings == RuleSettings(
        threshold=0.6,
        no_face_seconds=5.0,
        multiple_faces_seconds=1.5,
        looking_away_seconds=8.0,
        camera_blocked_seconds=4.0,
        dark_mean=30.0,
        uniform_stddev=6.5,
    )
    # JSON integers become floats, so the annotations hold.
    assert isinstance(settings.no_face_seconds, float)


def test_accommodations_disable_rules_and_other_names_are_left_to_other_packages() -> None:
    settings = RuleSettings.from_rules(
        {"analysis": {"disabled": ["multiple_faces"]}}, accommodations=["looking_away", "extra_time"]
    )

    # "looking_away" is the older name of the two head-pose rules: it switches both off.
    assert settings.disabled == frozenset({"multiple_faces", "looking_away", "head_turned", "looking_down"})


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ({"no_face_seconds": "3"}, "no_face_seconds must be a finite number"),
        ({"no_face_seconds": True}, "no_face_seconds must be a finite number"),
        ({"looking_away_seconds": math.nan}, "looking_away_seconds must be a finite number"),
        ({"camera_blocked_seconds": -1}, r"camera_blocked_seconds must be in \[0, inf\)"),
        ({"threshold": 0}, r"threshold must be in \(0, 1\]"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\]"),
        ({"dark_mean": 300}, r"dark_mean must be in \[0, 255\]"),
        ({"uniform_stddev": None}, "uniform_stddev must be a finite number"),
        ({"disabled": "looking_away"}, "disabled must be a list"),
        ({"disabled": ["looking_away", "sneezing"]}, "unknown rule.*'sneezing'"),
    ],
)
def test_bad_values_are_invalid_rules(analysis: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRules, match=message) as caught:
        RuleSettings.from_rules({"analysis": analysis})
    assert caught.value.category == "invalid"


@pytest.mark.parametrize("rules", [{"analysis": [1, 2]}, {"analysis": "strict"}, ["analysis"]])
def test_rules_and_analysis_must_be_objects(rules: Any) -> None:
    with pytest.raises(InvalidRules, match="must be an object"):
        RuleSettings.from_rules(rules)


def test_accommodations_must_be_a_list() -> None:
    with pytest.raises(InvalidRules, match="accommodations"):
        RuleSettings.from_rules({}, accommodations="looking_away")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidRules, match="no_face_seconds"):
        RuleSettings(no_face_seconds=-2)
    assert RuleSettings(disabled={"no_face"}).disabled == frozenset({"no_face"})  # type: ignore[arg-type]
