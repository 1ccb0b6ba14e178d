"""The speaking rule on speech-probability patterns, and the packaged voice model on real
synthetic speech (espeak-ng) against silence, tones and keyboard-like clicks."""

from __future__ import annotations

import numpy as np
import pytest

from core.vocabulary import KINDS
from detection import InvalidRules, RuleSettings, SpeakingRule, VoiceModel, VoiceStream
from detection.voice import CHUNK_SECONDS
from rooms.exam import AnalysisRules
from tests.support.speech import Samples, as_float, clicks, espeak_pcm, silence, tone

LISTENING = RuleSettings(speaking=True, speaking_seconds=3.0, speaking_window_seconds=10.0)
PER_SECOND = round(1 / CHUNK_SECONDS)


def chunks(seconds: float, probability: float) -> list[float]:
    return [probability] * round(seconds / CHUNK_SECONDS)


def feed(rule: SpeakingRule, pattern: list[float], start: float = 1000.0, step: int = PER_SECOND // 2) -> list:  # type: ignore[type-arg]
    """Feed `pattern` in half-second pieces, as the listener does; the violations raised."""
    raised = []
    for index in range(0, len(pattern), step):
        piece = pattern[index : index + step]
        ended = start + (index + len(piece)) * CHUNK_SECONDS
        violation = rule.observe(ended, piece)
        if violation is not None:
            raised.append(violation)
    return raised


def test_speech_long_enough_raises_one_violation_with_its_duration() -> None:
    rule = SpeakingRule(LISTENING)
    [violation] = feed(rule, chunks(1, 0.0) + chunks(4, 0.9) + chunks(2, 0.0))
    assert violation.kind == "speaking" and violation.kind in KINDS
    assert 3.0 <= violation.duration < 3.1
    assert violation.explanation == f"Speech heard for {violation.duration:.1f} s within 10 s"
    assert violation.started_at == pytest.approx(1001.0, abs=0.05)
    assert violation.confidence == pytest.approx(0.9)


def test_speech_with_pauses_adds_up_within_the_window() -> None:
    syllables = (chunks(0.25, 0.8) + chunks(0.15, 0.1)) * 12  # 3 s of speech in 4.8 s
    assert len(feed(SpeakingRule(LISTENING), syllables)) == 1


def test_short_or_scattered_speech_raises_nothing() -> None:
    assert feed(SpeakingRule(LISTENING), chunks(2.5, 0.9) + chunks(20, 0.0)) == []
    # 1 s of speech every 6 s: never 3 s within 10 s.
    assert feed(SpeakingRule(LISTENING), (chunks(1, 0.9) + chunks(5, 0.0)) * 6) == []
    # Probabilities just under the threshold are not speech.
    assert feed(SpeakingRule(LISTENING), chunks(30, 0.49)) == []


def test_one_violation_per_episode_and_a_new_one_after_a_silent_window() -> None:
    rule = SpeakingRule(LISTENING)
    assert len(feed(rule, chunks(60, 0.9))) == 1, "a minute of talking is one flag"
    assert len(feed(rule, chunks(9, 0.0) + chunks(4, 0.9), start=1060.0)) == 0, "the window still held speech"
    assert len(feed(rule, chunks(11, 0.0) + chunks(4, 0.9), start=1073.0)) == 1


def test_a_gap_in_the_audio_does_not_join_speech_across_it() -> None:
    rule = SpeakingRule(LISTENING)
    assert rule.observe(1000.0, chunks(2, 0.9)) is None
    assert rule.observe(1015.0, chunks(2, 0.9)) is None  # 13 s without audio in between
    assert rule.observe(1016.2, chunks(1.2, 0.9)) is not None


def test_a_window_shorter_than_the_speech_is_widened() -> None:
    rule = SpeakingRule(RuleSettings(speaking=True, speaking_seconds=5.0, speaking_window_seconds=1.0))
    [violation] = feed(rule, chunks(6, 0.9))
    assert violation.duration >= 5.0 and "within 5 s" in violation.explanation


def test_off_unless_the_exam_listens_and_no_accommodation_says_otherwise() -> None:
    speech = chunks(5, 0.9)
    assert feed(SpeakingRule(RuleSettings()), speech) == []
    accommodated = RuleSettings.from_rules({"analysis": {"enabled": True, "speaking": True}}, ["speaking"])
    assert not accommodated.listens and feed(SpeakingRule(accommodated), speech) == []
    disabled = RuleSettings.from_rules({"analysis": {"enabled": True, "speaking": True, "disabled": ["speaking"]}})
    assert not disabled.listens
    assert RuleSettings.from_rules({"analysis": {"enabled": True, "speaking": True}}).listens


def test_the_switch_is_validated_the_same_way_by_both_validators() -> None:
    from pydantic import ValidationError

    with pytest.raises(InvalidRules):
        RuleSettings.from_rules({"analysis": {"speaking": "yes"}})
    with pytest.raises(ValidationError):
        AnalysisRules.model_validate({"enabled": True, "speaking": "yes"})
    with pytest.raises(ValidationError, match=r"needs analysis\.enabled"):
        AnalysisRules.model_validate({"speaking": True})
    rules = AnalysisRules.model_validate({"enabled": True, "speaking": True})
    assert rules.speaking_for() and not rules.speaking_for(["speaking"]) and rules.speaking_for(["extra_time"])
    assert rules.for_student(["speaking"])["speaking"] is False


@pytest.fixture(scope="module")
def model() -> VoiceModel:
    return VoiceModel()


def probabilities(model: VoiceModel, audio: Samples, piece: int = 8000) -> Samples:
    """In half-second pieces through one stream, as the listener feeds it."""
    stream = VoiceStream()
    parts = [model.probabilities([(stream, audio[i : i + piece])])[0] for i in range(0, len(audio), piece)]
    return np.concatenate(parts)


def test_espeak_speech_is_speech(model: VoiceModel) -> None:
    speech = as_float(espeak_pcm())
    assert len(speech) > 5 * 16_000, "espeak produced less than 5 s of speech"
    p = probabilities(model, speech)
    assert (p >= 0.5).mean() > 0.6, f"only {(p >= 0.5).mean():.0%} of the speech was heard"
    assert feed(SpeakingRule(LISTENING), p.tolist()), "the rule did not fire on 5+ s of speech"


@pytest.mark.parametrize("name", ["silence", "tone 440 Hz", "tone 1 kHz", "keyboard clicks", "tone + clicks"])
def test_silence_tones_and_clicks_are_not_speech(model: VoiceModel, name: str) -> None:
    sounds = {
        "silence": silence(20),
        "tone 440 Hz": tone(20, 440),
        "tone 1 kHz": tone(20, 1000),
        "keyboard clicks": clicks(20),
        "tone + clicks": (tone(20, 440, level=0.1) + clicks(20, seed=3) // 2),
    }
    p = probabilities(model, as_float(sounds[name]))
    assert (p >= 0.5).mean() < 0.05, f"{name}: {(p >= 0.5).mean():.0%} of chunks heard as speech"
    assert feed(SpeakingRule(LISTENING), p.tolist()) == []


def test_students_batched_together_get_the_same_answers_as_alone(model: VoiceModel) -> None:
    speech, quiet = as_float(espeak_pcm()[:48_000]), as_float(clicks(3))
    alone = [model.probabilities([(VoiceStream(), audio)])[0] for audio in (speech, quiet, speech[:20_000])]
    together = model.probabilities([(VoiceStream(), speech), (VoiceStream(), quiet), (VoiceStream(), speech[:20_000])])
    for a, b in zip(alone, together, strict=True):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-4)
