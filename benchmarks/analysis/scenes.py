"""A labelled set of 320x240 webcam-like frames, made from photographs that ship in scikit-image.

Each `Scene` is one frame with what a proctor would say about it: how many people face the
camera and which flags the rules should raise. The only real faces available are the
astronaut (frontal) and the cameraman (head turned about 45 degrees); every other condition
is made from them by image operations, and the operations are named in `Scene.condition` so
that docs/analysis-quality.md can say which rows are real photographs and which are proxies.

Used by `benchmarks/analysis/quality.py` (the whole set) and by
`tests/detection/test_quality_set.py` (the clear cases of a small subset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
WIDTH, HEIGHT = 320, 240
# The rule kinds a scene can expect; the "unable to judge" states are counted, not expected.
FLAGS = ("no_face", "multiple_faces", "head_turned", "looking_down", "camera_blocked")


@dataclass(frozen=True)
class Scene:
    condition: str  # e.g. "dim", "two people"; rows of the quality table
    name: str  # the variant within the condition
    image: Frame  # BGR uint8, HEIGHT x WIDTH
    faces: int  # people facing the camera (the truth for detection accuracy)
    expected: frozenset[str]  # flags the rules should raise on this frame held for its hold time
    proxy: bool = False  # the condition is simulated by an image operation that may not be faithful


def _data() -> object:
    import skimage.data  # a dev dependency; imported late so importing this module stays cheap

    return skimage.data


def _bgr(image: npt.NDArray[np.generic]) -> Frame:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, 2::-1])


def backgrounds() -> dict[str, Frame]:
    """Photographs without a human face, resized to the frame (a cat's face is among them)."""
    data = _data()
    names = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "page", "coins", "text", "immunohistochemistry")
    return {name: _fit(_bgr(getattr(data, name)())) for name in names}


def _fit(image: Frame, width: int = WIDTH, height: int = HEIGHT) -> Frame:
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def astronaut_bust() -> Frame:
    """Head and shoulders of the astronaut (face about 40 % of the crop's height)."""
    return _bgr(_data().astronaut())[0:300, 90:340]  # type: ignore[attr-defined]


def cameraman_bust() -> Frame:
    """Head and shoulders of the cameraman, whose head is turned to his right (a real photograph)."""
    return _bgr(_data().camera())[20:300, 130:390]  # type: ignore[attr-defined]


def place(background: Frame, person: Frame, height: int, x: int, y: int | None = None) -> Frame:
    """`person` scaled to `height` px and pasted with its left edge at `x` (may be cut by the edge)."""
    scaled = _fit(person, round(person.shape[1] * height / person.shape[0]), height)
    frame = background.copy()
    top = HEIGHT - height if y is None else y
    x0, x1 = max(0, x), min(WIDTH, x + scaled.shape[1])
    y0, y1 = max(0, top), min(HEIGHT, top + height)
    frame[y0:y1, x0:x1] = scaled[y0 - top : y1 - top, x0 - x : x1 - x]
    return frame


def cartoon_face(background: Frame) -> Frame:
    """A drawn poster face (circle, eyes, nose, smile): face-like, but not a person."""
    frame = background.copy()
    cv2.circle(frame, (160, 110), 70, (120, 200, 240), -1)
    for eye_x in (135, 185):
        cv2.circle(frame, (eye_x, 90), 10, (255, 255, 255), -1)
        cv2.circle(frame, (eye_x, 92), 5, (20, 20, 20), -1)
    cv2.line(frame, (160, 100), (155, 125), (60, 90, 140), 3)
    cv2.ellipse(frame, (160, 140), (30, 15), 0, 10, 170, (40, 40, 160), 4)
    return frame


def _occlude_hand(frame: Frame) -> Frame:
    out = frame.copy()
    # A skin-toned palm and fingers over the mouth and chin, as when resting the chin on a hand.
    cv2.ellipse(out, (130, 165), (48, 30), -10, 0, 360, (120, 150, 200), -1)
    for finger in range(4):
        cv2.ellipse(out, (95 + finger * 20, 140), (9, 26), 0, 0, 360, (115, 145, 195), -1)
    return out


def _occlude_object(frame: Frame) -> Frame:
    out = frame.copy()
    cv2.rectangle(out, (60, 60), (125, 115), (40, 40, 200), -1)  # a red mug over one eye
    return out


def _turn_proxy(bust: Frame, squeeze: float) -> Frame:
    """Head 'turned' by squeezing one half of the bust horizontally (a crude foreshortening)."""
    middle = bust.shape[1] // 2
    left = bust[:, :middle]
    right = _fit(bust[:, middle:], max(1, round((bust.shape[1] - middle) * squeeze)), bust.shape[0])
    return np.ascontiguousarray(np.hstack([left, right]))


def _tilt_proxy(bust: Frame, amount: float) -> Frame:
    """Head 'tilted down' as a perspective warp (top edge nearer the camera, lower face squashed)."""
    h, w = bust.shape[:2]
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    inset = w * amount / 2
    target = np.array([[0, 0], [w, 0], [w - inset, h * (1 - amount / 2)], [inset, h * (1 - amount / 2)]], np.float32)
    warped = cv2.warpPerspective(
        bust, cv2.getPerspectiveTransform(source, target), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(warped, np.uint8)


def _jpeg(frame: Frame, quality: int) -> Frame:
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8)


def _scale(frame: Frame, gain: float, offset: float = 0.0) -> Frame:
    scaled: Frame = np.clip(frame.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return scaled


def _noise(frame: Frame, sigma: float, seed: int) -> Frame:
    rng = np.random.default_rng(seed)
    noisy: Frame = np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)
    return noisy


