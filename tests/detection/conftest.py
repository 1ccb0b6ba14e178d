"""Fixtures for detection tests: the real CenterFace model and real photographs.

A missing model or scikit-image fails the tests (never skips them) and says what to install.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

from detection import FaceDetector, ModelNotFound

Frame = npt.NDArray[np.uint8]


def _skimage_data() -> ModuleType:
    try:
        import skimage.data
    except ImportError as exc:
        pytest.fail(
            f"scikit-image provides the test photographs but cannot be imported ({exc}); "
            "install it with `pip install 'scikit-image>=0.24'` (part of the dev extra)",
            pytrace=False,
        )
    return skimage.data


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    try:
        return FaceDetector()
    except ModelNotFound as exc:
        pytest.fail(f"the face model is required for these tests: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def astronaut() -> Frame:
    """512x512 BGR portrait, one frontal face."""
    rgb: Frame = _skimage_data().astronaut()
    return np.ascontiguousarray(rgb[:, :, ::-1])


@pytest.fixture(scope="session")
def cameraman() -> Frame:
    """512x512 BGR (from grey) photograph of a man whose head is turned about 45 degrees."""
    grey: Frame = _skimage_data().camera()
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
