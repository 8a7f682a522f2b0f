"""BlazeFace detector on the bundled models and real (public-domain) photos."""
from __future__ import annotations

import json
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

from face_recog_ros.config import RecognizerConfig, set_option
from face_recog_ros.core.detection import (
    DetectorOptions,
    FaceDetector,
    create_detector,
    ssd_anchor_centers,
    weighted_nms,
)
from face_recog_ros.core.mediapipe_detector import (
    MEDIAPIPE_INSTALL,
    MediaPipeFaceDetector,
    mediapipe_available,
)
from face_recog_ros.types import Detection, KEYPOINT_NAMES

PACKAGE = Path(__file__).resolve().parents[1]
FACES_DEV = PACKAGE.parent / ".." / "shared" / "faces-dev"
RANGES = ("short", "full")
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


@pytest.fixture(scope="module", params=RANGES)
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    return FaceDetector(DetectorOptions(model_range=request.param))


@pytest.fixture(scope="module")
def short() -> FaceDetector:
    return FaceDetector(DetectorOptions(model_range="short"))


@pytest.fixture(scope="module")
def full() -> FaceDetector:
    return FaceDetector(DetectorOptions(model_range="full"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def center(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def inside(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


# --- anchors and NMS (pure numpy) ------------------------------------------------------


def test_anchor_counts_match_mediapipe_graphs() -> None:
    short = ssd_anchor_centers(128, (8, 16, 16, 16), 1.0)
    full = ssd_anchor_centers(192, (4,), 0.0)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # stride 8: 16x16 cells x 2 anchors; first cell centre (0.5 / 16); both anchors share it.
    np.testing.assert_allclose(short[0], [1 / 32, 1 / 32])
    np.testing.assert_allclose(short[1], short[0])
    np.testing.assert_allclose(short[2], [3 / 32, 1 / 32])
    # stride 16 layers merged: 8x8 cells x 6 anchors, starting after the 512 stride-8 anchors.
    np.testing.assert_allclose(short[512:518], np.tile([1 / 16, 1 / 16], (6, 1)))
    np.testing.assert_allclose(full[-1], [1 - 1 / 96, 1 - 1 / 96])


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.array([[0, 0], [3, 3], [55, 55]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    out_boxes, out_kps, out_scores = weighted_nms(boxes, keypoints, scores, 0.3, max_out=10)
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    np.testing.assert_allclose(
        out_boxes[0], [0.6, 0, 10.6, 10], rtol=1e-6
    )  # (0.6*0 + 0.9*1) / 1.5
    np.testing.assert_allclose(out_kps[0], [1.8, 1.8], rtol=1e-6)
    np.testing.assert_allclose(out_boxes[1], boxes[2])
    assert len(weighted_nms(boxes, keypoints, scores, 0.3, max_out=1)[2]) == 1


# --- real images -----------------------------------------------------------------------


def test_astronaut_one_face_with_plausible_keypoints(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.box.dtype == np.float32 and face.box.shape == (4,)
    assert face.keypoints.dtype == np.float32 and face.keypoints.shape == (6, 2)
    assert face.score >= detector.options.min_score
    kp = face.keypoints
    eyes_y = max(kp[KP["right_eye"], 1], kp[KP["left_eye"], 1])
    assert eyes_y < kp[KP["nose_tip"], 1] < kp[KP["mouth_center"], 1]
    assert (
        kp[KP["right_eye"], 0] < kp[KP["left_eye"], 0]
    )  # subject's right eye is on the image's left
    for name in ("right_eye", "left_eye", "nose_tip", "mouth_center"):
        assert inside(face.box, kp[KP[name]]), name
    assert (
        60 < face.width < 140 and 60 < face.height < 140
    )  # Collins' face is ~95 px in the 512 px photo


def test_astronaut_box_agrees_with_dlib_hog(detector: FaceDetector, astronaut: np.ndarray) -> None:
    dlib = pytest.importorskip("dlib")
    rects = dlib.get_frontal_face_detector()(astronaut, 0)
    assert len(rects) == 1
    r = rects[0]
    dlib_center = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    face = detector.detect(astronaut)[0]
    assert np.linalg.norm(center(face.box) - dlib_center) < 0.15 * face.width


def test_grace_hopper_one_face(detector: FaceDetector, hopper: np.ndarray) -> None:
    faces = detector.detect(hopper)
    assert len(faces) == 1
    kp = faces[0].keypoints
    assert kp[KP["right_eye"], 1] < kp[KP["mouth_center"], 1]
    assert inside(faces[0].box, kp[KP["nose_tip"]])


def test_two_faces_side_by_side(
    detector: FaceDetector, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    # Crops keep both faces large enough for the short-range model (~20% of the frame width).
    pair = np.zeros((300, 600, 3), np.uint8)
    pair[:, :300] = astronaut[0:300, 80:380]
    pair[:, 300:556] = cv2.resize(hopper, (256, 300), interpolation=cv2.INTER_AREA)
    faces = detector.detect(pair)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    xs = sorted(center(f.box)[0] for f in faces)
    assert xs[0] < 300 < xs[1]
    assert (
        len(
            FaceDetector(
                DetectorOptions(model_range=detector.options.model_range, max_faces=1)
            ).detect(pair)
        )
        == 1
    )


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_frames_have_no_faces(detector: FaceDetector, value: int) -> None:
    assert detector.detect(np.full((480, 640, 3), value, np.uint8)) == []


def test_grayscale_and_rgba_inputs(detector: FaceDetector, astronaut: np.ndarray) -> None:
    reference = detector.detect(astronaut)[0]
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    for image in (gray, gray[:, :, None], cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA)):
        faces = detector.detect(image)
        assert len(faces) == 1, image.shape
        assert np.abs(faces[0].box - reference.box).max() < 0.1 * reference.width


# --- letterbox: mapping back to original pixels ------------------------------------------


def test_letterbox_exact_for_portrait_and_landscape(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    """A strip and the square with the strip's complement blacked out give the same model input.

    The letterbox pads the strip with black to a square, so both must give identical
    detections up to the strip's offset: any error in the pad/scale inversion shows up here.
    """
    portrait = astronaut[:, 128:384]
    square = np.zeros_like(astronaut)
    square[:, 128:384] = portrait
    shifted = np.zeros_like(astronaut)  # face moved into rows 128..384
    shifted[100:] = astronaut[:412]
    landscape = shifted[128:384]
    square_l = np.zeros_like(astronaut)
    square_l[128:384] = landscape
    for strip, full_image, offset in (
        (portrait, square, (128, 0)),
        (landscape, square_l, (0, 128)),
    ):
        a, b = detector.detect(np.ascontiguousarray(strip)), detector.detect(full_image)
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a[0].box + np.tile(offset, 2), b[0].box, atol=0.05)
        np.testing.assert_allclose(a[0].keypoints + offset, b[0].keypoints, atol=0.05)
        assert a[0].score == pytest.approx(b[0].score, abs=1e-5)


@pytest.mark.parametrize("orientation", ["wide", "tall"])
def test_letterbox_canvas_offset(
    detector: FaceDetector, astronaut: np.ndarray, orientation: str
) -> None:
    # Canvas long side chosen so the face stays within each model's range (short: ~20% of it).
    long_side = 640 if detector.options.model_range == "short" else 768
    dx, dy = (50, 0) if orientation == "wide" else (0, 70)
    shape = (512, long_side, 3) if orientation == "wide" else (long_side, 512, 3)
    canvas = np.zeros(shape, np.uint8)
    canvas[dy:dy + 512, dx:dx + 512] = astronaut
    reference = detector.detect(astronaut)[0]
    faces = detector.detect(canvas)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box - [dx, dy, dx, dy], reference.box, atol=6.5)
    np.testing.assert_allclose(
        faces[0].keypoints[:4] - [dx, dy], reference.keypoints[:4], atol=6.5
    )


def test_full_range_finds_small_face(full: FaceDetector, astronaut: np.ndarray) -> None:
    scale = 60 / 95  # the face becomes ~60 px wide
    small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:100 + small.shape[0], 200:200 + small.shape[1]] = small
    faces = full.detect(frame)
    assert len(faces) == 1
    expected = center(full.detect(astronaut)[0].box) * scale + [200, 100]
    assert np.linalg.norm(center(faces[0].box) - expected) < 8
    assert 40 < faces[0].width < 80


# --- input validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((1, 64, 64, 3), np.uint8), "shape"),
        (np.zeros((0, 64, 3), np.uint8), "shape"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_invalid_input_raises(short: FaceDetector, image: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        short.detect(image)  # type: ignore[arg-type]


def test_invalid_options_raise() -> None:
    with pytest.raises(ValueError, match="model_range"):
        DetectorOptions(model_range="medium")
    with pytest.raises(ValueError, match="min_score"):
        DetectorOptions(min_score=1.5)


# --- real evaluation photos (local only) ------------------------------------------------------


@pytest.mark.skipif(not FACES_DEV.is_dir(), reason="../shared/faces-dev not present")
def test_detection_rate_lfw(detector: FaceDetector) -> None:
    source = FACES_DEV / "lfw_subset_krasserm"
    if not source.is_dir():
        pytest.skip(f"{source} not present")
    photos = sorted(
        p
        for p in source.glob("*/*")
        if p.parent.name != "group" and not p.parent.name.startswith("_")
    )
    assert photos
    found = sum(
        bool(detector.detect(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))) for p in photos
    )
    rate = found / len(photos)
    print(
        f"{detector.options.model_range}-range detection rate on {source.name}: "
        f"{found}/{len(photos)} = {rate:.3f}"
    )
    assert rate >= 0.95


def test_wrong_model_file_is_rejected(tmp_path: Path) -> None:
    # The full-range model where the short-range one is expected: wrong input size.
    full_model = PACKAGE / "models" / "face_detection_full_range.tflite"
    with pytest.raises(ValueError, match="expected a float32"):
        FaceDetector(DetectorOptions(model_range="short", model_path=full_model))
    with pytest.raises(ValueError, match="not found"):
        FaceDetector(DetectorOptions(model_path=tmp_path / "missing.tflite"))


# --- bundled model files ---------------------------------------------------------------------


def test_bundled_models_match_provenance_and_carry_metadata() -> None:
    """The committed files are what tools/vendor_blazeface.py wrote: checksums and metadata
    step."""
    models = PACKAGE / "models"
    provenance = json.loads((models / "blazeface.provenance.json").read_text())
    assert provenance["metadata_step"]["tool"] == "tools/add_blazeface_metadata.py"
    for name, info in provenance["models"].items():
        data = (models / name).read_bytes()
        assert (
            hashlib.sha256(data).hexdigest() == info["sha256"]
        ), f"{name} changed without re-vendoring"
        assert b"TFLITE_METADATA" in data and info["sha256_in_wheel"] != info["sha256"]


# --- backend option ---------------------------------------------------------------------------


def test_backend_option_validation() -> None:
    assert DetectorOptions().backend == RecognizerConfig().detector.backend == "tflite"
    with pytest.raises(ValueError, match="backend must be one of tflite, mediapipe, auto"):
        DetectorOptions(backend="gpu")
    config = RecognizerConfig()
    for value in ("tflite", "mediapipe", "auto"):
        set_option(config, "detector.backend", value)
        assert config.detector.backend == value
    with pytest.raises(ValueError, match="detector.backend"):
        set_option(config, "detector.backend", "onnx")
    yaml_config = RecognizerConfig.from_yaml(PACKAGE / "config" / "face_recognition.yaml")
    assert yaml_config.detector.backend == RecognizerConfig().detector.backend


def test_tflite_backend_is_the_plain_detector(astronaut: np.ndarray) -> None:
    with create_detector(DetectorOptions(backend="tflite")) as detector:
        assert type(detector) is FaceDetector and detector.backend == "tflite"
        assert len(detector.detect(astronaut)) == 1


_WITHOUT_MEDIAPIPE = """
import sys
sys.modules["mediapipe"] = None  # what Python does for a package that is not installed
from face_recog_ros.core.detection import DetectorOptions, create_detector
print(type(create_detector(DetectorOptions(backend="auto"))).__name__)
try:
    create_detector(DetectorOptions(backend="mediapipe"))
except ValueError as e:
    print(e)
"""


def test_without_mediapipe_auto_falls_back_and_mediapipe_says_how_to_install() -> None:
    """A fresh interpreter in which mediapipe cannot be imported, whether or not it is installed
    here."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MEDIAPIPE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    auto_type, message = result.stdout.strip().splitlines()
    assert auto_type == "FaceDetector"
    assert "detector backend 'mediapipe' needs the mediapipe package" in message
    assert MEDIAPIPE_INSTALL in message and "detector.backend to 'tflite'" in message


# --- MediaPipe Tasks backend (skipped where mediapipe is not installed) -------------------------


@pytest.fixture(scope="module")
def _mediapipe() -> None:
    if not mediapipe_available():
        pytest.skip(f"mediapipe not importable (install: {MEDIAPIPE_INSTALL})")


@pytest.fixture(scope="module", params=RANGES)
def backends(
    request: pytest.FixtureRequest, _mediapipe: None
) -> Iterator[tuple[FaceDetector, MediaPipeFaceDetector]]:
    options = DetectorOptions(model_range=request.param)
    with MediaPipeFaceDetector(
        DetectorOptions(model_range=request.param, backend="mediapipe")
    ) as mp_detector:
        yield FaceDetector(options), mp_detector


def _pair(astronaut: np.ndarray, hopper: np.ndarray) -> np.ndarray:
    pair = np.zeros((300, 600, 3), np.uint8)
    pair[:, :300] = astronaut[0:300, 80:380]
    pair[:, 300:556] = cv2.resize(hopper, (256, 300), interpolation=cv2.INTER_AREA)
    return pair


def _canvas(astronaut: np.ndarray, long_side: int, wide: bool) -> np.ndarray:
    canvas = np.zeros((512, long_side, 3) if wide else (long_side, 512, 3), np.uint8)
    dx, dy = (50, 0) if wide else (0, 70)
    canvas[dy:dy + 512, dx:dx + 512] = astronaut
    return canvas


def _assert_same_faces(a: list[Detection], b: list[Detection]) -> None:
    """Same faces, left to right, with boxes and keypoints close in units of face width.

    Tolerances from measurement: the backends run the same model but their inputs differ
    slightly (MediaPipe's own resampling), which moves keypoints by a median 1-2% of the
    face width and up to ~9% for the smallest short-range faces here; Tasks' boxes are also
    rounded to whole pixels.
    """
    assert len(a) == len(b) >= 1
    for d, e in zip(sorted(a, key=lambda f: f.box[0]), sorted(b, key=lambda f: f.box[0])):
        width = d.width
        assert np.abs(d.box - e.box).max() < 0.1 * width
        kp_error = np.linalg.norm(d.keypoints - e.keypoints, axis=1) / width
        assert kp_error[:4].max() < 0.1, kp_error  # eyes, nose, mouth
        assert kp_error.mean() < 0.08, kp_error
        assert abs(d.score - e.score) < 0.1


def test_backends_find_the_same_faces(
    backends: tuple[FaceDetector, MediaPipeFaceDetector], astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    tflite, mp_detector = backends
    long_side = 640 if tflite.options.model_range == "short" else 768
    images = {
        "astronaut": astronaut,
        "hopper": hopper,
        "pair": _pair(astronaut, hopper),
        "wide canvas": _canvas(astronaut, long_side, wide=True),
        "tall canvas": _canvas(astronaut, long_side, wide=False),
    }
    for name, image in images.items():
        a, b = tflite.detect(image), mp_detector.detect(image)
        assert len(b) == (2 if name == "pair" else 1), name
        _assert_same_faces(a, b)
        assert [f.score for f in b] == sorted((f.score for f in b), reverse=True)
        assert all(f.box.dtype == np.float32 and f.keypoints.shape == (6, 2) for f in b)


def test_mediapipe_keypoint_order(
    backends: tuple[FaceDetector, MediaPipeFaceDetector], astronaut: np.ndarray
) -> None:
    kp = backends[1].detect(astronaut)[0].keypoints
    assert kp[KP["right_eye"], 0] < kp[KP["left_eye"], 0]
    assert (
        max(kp[KP["right_eye"], 1], kp[KP["left_eye"], 1])
        < kp[KP["nose_tip"], 1]
        < kp[KP["mouth_center"], 1]
    )


def test_mediapipe_options_and_inputs(
    _mediapipe: None, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    pair = _pair(astronaut, hopper)
    with create_detector(DetectorOptions(backend="mediapipe", max_faces=1)) as one:
        assert isinstance(one, MediaPipeFaceDetector) and one.backend == "mediapipe"
        faces = one.detect(pair)
        assert len(faces) == 1
    with create_detector(DetectorOptions(backend="mediapipe", min_score=0.99)) as strict:
        assert strict.detect(pair) == []
    with create_detector(DetectorOptions(backend="auto")) as auto:
        assert isinstance(auto, MediaPipeFaceDetector)
        assert auto.detect(pair)[0].score == pytest.approx(faces[0].score)
        assert auto.detect(np.full((480, 640, 3), 128, np.uint8)) == []
        reference = auto.detect(astronaut)[0]
        gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
        for image in (gray, gray[:, :, None], cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA)):
            found = auto.detect(image)
            assert (
                len(found) == 1
                and np.abs(found[0].box - reference.box).max() < 0.1 * reference.width
            )
        for bad in (
            np.zeros((64, 64, 3), np.float32),
            np.zeros((64, 64, 2), np.uint8),
            [[0, 0, 0]],
        ):
            with pytest.raises(ValueError):
                auto.detect(bad)  # type: ignore[arg-type]


def test_mediapipe_close(_mediapipe: None, astronaut: np.ndarray, tmp_path: Path) -> None:
    detector = MediaPipeFaceDetector(DetectorOptions(backend="mediapipe"))
    assert detector.detect(astronaut)
    detector.close()
    detector.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        detector.detect(astronaut)
    with pytest.raises(ValueError, match="not found"):
        MediaPipeFaceDetector(
            DetectorOptions(backend="mediapipe", model_path=tmp_path / "missing.tflite")
        )


def test_mediapipe_detector_left_open_exits_cleanly(_mediapipe: None) -> None:
    code = (
        "import numpy as np\n"
        "from face_recog_ros.core.detection import DetectorOptions, create_detector\n"
        "detector = create_detector(DetectorOptions(backend='mediapipe'))\n"
        "detector.detect(np.zeros((48, 64, 3), np.uint8))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    ), result.stderr
