"""Real photographs for the face tests, from scikit-image (a dev dependency).

A missing scikit-image fails the test that needs it, saying what to install; never a skip.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

Frame = npt.NDArray[np.uint8]


def skimage_data() -> ModuleType:
    try:
        import skimage.data
    except ImportError as exc:
        pytest.fail(
            f"scikit-image provides the test photographs but cannot be imported ({exc}); "
            "install it with `pip install 'scikit-image>=0.24'` (part of the dev extra)",
            pytrace=False,
        )
    return skimage.data


def astronaut_bgr() -> Frame:
    """512x512 BGR portrait, one frontal face."""
    rgb: Frame = skimage_data().astronaut()
    return np.ascontiguousarray(rgb[:, :, ::-1])
