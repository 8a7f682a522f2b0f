"""Public-domain faces bundled with scikit-image and matplotlib, for the demo, tests and
benchmarks.

Nothing here is shipped by this project: Eileen Collins (`skimage.data.astronaut`, NASA) and
Grace Hopper (matplotlib's `grace_hopper.jpg`, US Navy) are public-domain photos installed
with those libraries. Frames are composed from them, moved, scaled, mirrored and re-lit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Head regions (x1, y1, x2, y2) around the faces, in each photo's own pixels.
HEAD_BOXES = {"astronaut": (130, 20, 310, 230), "grace_hopper": (120, 60, 430, 420)}
# Names the demo and tests enrol these people under.
PEOPLE = {"astronaut": "eileen_collins", "grace_hopper": "grace_hopper"}


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """The full RGB photo: 'astronaut' or 'grace_hopper'."""
    if name == "astronaut":
        from skimage import data
        rgb = data.astronaut()
    elif name == "grace_hopper":
        from matplotlib import cbook
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR),
                               cv2.COLOR_BGR2RGB)
    else:
        raise ValueError(f"unknown sample photo '{name}'; choose from {', '.join(HEAD_BOXES)}")
    rgb.flags.writeable = False
    return rgb


def head(name: str) -> np.ndarray:
    x1, y1, x2, y2 = HEAD_BOXES[name]
    return photo(name)[y1:y2, x1:x2]


@lru_cache(maxsize=None)
def background(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A face-free backdrop (scikit-image's coffee cup, blurred)."""
    from skimage import data
    bg = cv2.resize(data.coffee(), size, interpolation=cv2.INTER_AREA)
    bg = cv2.GaussianBlur(bg, (0, 0), 3)
    bg.flags.writeable = False
    return bg


