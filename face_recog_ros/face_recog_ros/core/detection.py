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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .runtime import ModelError, load_interpreter, models_dir
from ..options import Options, option
from ..types import Detection

if TYPE_CHECKING:
    from .mediapipe_detector import MediaPipeFaceDetector

NUM_KEYPOINTS = 6
_NUM_COORDS = 4 + 2 * NUM_KEYPOINTS
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


@dataclass
class DetectorOptions(Options):
    """The detector's settings: the `detector.*` group of the YAML config and the node.

    ``model_path`` is not a configuration option: tests and tools point it at a .tflite file
    to use instead of the bundled model for ``model_range``.
    """

    model_range: str = option(
        "short",
        "BlazeFace model: 'short' (faces within ~2 m, 128x128 input) "
        "or 'full' (far faces, 192x192 input)",
        choices=tuple(_MODELS),
        read_only=True,
    )
    min_score: float = option(0.5, "Minimum detection confidence (MediaPipe uses 0.5 short range, "
                              "0.6 full range)", low=0.05, high=1.0)
    nms_iou: float = option(
        0.3,
        "IoU above which overlapping detections are merged (weighted NMS)",
        low=0.05,
        high=0.95,
    )
    max_faces: int = option(
        10, "Most faces reported per frame (highest scores first)", low=1, high=100
    )
    num_threads: int = option(2, "CPU threads for the detector", low=1, high=16, read_only=True)
    backend: str = option(
        "tflite",
        "Detector runtime for the same BlazeFace models: 'tflite' (our decoder "
        "on the TFLite runtime: no extra dependency, installs wherever the embedder "
        "runs, incl. 32-bit Pi OS and older Jetson images), 'mediapipe' (MediaPipe "
        "Tasks FaceDetector: needs the mediapipe wheel, x86_64/aarch64 only, ignores "
        "num_threads) or 'auto' (mediapipe when it imports, else tflite)",
        choices=BACKENDS,
        read_only=True,
    )
    model_path: str | Path | None = None


