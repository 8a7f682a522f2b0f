"""Five facial landmarks with dlib's shape predictor, run in numpy (no dlib at run time).

dlib's ResNet was trained on chips cut from the 5 points of ``shape_predictor_5_face_landmarks``
(outer and inner eye corners, base of the nose). Cutting the chip from the same points, found
the same way, is what keeps its accuracy: BlazeFace's coarse keypoints move the chip enough to
swap look-alike identities. The predictor is a cascade of regression trees over pixel-intensity
differences (Kazemi and Sullivan, 2014); ``tools/convert_dlib_shape_predictor.py`` turns dlib's
``.dat`` into ``models/dlib_shape_predictor_5.npz`` and checks that this code gives dlib's points.

The predictor is evaluated exactly as dlib does it, float32 rounding included (a feature pixel
that lands on the other side of a rounding boundary sends a tree down another branch, and a
few such flips move a landmark by a pixel or two). All faces of a frame go through the cascade
together, so a frame with five faces costs far less than five single-face calls.

A landmark model is only as good as the face box it starts from: it was trained on boxes of
dlib's HOG face detector. ``box_from_keypoints`` maps BlazeFace's eyes and mouth to that box
convention with six coefficients calibrated on photos (``tools/calibrate_landmark_box.py``),
and the box is cut to the image as face_recognition cuts its HOG boxes.
"""
from __future__ import annotations

import math
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .runtime import ModelError

# Landmark order of dlib's 5-point model: the subject's left eye (image right) outer and inner
# corners, the right eye's outer and inner corners, then the base of the nose.
LANDMARK_NAMES = ("left_eye_outer", "left_eye_inner", "right_eye_outer", "right_eye_inner",
                  "nose_base")
NPZ_FORMAT = 1
_NPZ_KEYS = ("format", "initial_shape", "split_idx1", "split_idx2", "split_thresh",
             "leaf_values", "anchor_idx", "deltas")


@dataclass(frozen=True)
class BoxMapping:
    """Where the predictor's training box (dlib's HOG box) sits for a BlazeFace detection.

    In the frame of the eye line (origin between the eyes, x along the eye line, y towards
    the mouth), the box centre's two coordinates and its side are each linear in the eye
    distance and the eye-to-mouth distance: two scale measures, so a face turned sideways
    (eyes closer) or nodding (mouth closer) still gets a box of the right size.
    """

    along: tuple[float, float]  # centre offset along the eye line, per (eye distance, mouth drop)
    down: tuple[float, float]  # centre offset towards the mouth, per (eye distance, mouth drop)
    size: tuple[float, float]  # box side (dlib's right - left), per (eye distance, mouth drop)

    def boxes(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, 6, 2) BlazeFace keypoints -> (N, 4) boxes (left, top, right, bottom), dlib style."""
        mid, along, down, scales = eye_frame(keypoints)
        centre = (mid + (scales @ np.asarray(self.along))[:, None] * along
                  + (scales @ np.asarray(self.down))[:, None] * down)
        half = (scales @ np.asarray(self.size))[:, None] / 2
        return np.concatenate([centre - half, centre + half], 1)


def eye_frame(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BlazeFace keypoints (N, 6, 2) -> the eye-line frame of each face: the point between the
    eyes, unit vectors along the eye line and down the face, and (eye distance, mouth drop)."""
    kp = np.asarray(keypoints, np.float64).reshape(-1, 6, 2)
    right_eye, left_eye, mouth = kp[:, 0], kp[:, 1], kp[:, 3]
    mid = (right_eye + left_eye) / 2
    along = left_eye - right_eye
    eye_distance = np.maximum(np.hypot(along[:, 0], along[:, 1]), 1e-6)
    along /= eye_distance[:, None]
    down = np.stack([-along[:, 1], along[:, 0]], 1)
    drop = ((mouth - mid) * down).sum(1)
    return mid, along, down, np.stack([eye_distance, drop], 1)


@dataclass(frozen=True)
class LandmarkSpec:
    """A landmark model and how to place its start box (one models/<id>.yaml)."""

    id: str
    file: Path
    box: BoxMapping
    path: Path

    @classmethod
    def from_yaml(cls, path: str | Path) -> LandmarkSpec:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as e:
            raise ModelError(f"landmark model spec not readable: {path}: {e}") from None
        except yaml.YAMLError as e:
            raise ModelError(f"{path}: invalid YAML: {e}") from None
        if not isinstance(data, dict) or not data.get("id") or not data.get("file"):
            raise ModelError(f"{path}: a landmark spec needs 'id', 'file' and "
                             "'box_from_keypoints'")
        box = data.get("box_from_keypoints")
        try:
            mapping = BoxMapping(*(tuple(float(v) for v in box[k])
                                   for k in ("along", "down", "size")))
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"{path}: 'box_from_keypoints' must hold 'along', 'down' and 'size', "
                             "two numbers each (tools/calibrate_landmark_box.py prints them)"
                             ) from None
        values = mapping.along + mapping.down + mapping.size
        if any(len(v) != 2 for v in (mapping.along, mapping.down, mapping.size)) \
                or not all(math.isfinite(v) for v in values):
            raise ModelError(f"{path}: 'box_from_keypoints' values must be two finite numbers "
                             "each")
        return cls(id=str(data["id"]), file=(path.parent / str(data["file"])).resolve(),
                   box=mapping, path=path.resolve())


