"""The accuracy protocol's arithmetic, on constructed scores, and on faces-dev when present."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from face_recog_ros.io.images import identity_folders
from face_recog_ros.offline.evaluation import verification_metrics

FACES_DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces-dev"


def test_verification_metrics_on_separable_and_overlapping_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.95])
    same = np.array([False, False, False, True, True, True])
    acc, threshold, tar = verification_metrics(scores, same)
    assert acc == 1.0 and 0.3 < threshold <= 0.8 and tar == 1.0
    same_overlap = np.array([False, True, False, False, True, True])
    acc, _, _ = verification_metrics(scores, same_overlap)
    assert acc == pytest.approx(5 / 6)


def test_tar_at_far_uses_the_impostor_tail():
    rng = np.random.default_rng(0)
    impostors = rng.normal(0.5, 0.05, 1000)
    genuine = rng.normal(0.9, 0.05, 100)
    scores = np.r_[impostors, genuine]
    same = np.r_[np.zeros(1000, bool), np.ones(100, bool)]
    _, _, tar = verification_metrics(scores, same)
    cut = np.sort(impostors)[989]
    assert tar == pytest.approx((genuine > cut).mean())


def test_identity_folders_skip_groups_and_underscore_folders(tmp_path):
    for person in ("alice", "bob", "_extra", "group", "unlabeled", "unlabeled_test_photos"):
        (tmp_path / person).mkdir()
        (tmp_path / person / "1.jpg").write_bytes(b"x")
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    assert list(identity_folders(tmp_path)) == ["alice", "bob"]
    with pytest.raises(ValueError, match="no <person>/<image>"):
        identity_folders(tmp_path / "alice")


@pytest.mark.skipif(not FACES_DEV.is_dir(), reason="../shared/faces-dev not present")
def test_lfw_subset_rank1_and_verification():
    from face_recog_ros.cli import main
    from face_recog_ros.config import RecognizerConfig
    from face_recog_ros.offline.evaluation import cosine_similarity, evaluate
    from face_recog_ros.core.recognizer import FaceRecognizer

    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)

    def embed(rgb):
        try:
            return recognizer.embed_for_enrollment(rgb)
        except ValueError:
            return None

    result = evaluate(
        "ours", identity_folders(FACES_DEV / "lfw_subset_krasserm"), embed, cosine_similarity
    )
    assert result.detection_rate >= 0.98
    assert result.rank1 >= 0.97
    assert result.verification_accuracy >= 0.97
    assert main(["evaluate", str(FACES_DEV / "openface")]) == 0