def ssd_anchor_centers(
    input_size: int, strides: tuple[int, ...], interpolated_scale_aspect_ratio: float
) -> np.ndarray:
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
        ys, xs = np.meshgrid(
            (np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij"
        )
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centers.append(np.repeat(grid, repeats, axis=0))
        layer = last
    return np.concatenate(centers).astype(np.float32)


def weighted_nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    max_out: int,
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
        return (
            np.empty((0, 4), np.float32),
            np.empty((0, keypoints.shape[1]), np.float32),
            np.empty(0, np.float32),
        )
    return (
        np.asarray(out_boxes, np.float32),
        np.asarray(out_kps, np.float32),
        np.asarray(out_scores, np.float32),
    )


def model_file(options: DetectorOptions) -> Path:
    return (
        Path(options.model_path)
        if options.model_path
        else models_dir() / _MODELS[options.model_range].filename
    )


class FaceDetector:
    """BlazeFace detector. Not thread-safe: it reuses its input buffers between frames."""

    backend = "tflite"

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        spec = _MODELS[self.options.model_range]
        self._size = spec.input_size
        path = model_file(self.options)
        self._interpreter = load_interpreter(path, self.options.num_threads)
        inp = self._interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, self._size, self._size, 3) or inp["dtype"] != np.float32:
            raise ModelError(
                f"{path}: expected a float32 (1, {self._size}, {self._size}, 3) input for the "
                f"{self.options.model_range}-range model, got {inp['dtype'].__name__} "
                f"{tuple(inp['shape'])}"
            )
        self._input_index = inp["index"]
        outputs = {int(d["shape"][-1]): d for d in self._interpreter.get_output_details()}
        if set(outputs) != {_NUM_COORDS, 1} or any(
            int(d["shape"][1]) != spec.num_boxes for d in outputs.values()
        ):
            raise ModelError(
                f"{path}: outputs do not match BlazeFace ({spec.num_boxes} boxes x {_NUM_COORDS} "
                "coords + scores)"
            )
        self._boxes_index = outputs[_NUM_COORDS]["index"]
        self._scores_index = outputs[1]["index"]
        self._anchors = ssd_anchor_centers(
            spec.input_size, spec.strides, spec.interpolated_scale_aspect_ratio
        )
        assert len(self._anchors) == spec.num_boxes
        self._canvas = np.zeros((self._size, self._size, 3), np.uint8)
        self._tensor = np.empty((1, self._size, self._size, 3), np.float32)
        self._geometry: tuple[int, int, int, int, int, int] | None = (
            None  # h, w, new_w, new_h, pad_x, pad_y
        )

    def close(self) -> None:
        """Nothing to release (the interpreter is freed with the object); kept for interface
        parity."""

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image (grayscale (H, W) / (H, W, 1) and RGBA are
        accepted).

        Boxes and keypoints are in the input image's pixel coordinates (continuous: the
        top-left corner of the image is 0, 0), not clipped to the image; sorted by score.
        """
        _, _, new_w, new_h, pad_x, pad_y = self._letterbox(image)
        self._interpreter.set_tensor(self._input_index, self._tensor)
        self._interpreter.invoke()
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]
        raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0]

        # float64: exp(100) overflows float32 (MediaPipe gets inf -> 0, the same score).
        scores = 1.0 / (
            1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP))
        )
        keep = np.flatnonzero(scores >= self.options.min_score)
        if not keep.size:
            return []
        raw = raw_boxes[keep] / self._size  # x, y, w, h, then keypoint x, y pairs
        anchors = self._anchors[keep]
        centers = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centers - half, centers + half], axis=1)
        keypoints = (raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]).reshape(
            -1, 2 * NUM_KEYPOINTS
        )
        valid = (raw[:, 2] >= 0) & (
            raw[:, 3] >= 0
        )  # NaN compares False, as MediaPipe drops NaN too
        boxes, keypoints, scores = weighted_nms(
            boxes[valid],
            keypoints[valid],
            scores[keep][valid],
            self.options.nms_iou,
            self.options.max_faces,
        )

        # Tensor-normalised -> original pixels: undo the padding, then the resize (per axis,
        # since the rounded resized size makes the x and y scales differ slightly).
        h, w = image.shape[:2]
        scale = np.array([w / new_w, h / new_h], np.float32)
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = ((boxes.reshape(-1, 2, 2) * self._size - offset) * scale).reshape(-1, 4)
        keypoints = (keypoints.reshape(-1, NUM_KEYPOINTS, 2) * self._size - offset) * scale
        return [
            Detection(
                box=boxes[i].astype(np.float32),
                score=float(scores[i]),
                keypoints=kp.astype(np.float32),
            )
            for i, kp in enumerate(keypoints)
        ]

    def _letterbox(self, image: np.ndarray) -> tuple[int, int, int, int, int, int]:
        """Resize keeping aspect ratio into the centre of the zero-padded model input (FIT).

        Fills self._tensor with values in [-1, 1] and returns the letterbox geometry.
        """
        check_image(image)
        h, w = image.shape[:2]
        if self._geometry is None or self._geometry[:2] != (h, w):
            scale = self._size / max(h, w)
            new_w = min(self._size, max(1, round(w * scale)))
            new_h = min(self._size, max(1, round(h * scale)))
            self._geometry = (
                h,
                w,
                new_w,
                new_h,
                (self._size - new_w) // 2,
                (self._size - new_h) // 2,
            )
            self._canvas.fill(0)
        _, _, new_w, new_h, pad_x, pad_y = self._geometry
        shrink = new_w < w or new_h < h
        small = cv2.resize(
            np.ascontiguousarray(image),
            (new_w, new_h),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
        )
        small = as_rgb(small)
        self._canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = small.reshape(new_h, new_w, 3)
        np.multiply(self._canvas, np.float32(2.0 / 255.0), out=self._tensor[0], casting="unsafe")
        self._tensor -= 1.0
        return self._geometry


def create_detector(
    options: DetectorOptions | None = None,
) -> FaceDetector | MediaPipeFaceDetector:
    """The detector for options.backend; 'auto' picks mediapipe when it imports, else tflite.

    Raises ModelError (a ValueError) with install instructions when 'mediapipe' is asked
    for and cannot be imported.
    """
    options = options or DetectorOptions()
    if options.backend != "tflite":
        # Imported here, not at the top: the TFLite backend must not pay for (or depend on)
        # mediapipe.
        from .mediapipe_detector import MediaPipeFaceDetector, mediapipe_available
        if options.backend == "mediapipe" or mediapipe_available():
            return MediaPipeFaceDetector(options)
    return FaceDetector(options)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An accepted image (RGB, grayscale (H, W) or (H, W, 1), RGBA) as RGB (H, W, 3)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return image


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (RGB 0..255), got dtype {image.dtype}")
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not channels_ok or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(
            "image must be (H, W, 3) RGB, (H, W) grayscale or (H, W, 4) RGBA; got shape "
            f"{image.shape}"
        )
