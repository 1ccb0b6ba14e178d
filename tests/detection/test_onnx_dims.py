from __future__ import annotations

import onnxruntime as ort
import pytest

from detection import FaceDetector
from detection.centerface import DYNAMIC_DIMS, INPUT_NAME
from detection.onnx_dims import OnnxFormatError, with_dims


def test_shipped_model_gets_free_dims_and_constant_weights(detector: FaceDetector) -> None:
    original = detector.model_path.read_bytes()

    model = with_dims(original, DYNAMIC_DIMS)

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    # Only the image is an input any more: the weights listed as inputs became constants.
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    assert session.get_outputs()[0].shape == ["batch", 1, "map_height", "map_width"]


def test_unknown_name_is_an_error(detector: FaceDetector) -> None:
    with pytest.raises(OnnxFormatError, match="no input or output named"):
        with_dims(detector.model_path.read_bytes(), {"nope": [1]})


@pytest.mark.parametrize("data", [b"", b"\xff\xff\xff", b"\x08\x04"], ids=["empty", "garbage", "no-graph"])
def test_garbage_is_an_error(data: bytes) -> None:
    with pytest.raises(OnnxFormatError):
        with_dims(data, DYNAMIC_DIMS)
