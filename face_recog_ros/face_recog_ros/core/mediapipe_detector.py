"""The 'mediapipe' detector backend: BlazeFace through MediaPipe Tasks' FaceDetector.

The same model files as the TFLite backend (they carry the TFLite metadata Tasks requires).
Optional: mediapipe is imported only when this backend is asked for (detection.create_detector).
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from ..types import Detection
from .detection import NUM_KEYPOINTS, DetectorOptions, as_rgb, check_image, model_file
from .runtime import ModelError

MEDIAPIPE_INSTALL = "pip install --no-deps mediapipe==1.2.3 absl-py flatbuffers"


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
        path = model_file(self.options)
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
                f"MediaPipe cannot load {path}: {e} (a bare BlazeFace file needs its TFLite "
                "metadata: "
                "tools/add_blazeface_metadata.py)"
            ) from e
        # Closed on garbage collection, or by _close_at_exit; not by __del__ or atexit, which
        # run too late for MediaPipe's close() (see _close_at_exit).
        self._finalizer = weakref.finalize(self, self._detector.close)
        self._finalizer.atexit = False
        _register_for_exit(self)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image (grayscale and RGBA accepted), as
        FaceDetector.detect."""
        check_image(image)
        if self._detector is None:
            raise RuntimeError("detector is closed")
        rgb = np.ascontiguousarray(as_rgb(image))
        h, w = rgb.shape[:2]
        result = self._detector.detect(
            self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        )
        faces = []
        for d in result.detections:
            b = d.bounding_box
            box = np.array(
                [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height], np.float32
            )
            keypoints = np.array([[k.x * w, k.y * h] for k in d.keypoints], np.float32)
            if keypoints.shape != (NUM_KEYPOINTS, 2):
                raise ModelError(
                    f"MediaPipe returned {len(d.keypoints)} keypoints, expected {NUM_KEYPOINTS}"
                )
            faces.append(
                Detection(box=box, score=float(d.categories[0].score), keypoints=keypoints)
            )
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


def _import_mediapipe() -> tuple[Any, Any, Any]:
    """mediapipe, its Tasks vision module and base_options, or ModelError saying how to install
    them.

    Imported on demand: the TFLite backend must not pay for (or depend on) mediapipe.
    """
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core import base_options
    except ImportError as e:
        raise ModelError(
            f"detector backend 'mediapipe' needs the mediapipe package ({e}). Install it with "
            f"`{MEDIAPIPE_INSTALL}` (it also needs numpy, opencv-python(-headless) and "
            "matplotlib; "
            "wheels exist for x86_64 and 64-bit aarch64 only), or set detector.backend to "
            "'tflite'."
        ) from e
    return mp, vision, base_options
