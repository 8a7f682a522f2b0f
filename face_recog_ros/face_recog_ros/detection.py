"""Face detection with MediaPipe's BlazeFace models, on the TFLite runtime or MediaPipe Tasks.

Two interchangeable backends behind `create_detector(options)`:

- `FaceDetector` ('tflite') reproduces MediaPipe's face_detection graph
  (modules/face_detection/face_detection.pbtxt with the short/full-range options) without
  MediaPipe: letterboxed [-1, 1] input, SSD anchors from SsdAnchorsCalculator,
  TensorsToDetectionsCalculator decoding and NonMaxSuppressionCalculator's WEIGHTED
  algorithm, then projection back to the original image's pixels. Needs only a TFLite runtime.
- `MediaPipeFaceDetector` ('mediapipe') runs the same model files through MediaPipe Tasks'
  FaceDetector (the bundled files carry the TFLite metadata Tasks requires; the TFLite
  backend ignores it).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .runtime import ModelError, load_interpreter, models_dir
from .types import Detection

_NUM_KEYPOINTS = 6
_NUM_COORDS = 4 + 2 * _NUM_KEYPOINTS
_SCORE_CLIP = 100.0  # TensorsToDetectionsCalculator score_clipping_thresh


@dataclass(frozen=True)
class _ModelSpec:
    """Graph constants from MediaPipe's face_detection_{short,full}_range.pbtxt."""

    filename: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_boxes: int


_MODELS = {
    "short": _ModelSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 1.0, 896),
    "full": _ModelSpec("face_detection_full_range.tflite", 192, (4,), 0.0, 2304),
}

BACKENDS = ("tflite", "mediapipe", "auto")
MEDIAPIPE_INSTALL = "pip install --no-deps mediapipe==1.2.3 absl-py flatbuffers"


@dataclass(frozen=True)
class DetectorOptions:
    """Detector settings; mirrors the `detector.*` group of the YAML config.

    model_range: 'short' (faces within ~2 m, 128x128 input) or 'full' (~5 m, 192x192).
    min_score: sigmoid score threshold (MediaPipe uses 0.5 short, 0.6 full).
    nms_iou: IoU above which detections are merged by weighted NMS.
    max_faces: at most this many detections are returned, best first.
    model_path: a .tflite file to use instead of the bundled model for model_range.
    backend: 'tflite' (FaceDetector), 'mediapipe' (MediaPipeFaceDetector) or 'auto'
        (mediapipe when it imports, else tflite); see create_detector.
    num_threads: TFLite backend only (MediaPipe Tasks' Python API does not expose it).
    """

    model_range: str = "short"
    min_score: float = 0.5
    nms_iou: float = 0.3
    max_faces: int = 10
    num_threads: int = 2
    model_path: str | Path | None = None
    backend: str = "tflite"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.model_range not in _MODELS:
            raise ValueError(f"model_range must be one of {sorted(_MODELS)}, got {self.model_range!r}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if not 0.0 <= self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in [0, 1], got {self.nms_iou}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")