def place(frame: np.ndarray, name: str, center: tuple[float, float], height: int, *,
          mirror: bool = False, gain: float = 1.0) -> None:
    """Paste a scaled head into frame (in place), clipped at the frame's border."""
    src = head(name)
    scale = height / src.shape[0]
    tile = cv2.resize(
        src, (max(1, int(src.shape[1] * scale)), height), interpolation=cv2.INTER_AREA
    )
    if mirror:
        tile = tile[:, ::-1]
    if gain != 1.0:
        tile = np.clip(tile.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    h, w = tile.shape[:2]
    x0, y0 = int(center[0] - w / 2), int(center[1] - h / 2)
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, frame.shape[1]), min(y0 + h, frame.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = tile[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]


def scene(n_faces: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A frame with n_faces heads (alternating people) laid out on a grid, for benchmarks."""
    frame = background(size).copy()
    if n_faces == 0:
        return frame
    cols = int(np.ceil(np.sqrt(n_faces * size[0] / size[1])))
    rows = int(np.ceil(n_faces / cols))
    cell_w, cell_h = size[0] / cols, size[1] / rows
    height = int(min(cell_h * 0.9, cell_w * 1.1))
    names = list(HEAD_BOXES)
    for i in range(n_faces):
        r, c = divmod(i, cols)
        place(
            frame,
            names[i % 2],
            ((c + 0.5) * cell_w, (r + 0.5) * cell_h),
            height,
            mirror=bool(i % 3 == 2),
        )
    return frame


# --- moving sequences, for the tracking tests and benchmark ---------------------------------

@dataclass(frozen=True)
class SequenceFrame:
    """One frame of a synthetic sequence and its ground truth."""

    index: int  # frame number at the nominal rate (dropped frames leave gaps)
    stamp: float  # seconds
    rgb: np.ndarray
    # person key -> head box (x1, y1, x2, y2) for each head fully in view and not occluded
    visible: dict[str, tuple[float, float, float, float]]


@dataclass(frozen=True)
class Appearance:
    """Where one head is at frame i: a function of the frame number, or None when absent."""

    name: str
    path: Callable[[int], tuple[float, float, int] | None]  # -> (center x, center y, height)


def walk_path(i: int) -> tuple[float, float, int]:
    """The astronaut walks left to right and back, bobbing and coming closer, then away."""
    phase = i / 240 * 2 * np.pi
    return 320 - 200 * np.cos(phase), 130 + 10 * np.sin(3 * phase), int(200 + 20 * np.sin(phase))


def visit_path(i: int) -> tuple[float, float, int] | None:
    """Grace Hopper comes in from the right, strolls, leaves to the right, comes back later."""
    if i < 30 or 165 <= i < 185:
        return None
    if i < 60:  # entering
        x = 760 - (i - 30) * 9.0
    elif i < 135:
        x = 490 - 40 * np.sin((i - 60) / 75 * np.pi)
    elif i < 165:  # leaving
        x = 490 + (i - 135) * 9.0
    else:  # back in
        x = 760 - min(i - 185, 30) * 9.0
    return x, 358 + 6 * np.sin(i / 9), 175


DEFAULT_CAST = (Appearance("astronaut", walk_path), Appearance("grace_hopper", visit_path))


def head_box(
    name: str, center: tuple[float, float], height: int
) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = HEAD_BOXES[name]
    width = (x2 - x1) * height / (y2 - y1)
    return (
        center[0] - width / 2,
        center[1] - height / 2,
        center[0] + width / 2,
        center[1] + height / 2,
    )


def sequence(frames: int = 240, fps: float = 30.0, *, cast: tuple[Appearance, ...] = DEFAULT_CAST,
             occluded: dict[str, range] | None = None, dropped: range = range(150, 155),
             size: tuple[int, int] = (640, 480)) -> Iterator[SequenceFrame]:
    """A deterministic walk-through: heads move, scale and change light; one is hidden by a board
    for a few frames, one leaves and comes back, and a few frames are dropped (a stamp gap).

    Defaults: the astronaut is occluded in frames 90-95, Grace Hopper is away in frames 165-184
    (and partly out of view while entering and leaving), frames 150-154 are never delivered.
    """
    occluded = {"astronaut": range(90, 96)} if occluded is None else occluded
    for i in range(frames):
        if i in dropped:
            continue
        frame = background(size).copy()
        visible = {}
        for person in cast:
            where = person.path(i)
            if where is None:
                continue
            x, y, height = where
            place(
                frame, person.name, (x, y), height, gain=1.0 + 0.12 * np.sin(i / 17 + len(visible))
            )
            box = head_box(person.name, (x, y), height)
            hidden = i in occluded.get(person.name, ())
            if hidden:  # a grey board in front of the head
                bx1, by1, bx2, by2 = (int(round(v)) for v in box)
                cv2.rectangle(
                    frame, (bx1 - 10, by1 - 10), (bx2 + 10, by2 + 10), (128, 128, 128), -1
                )
            if (
                not hidden
                and box[0] >= 0
                and box[1] >= 0
                and box[2] <= size[0]
                and box[3] <= size[1]
            ):
                visible[person.name] = box
        yield SequenceFrame(i, i / fps, frame, visible)


def truth_for(box: np.ndarray, frame: SequenceFrame) -> str | None:
    """The person key whose visible head contains the centre of a detected face box, if any."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for name, (x1, y1, x2, y2) in frame.visible.items():
        if x1 <= cx <= x2 and y1 <= cy <= y2:
            return name
    return None


# Landmark alignment makes frames of one photo moved, rescaled or relit by a few percent one sample
# (embedding cosine 0.993-0.999 between them); a mirror image and strong light differ a little
# more (0.984-0.996), standing in for a real person turning and moving: enough for live
# enrolment with tracking.enroll_max_similarity at 0.997.
LOOKS = ((False, 1.0), (True, 1.0), (False, 1.35), (True, 1.35), (False, 0.65), (True, 0.65))


def looks(name: str, frames: int = 120, block: int = 15,
          fps: float = 30.0) -> Iterator[SequenceFrame]:
    """One head held still in the middle of the frame, changing look (LOOKS) every ``block``
    frames: what live enrolment needs to find diverse samples in synthetic frames."""
    for i in range(frames):
        mirror, gain = LOOKS[(i // block) % len(LOOKS)]
        frame = background().copy()
        place(frame, name, (320, 240), 260, mirror=mirror, gain=gain)
        yield SequenceFrame(i, i / fps, frame, {name: head_box(name, (320, 240), 260)})
