"""Face detection on sampled camera frames and the rules that turn it into violations.

Engine package: no network, no event loop. ``FaceDetector.detect_batch`` blocks and is
meant to run in an executor; ``StudentRules`` is pure logic with time passed in.
"""

from detection.errors import DetectionError, InvalidFrame, InvalidRules, ModelLoadError, ModelNotFound
from detection.face_detector import Face, FaceDetector, default_model_path
from detection.rules import RuleViolation, StudentRules
from detection.scaled import ScaledDetector
from detection.settings import KINDS, RuleSettings
from detection.signals import FrameStats, frame_stats, head_pitch, head_turn
from detection.speaking import SpeakingRule
from detection.voice import VoiceModel, VoiceStream

__all__ = [
    "KINDS",
    "DetectionError",
    "Face",
    "FaceDetector",
    "FrameStats",
    "InvalidFrame",
    "InvalidRules",
    "ModelLoadError",
    "ModelNotFound",
    "RuleSettings",
    "RuleViolation",
    "ScaledDetector",
    "SpeakingRule",
    "StudentRules",
    "VoiceModel",
    "VoiceStream",
    "default_model_path",
    "frame_stats",
    "head_pitch",
    "head_turn",
]
