"""Fixtures for detection tests: the real CenterFace model and real photographs.

A missing model or scikit-image fails the tests (never skips them) and says what to install.
"""

from __future__ import annotations

import numpy as np
import pytest

from detection import FaceDetector, ModelNotFound
from tests.support.images import Frame, astronaut_bgr, skimage_data


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    try:
        return FaceDetector()
    except ModelNotFound as exc:
        pytest.fail(f"the face model is required for these tests: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def astronaut() -> Frame:
    """512x512 BGR portrait, one frontal face."""
    return astronaut_bgr()


@pytest.fixture(scope="session")
def cameraman() -> Frame:
    """512x512 BGR (from grey) photograph of a man whose head is turned about 45 degrees."""
    grey: Frame = skimage_data().camera()
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