def ssd_anchor_centers(input_size: int, strides: tuple[int, ...], interpolated_scale_aspect_ratio: float) -> np.ndarray:
    """Anchor centres (N, 2) as x, y in [0, 1], in MediaPipe SsdAnchorsCalculator order.

    Why only centres: the face graphs set fixed_anchor_size, so every anchor is 1x1 and the
    decode is a pure offset. Consecutive layers with equal stride share one feature map and
    emit their anchors per cell together; each layer contributes one anchor per aspect ratio
    (only 1.0 here) plus one interpolated-scale anchor when that ratio is > 0.
    """
    per_layer = 1 + (1 if interpolated_scale_aspect_ratio > 0.0 else 0)
    centers: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        last = layer
        while last < len(strides) and strides[last] == stride:
            last += 1
        repeats = per_layer * (last - layer)
        cells = -(-input_size // stride)  # ceil, as MediaPipe
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centers.append(np.repeat(grid, repeats, axis=0))
        layer = last
    return np.concatenate(centers).astype(np.float32)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-max suppression (IoU overlap).

    boxes (M, 4) xmin, ymin, xmax, ymax; keypoints (M, K); scores (M,). Repeatedly takes the
    best remaining detection, averages the boxes and keypoints of every remaining detection
    whose IoU with it exceeds the threshold (itself included), weighted by score, and keeps
    the best score. Returns at most max_out results, best first.
    """
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    out_boxes, out_kps, out_scores = [], [], []
    while order.size and len(out_scores) < max_out:
        top = order[0]
        b = boxes[order]
        iw = np.minimum(b[:, 2], boxes[top, 2]) - np.maximum(b[:, 0], boxes[top, 0])
        ih = np.minimum(b[:, 3], boxes[top, 3]) - np.maximum(b[:, 1], boxes[top, 1])
        inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        union = areas[order] + areas[top] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        merge = iou > iou_threshold
        members = order[merge]
        if not members.size:  # zero-area box: MediaPipe keeps it and stops, as nothing was removed
            out_boxes.append(boxes[top])
            out_kps.append(keypoints[top])
            out_scores.append(scores[top])
            break
        w = scores[members]
        total = w.sum()
        out_boxes.append(w @ boxes[members] / total)
        out_kps.append(w @ keypoints[members] / total)
        out_scores.append(scores[top])
        order = order[~merge]
    if not out_scores:
        return np.empty((0, 4), np.float32), np.empty((0, keypoints.shape[1]), np.float32), np.empty(0, np.float32)
    return (np.asarray(out_boxes, np.float32), np.asarray(out_kps, np.float32), np.asarray(out_scores, np.float32))


def _model_path(options: DetectorOptions) -> Path:
    return Path(options.model_path) if options.model_path else models_dir() / _MODELS[options.model_range].filename


class FaceDetector:
    """BlazeFace detector. Not thread-safe: it reuses its input buffers between frames."""

    backend = "tflite"

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        spec = _MODELS[self.options.model_range]
        self._size = spec.input_size
        path = _model_path(self.options)
        self._interpreter = load_interpreter(path, self.options.num_threads)
        inp = self._interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, self._size, self._size, 3) or inp["dtype"] != np.float32:
            raise ModelError(
                f"{path}: expected a float32 (1, {self._size}, {self._size}, 3) input for the "
                f"{self.options.model_range}-range model, got {inp['dtype'].__name__} {tuple(inp['shape'])}"
            )
        self._input_index = inp["index"]
        outputs = {int(d["shape"][-1]): d for d in self._interpreter.get_output_details()}
        if set(outputs) != {_NUM_COORDS, 1} or any(int(d["shape"][1]) != spec.num_boxes for d in outputs.values()):
            raise ModelError(
                f"{path}: outputs do not match BlazeFace ({spec.num_boxes} boxes x {_NUM_COORDS} coords + scores)"
            )
        self._boxes_index = outputs[_NUM_COORDS]["index"]
        self._scores_index = outputs[1]["index"]
        self._anchors = ssd_anchor_centers(spec.input_size, spec.strides, spec.interpolated_scale_aspect_ratio)
        assert len(self._anchors) == spec.num_boxes
        self._canvas = np.zeros((self._size, self._size, 3), np.uint8)
        self._tensor = np.empty((1, self._size, self._size, 3), np.float32)
        self._geometry: tuple[int, int, int, int, int, int] | None = None  # h, w, new_w, new_h, pad_x, pad_y

    def close(self) -> None:
        """Nothing to release (the interpreter is freed with the object); kept for interface parity."""

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image (grayscale (H, W) / (H, W, 1) and RGBA are accepted).

        Boxes and keypoints are in the input image's pixel coordinates (continuous: the
        top-left corner of the image is 0, 0), not clipped to the image; sorted by score.
        """
        _, _, new_w, new_h, pad_x, pad_y = self._letterbox(image)
        self._interpreter.set_tensor(self._input_index, self._tensor)
        self._interpreter.invoke()
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]
        raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0]

        # float64: exp(100) overflows float32 (MediaPipe gets inf -> 0, the same score).
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)))
        keep = np.flatnonzero(scores >= self.options.min_score)
        if not keep.size:
            return []
        raw = raw_boxes[keep] / self._size  # x, y, w, h, then keypoint x, y pairs
        anchors = self._anchors[keep]
        centers = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centers - half, centers + half], axis=1)
        keypoints = (raw[:, 4:].reshape(-1, _NUM_KEYPOINTS, 2) + anchors[:, None, :]).reshape(-1, 2 * _NUM_KEYPOINTS)
        valid = (raw[:, 2] >= 0) & (raw[:, 3] >= 0)  # NaN compares False, as MediaPipe drops NaN too
        boxes, keypoints, scores = weighted_nms(
            boxes[valid], keypoints[valid], scores[keep][valid], self.options.nms_iou, self.options.max_faces
        )

        # Tensor-normalised -> original pixels: undo the padding, then the resize (per axis,
        # since the rounded resized size makes the x and y scales differ slightly).
        h, w = image.shape[:2]
        scale = np.array([w / new_w, h / new_h], np.float32)
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = ((boxes.reshape(-1, 2, 2) * self._size - offset) * scale).reshape(-1, 4)
        keypoints = (keypoints.reshape(-1, _NUM_KEYPOINTS, 2) * self._size - offset) * scale
        return [
            Detection(box=boxes[i].astype(np.float32), score=float(scores[i]), keypoints=kp.astype(np.float32))
            for i, kp in enumerate(keypoints)
        ]

    def _letterbox(self, image: np.ndarray) -> tuple[int, int, int, int, int, int]:
        """Resize keeping aspect ratio into the centre of the zero-padded model input (FIT).

        Fills self._tensor with values in [-1, 1] and returns the letterbox geometry.
        """
        _check_image(image)
        h, w = image.shape[:2]
        if self._geometry is None or self._geometry[:2] != (h, w):
            scale = self._size / max(h, w)
            new_w = min(self._size, max(1, round(w * scale)))
            new_h = min(self._size, max(1, round(h * scale)))
            self._geometry = (h, w, new_w, new_h, (self._size - new_w) // 2, (self._size - new_h) // 2)
            self._canvas.fill(0)
        _, _, new_w, new_h, pad_x, pad_y = self._geometry
        shrink = new_w < w or new_h < h
        small = cv2.resize(
            np.ascontiguousarray(image), (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        small = as_rgb(small)
        self._canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = small.reshape(new_h, new_w, 3)
        np.multiply(self._canvas, np.float32(2.0 / 255.0), out=self._tensor[0], casting="unsafe")
        self._tensor -= 1.0
        return self._geometry


class MediaPipeFaceDetector:
    """The same BlazeFace models through MediaPipe Tasks' FaceDetector (running mode IMAGE).

    Same interface and output convention as FaceDetector. Differences: Tasks reports the box
    in whole pixels (keypoints stay sub-pixel); it resizes without area averaging, so
    results differ slightly from the TFLite backend on strongly downscaled frames; and
    num_threads is not applied. Holds native resources: close() it (or use `with`); it is
    also closed when collected or at interpreter exit.
    """

    backend = "mediapipe"

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        mp, vision, base_options = _import_mediapipe()
        self._mp = mp
        path = _model_path(self.options)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        tasks_options = vision.FaceDetectorOptions(
            base_options=base_options.BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=self.options.min_score,
            min_suppression_threshold=self.options.nms_iou,
        )
        try:
            self._detector: Any = vision.FaceDetector.create_from_options(tasks_options)
        except (RuntimeError, ValueError) as e:
            raise ModelError(
                f"MediaPipe cannot load {path}: {e} (a bare BlazeFace file needs its TFLite metadata: "
                "tools/add_blazeface_metadata.py)"
            ) from e
        # Closed on garbage collection, or by _close_at_exit; not by __del__ or atexit, which
        # run too late for MediaPipe's close() (see _close_at_exit).
        self._finalizer = weakref.finalize(self, self._detector.close)
        self._finalizer.atexit = False
        _register_for_exit(self)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image (grayscale and RGBA accepted), as FaceDetector.detect."""
        _check_image(image)
        if self._detector is None:
            raise RuntimeError("detector is closed")
        rgb = np.ascontiguousarray(as_rgb(image))
        h, w = rgb.shape[:2]
        result = self._detector.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        faces = []
        for d in result.detections:
            b = d.bounding_box
            box = np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height], np.float32)
            keypoints = np.array([[k.x * w, k.y * h] for k in d.keypoints], np.float32)
            if keypoints.shape != (_NUM_KEYPOINTS, 2):
                raise ModelError(f"MediaPipe returned {len(d.keypoints)} keypoints, expected {_NUM_KEYPOINTS}")
            faces.append(Detection(box=box, score=float(d.categories[0].score), keypoints=keypoints))
        faces.sort(key=lambda f: -f.score)
        return faces[: self.options.max_faces]

    def close(self) -> None:
        """Release the Tasks graph; idempotent."""
        self._detector = None
        self._finalizer()

    def __enter__(self) -> MediaPipeFaceDetector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_OPEN_MEDIAPIPE: weakref.WeakSet[MediaPipeFaceDetector] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _close_at_exit() -> None:
    """Close MediaPipe detectors still open when the interpreter exits.

    Why threading's exit hook (Python >= 3.9, the one concurrent.futures itself uses): MediaPipe
    sends close() through a ThreadPoolExecutor that refuses work once threading has shut
    down, which is before atexit handlers run, and its own __del__ fails during module
    teardown. These hooks run before the executor's, so the graphs close cleanly.
    """
    for detector in list(_OPEN_MEDIAPIPE):
        detector.close()


def _register_for_exit(detector: MediaPipeFaceDetector) -> None:
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            threading._register_atexit(_close_at_exit)  # type: ignore[attr-defined]
            _exit_hook_registered = True
        _OPEN_MEDIAPIPE.add(detector)


def mediapipe_available() -> bool:
    """Whether the mediapipe backend can be used here (imports mediapipe when it can)."""
    try:
        _import_mediapipe()
    except ModelError:
        return False
    return True


def create_detector(options: DetectorOptions | None = None) -> FaceDetector | MediaPipeFaceDetector:
    """The detector for options.backend; 'auto' picks mediapipe when it imports, else tflite.

    Raises ModelError (a ValueError) with install instructions when 'mediapipe' is asked
    for and cannot be imported.
    """
    options = options or DetectorOptions()
    if options.backend == "mediapipe" or (options.backend == "auto" and mediapipe_available()):
        return MediaPipeFaceDetector(options)
    return FaceDetector(options)


def _import_mediapipe() -> tuple[Any, Any, Any]:
    """mediapipe, its Tasks vision module and base_options, or ModelError saying how to install them.

    Imported on demand: the TFLite backend must not pay for (or depend on) mediapipe.
    """
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core import base_options
    except ImportError as e:
        raise ModelError(
            f"detector backend 'mediapipe' needs the mediapipe package ({e}). Install it with "
            f"`{MEDIAPIPE_INSTALL}` (it also needs numpy, opencv-python(-headless) and matplotlib; "
            "wheels exist for x86_64 and 64-bit aarch64 only), or set detector.backend to 'tflite'."
        ) from e
    return mp, vision, base_options


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An accepted image (RGB, grayscale (H, W) or (H, W, 1), RGBA) as RGB (H, W, 3)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return image


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (RGB 0..255), got dtype {image.dtype}")
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not channels_ok or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be (H, W, 3) RGB, (H, W) grayscale or (H, W, 4) RGBA; got shape {image.shape}")
