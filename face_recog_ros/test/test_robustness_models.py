"""Missing, corrupt or mismatched models and specs: start-up fails with one clear error.

A robot builder who copies a model badly, points the config at the wrong file or edits a spec
by hand must get one ValueError (ModelError) naming the file and what was expected, not a
TFLite stack trace, a TypeError from deep inside, or a recogniser that silently computes NaN.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from conftest import load_tool

from face_recog_ros import FaceRecognizer, RecognizerConfig
from face_recog_ros.cli import main
from face_recog_ros.core.detection import DetectorOptions, FaceDetector
from face_recog_ros.gallery.model import Gallery
from face_recog_ros.io import samples
from face_recog_ros.gallery.store import save_gallery
from face_recog_ros.core.runtime import ModelError, models_dir

SPEC = "dlib_resnet_v1_int8"
MODELS = models_dir()


def base_spec() -> dict[str, Any]:
    return yaml.safe_load((MODELS / f"{SPEC}.yaml").read_text())


def start(spec_path: Path, gallery: str = "", alignment: str = "landmarks",
          allow_unverified: bool = False) -> FaceRecognizer:
    config = RecognizerConfig()
    config.embedder.model = str(spec_path)
    config.embedder.allow_unverified_model = allow_unverified
    config.gallery.path = gallery
    config.alignment.method = alignment
    return FaceRecognizer(config)


def write_case(tmp_path: Path, *, model: bytes | None = None, set_: dict | None = None,
               drop: tuple[str, ...] = (), raw: str | None = None) -> tuple[Path, Path]:
    """A spec YAML (the bundled one with changes) and its model file in tmp_path."""
    spec = base_spec()
    spec["file"] = "model.tflite"
    spec.update(set_ or {})
    for key in drop:
        del spec[key]
    model_path = tmp_path / "model.tflite"
    if model is not None:
        model_path.write_bytes(model)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(raw if raw is not None else yaml.safe_dump(spec))
    return spec_path, model_path


@pytest.fixture(scope="module")
def embedder_bytes() -> bytes:
    return (MODELS / f"{SPEC}.tflite").read_bytes()


def expect_one_clear_error(spec_path: Path, names: Path, *expected: str,
                           alignment: str = "landmarks", allow_unverified: bool = False
                           ) -> ValueError:
    with pytest.raises(ValueError) as info:
        start(spec_path, alignment=alignment, allow_unverified=allow_unverified)
    message = str(info.value)
    assert str(names) in message, f"message does not name {names}: {message}"
    for words in expected:
        assert words in message, f"{words!r} not in: {message}"
    return info.value


# ------------------------------------------------------------------ model files
MODEL_FILES = {
    "truncated_half": lambda m: m[: len(m) // 2],
    "truncated_header": lambda m: m[:100],
    "empty": lambda m: b"",
    "random_bytes": lambda m: np.random.default_rng(3).bytes(200_000),
    "text_file": lambda m: b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize "
                           b"5724840\n",
    "bit_flips_in_header": lambda m: bytes([b ^ 0xFF for b in m[:64]]) + m[64:],
}


@pytest.mark.parametrize("label", MODEL_FILES)
def test_corrupt_embedder_model(tmp_path: Path, embedder_bytes: bytes, label: str) -> None:
    spec, model = write_case(tmp_path, model=MODEL_FILES[label](embedder_bytes))
    err = expect_one_clear_error(spec, model, "does not match the sha256 in", str(spec))
    assert isinstance(err, ModelError)
    err = expect_one_clear_error(spec, model, "cannot load TFLite model", allow_unverified=True)
    assert isinstance(err, ModelError)


def test_missing_embedder_model(tmp_path: Path) -> None:
    spec, model = write_case(tmp_path)
    assert isinstance(expect_one_clear_error(spec, model, "model file not found"), ModelError)


def test_embedder_model_is_a_directory(tmp_path: Path) -> None:
    spec, model = write_case(tmp_path)
    model.mkdir()
    assert isinstance(expect_one_clear_error(spec, model, "model file not found"), ModelError)


def test_detector_model_given_as_embedder(tmp_path: Path) -> None:
    detector = (MODELS / "face_detection_short_range.tflite").read_bytes()
    spec, model = write_case(tmp_path, model=detector)
    expect_one_clear_error(spec, model, "does not match the sha256 in")
    expect_one_clear_error(
        spec, model, "expected an embedding model with 1 input and 1 output", str(spec),
        allow_unverified=True
    )


@pytest.mark.parametrize("change, words", [
    ({"output_dim": 64}, "expected [N, 64]"),
    ({"input_size": [112, 112], "face_chip": {"size": 112, "padding": 0.25}},
     "expected [N, 112, 112, 3]"),
], ids=["output_dim_64", "input_size_112"])
def test_model_shapes_disagree_with_spec(
    tmp_path: Path, embedder_bytes: bytes, change: dict, words: str
) -> None:
    spec, model = write_case(tmp_path, model=embedder_bytes, set_=change)
    expect_one_clear_error(spec, model, words, str(spec), "does not match spec")


# ------------------------------------------------------------------ spec YAMLs
@pytest.mark.parametrize(
    "key", ["id", "file", "input_size", "mean", "std", "output_dim", "threshold"]
)
def test_spec_missing_key(tmp_path: Path, embedder_bytes: bytes, key: str) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, drop=(key,))
    expect_one_clear_error(spec, spec, f"missing required key '{key}'")


def test_spec_without_template(tmp_path: Path, embedder_bytes: bytes) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, drop=("template",))
    expect_one_clear_error(spec, spec, "no alignment template", alignment="keypoints")
    assert start(spec).aligner.method == "landmarks"  # landmark alignment does not need it


def test_spec_without_face_chip(tmp_path: Path, embedder_bytes: bytes) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, drop=("face_chip",))
    expect_one_clear_error(spec, spec, "needs a 'face_chip' block", "'keypoints'")
    assert start(spec, alignment="keypoints").aligner.method == "keypoints"


@pytest.mark.parametrize("face_chip, words", [
    ([150, 0.25], "face_chip must be a mapping"),
    ({"padding": 0.25}, "missing required key 'size'"),
    ({"size": 112, "padding": 0.25}, "face_chip.size 112 must equal input_size [150, 150]"),
    ({"size": 150, "padding": -1}, "face_chip.padding must be in [0, 2]"),
    ({"size": 150, "padding": "wide"}, "'face_chip.padding' must be a finite number"),
])
def test_spec_bad_face_chip(tmp_path: Path, embedder_bytes: bytes, face_chip: Any,
                            words: str) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_={"face_chip": face_chip})
    assert isinstance(expect_one_clear_error(spec, spec, words), ModelError)


def test_missing_or_broken_landmark_model(tmp_path: Path, embedder_bytes: bytes) -> None:
    missing = {"size": 150, "padding": 0.25, "landmark_model": "nowhere.yaml"}
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_={"face_chip": missing})
    error = expect_one_clear_error(spec, tmp_path / "nowhere.yaml", "not readable")
    assert isinstance(error, ModelError)
    shutil.copy(MODELS / "dlib_shape_predictor_5.yaml", tmp_path / "lm.yaml")
    text = (tmp_path / "lm.yaml").read_text().replace("dlib_shape_predictor_5.npz", "lm.npz")
    (tmp_path / "lm.yaml").write_text(text)
    (tmp_path / "lm.npz").write_bytes(b"PK\x03\x04 not really a zip")
    broken = {"size": 150, "padding": 0.25, "landmark_model": "lm.yaml"}
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_={"face_chip": broken})
    error = expect_one_clear_error(spec, tmp_path / "lm.npz", "does not match the sha256 in")
    assert isinstance(error, ModelError)
    error = expect_one_clear_error(spec, tmp_path / "lm.npz", "not a converted shape predictor",
                                   allow_unverified=True)
    assert isinstance(error, ModelError)


# ------------------------------------------------------------------ integrity (sha256)
def flipped_weights(model: bytes, n: int = 20_000) -> bytes:
    """n bytes inverted in the middle of the file: the weights, not the header. Such a model
    still loads and runs, and gives other similarities."""
    middle = len(model) // 2
    return model[:middle] + bytes(b ^ 0xFF for b in model[middle:middle + n]) + \
        model[middle + n:]


def test_flipped_weights_are_refused_unless_allowed(tmp_path: Path,
                                                    embedder_bytes: bytes) -> None:
    spec, model = write_case(tmp_path, model=flipped_weights(embedder_bytes))
    error = expect_one_clear_error(spec, model, "does not match the sha256 in", str(spec),
                                   "damaged", "--allow-unverified-model")
    assert isinstance(error, ModelError)
    recognizer = start(spec, allow_unverified=True)  # the model itself loads and runs
    assert any("loaded anyway" in w for w in recognizer.model_warnings)


def test_spec_without_digest_needs_allow(tmp_path: Path, embedder_bytes: bytes) -> None:
    spec, model = write_case(tmp_path, model=embedder_bytes, drop=("sha256",))
    digest = hashlib.sha256(embedder_bytes).hexdigest()
    expect_one_clear_error(spec, model, "records no sha256", f"sha256: {digest}")
    assert start(spec, allow_unverified=True).model_warnings
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_={"sha256": digest.upper()})
    assert start(spec).model_warnings == []  # the digest it printed is accepted


@pytest.mark.parametrize("value", ["abc", 123, "g" * 64])
def test_spec_bad_digest(tmp_path: Path, embedder_bytes: bytes, value: Any) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_={"sha256": value})
    expect_one_clear_error(spec, spec, "'sha256' must be 64 hex digits")


def test_bundled_models_verify() -> None:
    assert start(MODELS / f"{SPEC}.yaml").model_warnings == []


def test_cli_allow_unverified_model(tmp_path: Path, embedder_bytes: bytes, capsys) -> None:
    spec, _ = write_case(tmp_path, model=flipped_weights(embedder_bytes))
    photo = tmp_path / "grace.png"
    cv2.imwrite(str(photo), cv2.cvtColor(samples.photo("grace_hopper"), cv2.COLOR_RGB2BGR))
    args = ["identify", str(photo), "--model", str(spec), "--gallery", str(tmp_path / "g.npz")]
    assert main(args) == 2
    assert "does not match the sha256" in capsys.readouterr().err
    assert main([*args, "--allow-unverified-model"]) == 0
    assert "loaded anyway (embedder.allow_unverified_model is set)" in capsys.readouterr().err


def test_node_refuses_unverified_model_unless_allowed(tmp_path: Path,
                                                      embedder_bytes: bytes) -> None:
    soak_node = load_tool("soak_node")
    spec, _ = write_case(tmp_path, model=flipped_weights(embedder_bytes))
    domain = soak_node.run_domain()
    node = soak_node.NodeProcess(tmp_path, tmp_path / "g.npz", domain,
                                 **{"embedder.model": str(spec)})
    assert node.process.wait(timeout=60) == 1
    assert "does not match the sha256" in node.log() and "Traceback" not in node.log()
    node.stop()
    node = soak_node.NodeProcess(tmp_path, tmp_path / "g.npz", domain,
                                 **{"embedder.model": str(spec),
                                    "embedder.allow_unverified_model": "true"})
    try:
        deadline = time.monotonic() + 60
        while "]: ready: " not in node.log() and node.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "]: ready: " in node.log(), node.log()
        assert "loaded anyway (embedder.allow_unverified_model is set)" in node.log()
    finally:
        node.stop()


BAD_VALUES = [
    ({"output_dim": "big"}, "'output_dim' must be an integer"),
    ({"output_dim": [1, 2]}, "'output_dim' must be an integer"),
    ({"output_dim": 128.7}, "'output_dim' must be an integer"),
    ({"output_dim": True}, "'output_dim' must be an integer"),
    ({"output_dim": 0}, "must be positive"),
    ({"threshold": "high"}, "'threshold' must be a finite number"),
    ({"threshold": float("nan")}, "'threshold' must be a finite number"),
    ({"threshold": 1.5}, "must be in [-1, 1]"),
    ({"input_size": "150"}, "'input_size' must be a list of 2 numbers"),
    ({"input_size": [150]}, "'input_size' must have 2 values"),
    ({"input_size": [150.5, 150]}, "'input_size' must be an integer"),
    ({"input_size": [-150, 150]}, "must be positive"),
    ({"mean": 1}, "'mean' must be a list of 3 numbers"),
    ({"mean": ["a", "b", "c"]}, "'mean' must be a finite number"),
    ({"std": [float("nan")] * 3}, "'std' must be a finite number"),
    ({"std": [0, 1, 1]}, "std values must be > 0"),
    ({"color_order": "hsv"}, "color_order must be one of"),
    ({"metric": "l2"}, "metric must be one of"),
    ({"template": [1, 2]}, "template must map keypoint names"),
    ({"template": {"right_eye": [1, 2]}}, "lacks keypoint 'left_eye'"),
    (
        {"template": {k: "x" for k in ("right_eye", "left_eye", "nose_tip", "mouth_center")}},
        "could not convert",
    ),
    (
        {
            "template": {
                k: [1, 2, 3] for k in ("right_eye", "left_eye", "nose_tip", "mouth_center")
            }
        },
        "four finite [x, y] pairs",
    ),
]


@pytest.mark.parametrize("change, words", BAD_VALUES,
                         ids=[f"{next(iter(c))}-{i}" for i, (c, _) in enumerate(BAD_VALUES)])
def test_spec_bad_values(tmp_path: Path, embedder_bytes: bytes, change: dict, words: str) -> None:
    spec, _ = write_case(tmp_path, model=embedder_bytes, set_=change)
    err = expect_one_clear_error(spec, spec, words)
    assert isinstance(err, ModelError) or "alignment template" in str(err)


@pytest.mark.parametrize("raw, words", [
    ("- a list\n- not a mapping\n", "expected a mapping"),
    ("", "expected a mapping"),
    ("id: [unclosed\n", "invalid YAML"),
    ("\x00\x01binary", "invalid YAML"),
], ids=["list", "empty", "unclosed", "binary"])
def test_spec_not_a_spec(tmp_path: Path, raw: str, words: str) -> None:
    spec, _ = write_case(tmp_path, raw=raw)
    assert isinstance(expect_one_clear_error(spec, spec, words), ModelError)


def test_spec_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert isinstance(
        expect_one_clear_error(missing, missing, "embedder spec not found"), ModelError
    )


# ------------------------------------------------------------------ detector models
@pytest.mark.parametrize("label", MODEL_FILES)
def test_corrupt_detector_model(tmp_path: Path, label: str) -> None:
    model = tmp_path / "detector.tflite"
    model.write_bytes(
        MODEL_FILES[label]((MODELS / "face_detection_short_range.tflite").read_bytes())
    )
    with pytest.raises(ModelError, match="cannot load TFLite model") as info:
        FaceDetector(DetectorOptions(model_path=model))
    assert str(model) in str(info.value)


@pytest.mark.parametrize("model_range, other, words", [
    ("short", "face_detection_full_range.tflite", "expected a float32 (1, 128, 128, 3) input"),
    ("full", "face_detection_short_range.tflite", "expected a float32 (1, 192, 192, 3) input"),
    ("short", f"{SPEC}.tflite", "expected a float32 (1, 128, 128, 3) input"),
], ids=["full_as_short", "short_as_full", "embedder_as_detector"])
def test_wrong_detector_model(tmp_path: Path, model_range: str, other: str, words: str) -> None:
    model = tmp_path / other
    shutil.copy(MODELS / other, model)
    with pytest.raises(ModelError) as info:
        FaceDetector(DetectorOptions(model_range=model_range, model_path=model))
    assert str(model) in str(info.value) and words in str(info.value)


def test_missing_detector_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        FaceDetector(DetectorOptions(model_path=tmp_path / "gone.tflite"))


# ------------------------------------------------------------------ gallery of another model
def test_gallery_of_another_model_is_moved_aside_at_start_up(tmp_path: Path) -> None:
    """Switching the embedder must not mix embedding spaces nor destroy the old enrolments."""
    path = tmp_path / "gallery.npz"
    other = Gallery("facenet_512", 512)
    other.add("Alice", np.ones((2, 512)))
    save_gallery(other, path)
    before = path.read_bytes()
    recognizer = start(MODELS / f"{SPEC}.yaml", gallery=str(path))
    assert len(recognizer.gallery) == 0
    warning = recognizer.gallery_warning
    assert warning and "facenet_512" in warning and "dlib_resnet_v1" in warning
    (aside,) = tmp_path.glob("gallery.npz.bad-*")
    assert aside.read_bytes() == before and str(aside) in warning
    assert not path.exists()  # the empty gallery is only written on the first change
