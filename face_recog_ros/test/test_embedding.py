"""Embedder specs and the bundled dlib_resnet_v1 embedders, on real models and real faces."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from face_recog_ros.io import samples
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.runtime import ModelError, load_interpreter, models_dir

MODEL_IDS = ("dlib_resnet_v1_float32", "dlib_resnet_v1_int8")
# Square boxes (x1, y1, x2, y2) that dlib's get_face_chip(size=150, padding=0.25) cuts from
# each photo (its small in-plane rotation ignored): close to the geometry the model expects,
# without needing dlib or the alignment module here.
CHIP_BOXES = {"astronaut": (165, 66, 285, 186), "grace_hopper": (154, 118, 387, 351)}


def spec_path(model_id: str) -> Path:
    return models_dir() / f"{model_id}.yaml"


def chip(name: str) -> np.ndarray:
    x1, y1, x2, y2 = CHIP_BOXES[name]
    return cv2.resize(samples.photo(name)[y1:y2, x1:x2], (150, 150), interpolation=cv2.INTER_AREA)


def transformed(img: np.ndarray) -> np.ndarray:
    """Same face, different picture: mirrored, rotated 5 degrees, scaled, darker, noisy."""
    m = cv2.getRotationMatrix2D((75, 75), 5, 1.05)
    out = cv2.warpAffine(img[:, ::-1], m, (150, 150), borderMode=cv2.BORDER_REFLECT).astype(
        np.float32
    )
    noise = np.random.default_rng(0).normal(0, 4, out.shape)
    return np.clip(out * 0.75 + 10 + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=MODEL_IDS)
def embedder(request) -> Embedder:
    return Embedder(EmbedderSpec.from_yaml(spec_path(request.param)), num_threads=2)


def write_spec(tmp_path: Path, **changes) -> Path:
    """A copy of the float32 spec with some keys changed (None deletes a key)."""
    data = yaml.safe_load(spec_path(MODEL_IDS[0]).read_text())
    data["file"] = str(models_dir() / data["file"])
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- specs ----------------------------------------------------------------------------


def test_bundled_specs_load_and_share_an_embedding_space() -> None:
    specs = [EmbedderSpec.from_yaml(spec_path(m)) for m in MODEL_IDS]
    assert [s.id for s in specs] == list(MODEL_IDS)
    assert {s.embedding_space for s in specs} == {"dlib_resnet_v1"}
    for s in specs:
        assert s.file.is_file() and s.file.parent == models_dir().resolve()
        assert s.input_size == (150, 150) and s.output_dim == 128 and s.color_order == "rgb"
        assert s.metric == "cosine" and -1 <= s.threshold <= 1


def test_missing_spec_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ModelError, match="nope.yaml"):
        EmbedderSpec.from_yaml(missing)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": None}, "missing required key 'id'"),
        ({"mean": [1.0, 2.0]}, "'mean' must have 3 values"),
        ({"std": [256, 0, 256]}, "std values must be > 0"),
        ({"color_order": "yuv"}, "color_order must be one of"),
        ({"metric": "euclidean"}, "metric must be one of"),
        ({"threshold": 3.0}, "threshold must be in"),
        ({"input_size": "big"}, "'input_size' must be a list"),
    ],
)
def test_invalid_spec_values_are_explained(tmp_path: Path, changes: dict, message: str) -> None:
    path = write_spec(tmp_path, **changes)
    with pytest.raises(ModelError, match=message) as err:
        EmbedderSpec.from_yaml(path)
    assert str(path) in str(err.value)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    spec = EmbedderSpec.from_yaml(write_spec(tmp_path, file="gone.tflite"))
    with pytest.raises(ModelError, match="model file not found: .*gone.tflite"):
        Embedder(spec)


def test_corrupt_model_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(spec_path(MODEL_IDS[1]).with_suffix(".tflite").read_bytes()[:4096])
    with pytest.raises(ModelError, match="broken.tflite"):
        Embedder(EmbedderSpec.from_yaml(write_spec(tmp_path, file=str(broken))))


def test_wrong_output_dim_names_expected_and_actual(tmp_path: Path) -> None:
    spec = EmbedderSpec.from_yaml(write_spec(tmp_path, output_dim=64))
    with pytest.raises(ModelError) as err:
        Embedder(spec)
    text = str(err.value)
    assert "dlib_resnet_v1_float32.tflite" in text and "[N, 64]" in text and "128" in text


def test_wrong_input_size_names_expected_and_actual(tmp_path: Path) -> None:
    spec = EmbedderSpec.from_yaml(write_spec(tmp_path, input_size=[112, 112],
                                             face_chip={"size": 112, "padding": 0.25}))
    with pytest.raises(
        ModelError, match=r"input shape \[-1, 150, 150, 3\].*expected \[N, 112, 112, 3\]"
    ):
        Embedder(spec)


def test_spec_pointing_at_a_detector_model_is_rejected(tmp_path: Path) -> None:
    detector = models_dir() / "face_detection_short_range.tflite"
    if not detector.is_file():
        pytest.skip("BlazeFace model not bundled yet")
    with pytest.raises(ModelError, match="face_detection_short_range.tflite"):
        Embedder(EmbedderSpec.from_yaml(write_spec(tmp_path, file=str(detector))))


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_falls_back_to_tensorflow_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither ai-edge-litert nor tflite-runtime, TensorFlow's interpreter is used."""
    pytest.importorskip("tensorflow")
    chips = np.stack([chip("astronaut"), chip("grace_hopper")])
    spec = EmbedderSpec.from_yaml(spec_path(MODEL_IDS[1]))
    expected = Embedder(spec).embed(chips)
    for name in (
        "ai_edge_litert",
        "ai_edge_litert.interpreter",
        "tflite_runtime",
        "tflite_runtime.interpreter",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    embedder = Embedder(spec)
    assert type(embedder._interp).__module__.startswith("tensorflow")
    np.testing.assert_allclose(embedder.embed(chips), expected, atol=2e-2)


def test_load_interpreter_rejects_bad_thread_count() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        load_interpreter(spec_path(MODEL_IDS[0]).with_suffix(".tflite"), 0)


# --- embeddings -----------------------------------------------------------------------


def test_ids_and_dimensions(embedder: Embedder) -> None:
    assert embedder.embedder_id == embedder.spec.id
    assert embedder.embedding_space == "dlib_resnet_v1"
    assert embedder.output_dim == 128


def test_embeddings_are_unit_norm_float32(embedder: Embedder) -> None:
    emb = embedder.embed(np.stack([chip("astronaut"), chip("grace_hopper")]))
    assert emb.shape == (2, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_same_person_is_closer_than_different_people(embedder: Embedder) -> None:
    a, a2, g = embedder.embed(
        np.stack([chip("astronaut"), transformed(chip("astronaut")), chip("grace_hopper")])
    )
    same, different = float(a @ a2), float(a @ g)
    assert same > different + 0.05, f"same {same:.3f} vs different {different:.3f}"
    assert same >= embedder.spec.threshold > different


def test_batch_equals_single_calls(embedder: Embedder) -> None:
    rng = np.random.default_rng(1)
    faces = [chip("astronaut"), chip("grace_hopper"), transformed(chip("grace_hopper"))]
    batch = np.stack(faces + [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)])
    together = embedder.embed(batch)
    one_by_one = np.concatenate([embedder.embed(c[None]) for c in batch])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(
        embedder.embed(batch[:2]), together[:2], atol=1e-5
    )  # batch size changes back


def test_float_and_int8_agree() -> None:
    faces = np.stack([chip("astronaut"), chip("grace_hopper"), transformed(chip("astronaut"))])
    f, q = (Embedder(EmbedderSpec.from_yaml(spec_path(m))).embed(faces) for m in MODEL_IDS)
    assert np.min(np.sum(f * q, axis=1)) >= 0.98


def test_empty_and_single_chip_inputs(embedder: Embedder) -> None:
    assert embedder.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    single = embedder.embed(chip("astronaut"))
    assert single.shape == (1, 128)


def test_wrong_chip_shape_is_rejected(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match=r"\(N, 150, 150, 3\)"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.uint8))