def scenes(*, small: bool = False) -> Iterator[Scene]:
    """The labelled set; `small` keeps two backgrounds and one variant per condition."""
    walls = backgrounds()
    rooms = ["coffee", "brick"] if small else ["coffee", "brick", "page", "grass", "text"]
    xs = [35] if small else [0, 35, 70]
    bust, turned = astronaut_bust(), cameraman_bust()
    one: frozenset[str] = frozenset()
    none = frozenset({"no_face"})

    def each(
        condition: str,
        make: Callable[[Frame, int], Frame],
        faces: int,
        expected: frozenset[str],
        proxy: bool = False,
        variants: int = 1,
    ) -> Iterator[Scene]:
        for room in rooms:
            for x in xs:
                for variant in range(1 if small else variants):
                    image = make(place(walls[room], bust, HEIGHT, x), variant)
                    yield Scene(condition, f"{room} x={x} v{variant}", image, faces, expected, proxy)

    yield from each("clear", lambda f, v: f, 1, one)
    yield from each("dim", lambda f, v: _scale(f, (0.35, 0.22)[v]), 1, one, variants=2)
    yield from each("very dark", lambda f, v: _scale(f, (0.12, 0.07)[v]), 1, one, variants=2)
    yield from each("bright", lambda f, v: _scale(f, (1.6, 2.2)[v], 20), 1, one, variants=2)
    yield from each(
        "blurred", lambda f, v: np.asarray(cv2.GaussianBlur(f, (0, 0), (2.0, 4.0)[v]), np.uint8), 1, one, variants=2
    )
    yield from each(
        "very blurred",
        lambda f, v: np.asarray(cv2.GaussianBlur(f, (0, 0), (7.0, 10.0)[v]), np.uint8),
        1,
        one,
        variants=2,
    )
    yield from each("noisy", lambda f, v: _noise(f, (15.0, 30.0)[v], v), 1, one, variants=2)
    yield from each("heavy JPEG", lambda f, v: _jpeg(f, (10, 4)[v]), 1, one, variants=2)
    yield from each("hand over face", lambda f, v: _occlude_hand(f), 1, one)
    yield from each("object over eye", lambda f, v: _occlude_object(f), 1, one)
    for room in rooms:
        # Backlit: a bright window behind a person in shadow.
        window = _scale(walls[room], 0.5, 170)
        for x in xs:
            person = _scale(place(window, bust, HEIGHT, x), 1.0)
            shade = person.copy()
            region = shade[:, max(0, x) : x + 200]
            shade[:, max(0, x) : x + 200] = _scale(region, 0.45)
            yield Scene("backlit", f"{room} x={x}", shade, 1, one)
            yield Scene("small face (far)", f"{room} x={x + 60}", place(walls[room], bust, 90, x + 60, 70), 1, one)
            yield Scene(
                "large face (near)",
                f"{room} x={x - 60}",
                place(walls[room], bust[40:230, 40:210], HEIGHT, x + 20),
                1,
                one,
            )
            yield Scene("face at the edge", f"{room} left", place(walls[room], bust, HEIGHT, -70), 1, one)
            yield Scene("face at the edge", f"{room} right", place(walls[room], bust, HEIGHT, WIDTH - 130), 1, one)
            yield Scene(
                "head turned (real photo)",
                f"{room} x={x}",
                place(walls[room], turned, HEIGHT, x),
                1,
                frozenset({"head_turned"}),
            )
            yield Scene(
                "head turned (real photo)",
                f"{room} x={x} mirrored",
                place(walls[room], np.ascontiguousarray(turned[:, ::-1]), HEIGHT, x),
                1,
                frozenset({"head_turned"}),
            )
            yield Scene(
                "head turned (real photo, farther)",
                f"{room} x={x + 50}",
                place(walls[room], turned, 170, x + 50),
                1,
                frozenset({"head_turned"}),
            )
            yield Scene(
                "head turned (proxy)",
                f"{room} x={x}",
                place(walls[room], _turn_proxy(bust, 0.45), HEIGHT, x),
                1,
                frozenset({"head_turned"}),
                proxy=True,
            )
            yield Scene(
                "looking down (proxy)",
                f"{room} x={x}",
                place(walls[room], _tilt_proxy(bust, 0.5), HEIGHT, x),
                1,
                frozenset({"looking_down"}),
                proxy=True,
            )
            yield Scene(
                "two people",
                f"{room} x={x}",
                place(place(walls[room], bust, 200, x - 30), bust, 200, x + 150),
                2,
                frozenset({"multiple_faces"}),
            )
            if not small:
                yield Scene(
                    "two people",
                    f"{room} x={x} with turned",
                    place(place(walls[room], bust, 200, x - 30), turned, 200, x + 150),
                    2,
                    frozenset({"multiple_faces"}),
                )
    chosen = list(walls) if not small else ["coffee", "chelsea", "brick"]
    for room in chosen:
        yield Scene("no person", room, walls[room], 0, none)
        yield Scene("no person, dim room", room, _scale(walls[room], 0.45), 0, none)
        yield Scene("face-like poster", room, cartoon_face(walls[room]), 0, none)
    for level in (0, 8, 16) if not small else (0,):
        covered = np.full((HEIGHT, WIDTH, 3), level, np.uint8)
        yield Scene("camera covered", f"level {level}", _noise(covered, 2.0, level), 0, frozenset({"camera_blocked"}))