class ShapePredictor:
    """dlib's ``shape_predictor`` (regression-tree cascade) on RGB uint8 images.

    ``predict(rgb, boxes)`` returns, for each box, the points dlib's predictor returns for
    ``dlib.rectangle(*box)``, before dlib rounds them to whole pixels.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in _NPZ_KEYS}
            self._load(arrays)
        except FileNotFoundError:
            raise ModelError(f"landmark model not found: {path}") from None
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile,
                zlib.error) as e:
            raise ModelError(f"landmark model {path} is not a converted shape predictor "
                             f"(tools/convert_dlib_shape_predictor.py): {e}") from None

    def _load(self, a: dict[str, np.ndarray]) -> None:
        version = a["format"].item() if a["format"].size == 1 else None
        if version != NPZ_FORMAT:
            raise ModelError(f"{self.path}: landmark model format {version}, "
                             f"expected {NPZ_FORMAT}")
        initial = a["initial_shape"].astype(np.float32).reshape(-1)
        cascades, trees, splits = a["split_idx1"].shape
        leaves = a["leaf_values"]
        features = a["anchor_idx"].shape[1]
        consistent = (
            a["split_idx2"].shape == a["split_thresh"].shape == (cascades, trees, splits)
            and leaves.shape == (cascades, trees, splits + 1, initial.size)
            and (splits + 1) & splits == 0  # complete binary trees
            and a["deltas"].shape == (cascades, features, 2) and initial.size % 2 == 0
            and a["anchor_idx"].max() < initial.size // 2
            and max(a["split_idx1"].max(), a["split_idx2"].max()) < features)
        if not consistent:
            raise ModelError(f"{self.path}: inconsistent landmark model arrays")
        self.num_points = initial.size // 2
        self._initial = initial
        self._cascades, self._trees, self._splits = cascades, trees, splits
        # Similarity transform initial shape -> current shape (dlib's find_tform_between_shapes)
        # is linear in the current shape for a fixed initial shape: (a, b) = shape @ _to_ab.
        start = initial.reshape(-1, 2).astype(np.float64)
        centred = start - start.mean(0)
        norm = (centred ** 2).sum()
        # Columns a, b, -b, a: the rotation's first and second columns come out of one product.
        to_ab = np.zeros((initial.size, 4))
        to_ab[0::2, 0], to_ab[1::2, 0] = centred[:, 0] / norm, centred[:, 1] / norm
        to_ab[0::2, 1], to_ab[1::2, 1] = -centred[:, 1] / norm, centred[:, 0] / norm
        to_ab[:, 2], to_ab[:, 3] = -to_ab[:, 1], to_ab[:, 0]
        self._to_ab = to_ab
        anchor = a["anchor_idx"].astype(np.intp)
        self._anchor_xy = np.stack([2 * anchor, 2 * anchor + 1], 1)  # (C, 2, F), flat shape
        deltas = a["deltas"].astype(np.float32)
        self._dx = np.repeat(deltas[:, None, :, 0], 2, axis=1)  # (C, 2, F)
        self._dy = np.repeat(deltas[:, None, :, 1], 2, axis=1)
        self._pairs = np.stack([a["split_idx1"].reshape(cascades, -1),
                                a["split_idx2"].reshape(cascades, -1)], 1).astype(np.intp)
        self._thresh = a["split_thresh"].reshape(cascades, -1).astype(np.float32)
        self._leaves = leaves.reshape(cascades, trees * (splits + 1), -1).astype(np.float32)
        self._leaf_base = np.arange(trees) * (splits + 1)
        self._bit = (2.0 ** np.arange(splits)).astype(np.float32)
        # Leaf reached for each pattern of split outcomes (bit i set: split i went left).
        depth = int(math.log2(splits + 1))
        codes = np.arange(1 << splits)
        node = np.zeros_like(codes)
        for _ in range(depth):
            node = 2 * node + 2 - ((codes >> node) & 1)
        self._leaf_of_code = (node - splits).astype(np.intp)

    def predict(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and (N, 4) boxes (left, top, right, bottom) -> (N, P, 2) points."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = len(boxes)
        if n == 0:
            return np.zeros((0, self.num_points, 2))
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        pixels = np.ascontiguousarray(rgb).reshape(-1, 3)
        scale = (boxes[:, 2:4] - boxes[:, 0:2])[:, :, None]  # (N, 2, 1): box -> image
        offset = boxes[:, 0:2, None] + 0.5  # + 0.5: dlib rounds feature positions to pixels
        limit = np.array([[width], [height]], np.uintp)
        row_step = np.array([[1], [width]], np.intp)
        ones, third = np.ones(3, np.float32), np.float32(1 / 3)
        shape = np.tile(self._initial, (n, 1))  # (N, 2P) float32, normalised box coordinates
        for c in range(self._cascades):
            ab = (shape.astype(np.float64) @ self._to_ab).astype(np.float32)[:, :, None]
            rot_x, rot_y = ab[:, 0:2], ab[:, 2:4]
            # Feature positions, in dlib's float32 order: (tform * delta) + anchor landmark.
            xy = self._dx[c] * rot_x
            xy += self._dy[c] * rot_y
            xy += shape.take(self._anchor_xy[c], axis=1)
            pxy = np.floor(xy * scale + offset).astype(np.intp)  # (N, 2, F) pixel columns, rows
            inside = (pxy.view(np.uintp) < limit).all(1)  # negatives wrap to huge: outside
            index = (pxy * row_step).sum(1) * inside
            # dlib's intensity of an RGB pixel: (r + g + b) / 3 in integers; 0 outside the image.
            value = np.floor((pixels.take(index, axis=0).astype(np.float32) @ ones + 0.5) * third)
            value *= inside
            pair = value.take(self._pairs[c], axis=1)
            went_left = (pair[:, 0] - pair[:, 1]) > self._thresh[c]
            code = (went_left.reshape(n, self._trees, self._splits).astype(np.float32) @ self._bit)
            leaf = self._leaf_of_code.take(code.astype(np.intp)) + self._leaf_base
            rows = self._leaves[c].take(leaf, axis=0)  # (N, trees, 2P)
            rows[:, 0] += shape  # dlib adds the trees one by one onto the shape, in float32
            shape = rows.sum(1)
        points = shape.reshape(n, -1, 2).astype(np.float64)
        return boxes[:, None, 0:2] + points * (boxes[:, None, 2:4] - boxes[:, None, 0:2])


_PREDICTORS: dict[tuple[Path, int, int], ShapePredictor] = {}
_PREDICTORS_LOCK = threading.Lock()


def shared_predictor(path: Path) -> ShapePredictor:
    """One ShapePredictor per model file (and version of it) in a process: it holds ~10 MB of
    arrays and never changes them, so every recognizer (one per camera, CLI, tests) can share it,
    from any thread."""
    try:
        st = path.stat()
    except OSError:
        return ShapePredictor(path)  # raises the ModelError naming the file
    key = (path.resolve(), st.st_mtime_ns, st.st_size)
    with _PREDICTORS_LOCK:
        if key not in _PREDICTORS:
            _PREDICTORS[key] = ShapePredictor(path)
        return _PREDICTORS[key]


class Landmarker:
    """BlazeFace detections -> dlib's 5 landmarks: box mapping, then the shape predictor."""

    def __init__(self, spec: LandmarkSpec) -> None:
        self.spec = spec
        self.predictor = shared_predictor(spec.file)
        if self.predictor.num_points != len(LANDMARK_NAMES):
            raise ModelError(f"{spec.file}: a {self.predictor.num_points}-point model; "
                             f"alignment needs dlib's {len(LANDMARK_NAMES)}-point model")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Landmarker:
        return cls(LandmarkSpec.from_yaml(path))

    def locate(self, rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """(N, 6, 2) BlazeFace keypoints -> (N, 5, 2) landmarks in LANDMARK_NAMES order."""
        boxes = trim_to_image(self.spec.box.boxes(keypoints), rgb.shape)
        return self.predictor.predict(rgb, boxes)


def trim_to_image(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Whole-pixel boxes cut to the image, as face_recognition hands HOG boxes to the predictor
    (_trim_css_to_bounds): its landmarks, and the embedder's training chips, came from those.
    A box that would vanish is kept whole."""
    height, width = shape[:2]
    whole = np.floor(np.asarray(boxes, np.float64) + 0.5)
    trimmed = np.stack([np.maximum(whole[:, 0], 0), np.maximum(whole[:, 1], 0),
                        np.minimum(whole[:, 2], width), np.minimum(whole[:, 3], height)], 1)
    usable = (trimmed[:, 2] > trimmed[:, 0]) & (trimmed[:, 3] > trimmed[:, 1])
    return np.where(usable[:, None], trimmed, whole)
