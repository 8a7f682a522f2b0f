"""Public-domain faces bundled with scikit-image and matplotlib, for the demo, tests and benchmarks.

Nothing here is shipped by this project: Eileen Collins (`skimage.data.astronaut`, NASA) and
Grace Hopper (matplotlib's `grace_hopper.jpg`, US Navy) are public-domain photos installed
with those libraries. Frames are composed from them, moved, scaled, mirrored and re-lit.
"""
from __future__ import annotations

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
    tile = cv2.resize(src, (max(1, int(src.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
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
        place(frame, names[i % 2], ((c + 0.5) * cell_w, (r + 0.5) * cell_h), height, mirror=bool(i % 3 == 2))
    return frame
