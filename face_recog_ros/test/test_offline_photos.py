"""`face-recog group-photo`, `lookalike`, `cluster` / `enroll-cluster` and `map` with the real
models.

Photos are composed from the two public-domain heads (io/samples.py) into tmp_path; the
faces-dev check at the end runs only where that folder exists and never copies from it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_recog_ros.io import samples
from face_recog_ros.cli import main
from face_recog_ros.offline.clustering import cluster_embeddings, collect_faces, score_clusters
from face_recog_ros.config import RecognizerConfig
from face_recog_ros.core.recognizer import FaceRecognizer

EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]
FACES_DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces-dev"
# (head height, light gain, mirrored, centre x): variants one person's photos are taken in.
VARIANTS = [
    (200, 1.0, False, 320),
    (240, 1.1, False, 380),
    (220, 0.9, True, 300),
    (180, 1.0, True, 350),
]


def write(path: Path, rgb: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return str(path)


def composite(*heads: tuple[str, float]) -> np.ndarray:
    """Heads (person key, centre x) side by side, 220 px tall, on the backdrop."""
    frame = samples.background().copy()
    for key, x in heads:
        samples.place(frame, key, (x, 240), 220)
    return frame


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Path:
    """DIR/<person>/<image>: each person's photo, for enrolment and the --photos option."""
    root = tmp_path_factory.mktemp("people")
    for key, name in samples.PEOPLE.items():
        write(root / name / "1.png", samples.photo(key))
    return root


@pytest.fixture(scope="module")
def gallery(people, tmp_path_factory) -> list[str]:
    args = ["--gallery", str(tmp_path_factory.mktemp("gallery") / "g.npz")]
    assert main(["enroll-dir", str(people), *args]) == 0
    return args


# --- group photo ---------------------------------------------------------------------------------

def test_each_once_names_a_person_on_one_face_only(tmp_path, gallery, capsys):
    heads = composite(("astronaut", 110), ("grace_hopper", 320), ("astronaut", 530))
    photo = write(tmp_path / "group.jpg", heads)
    assert main(["group-photo", photo, "--json", *gallery]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert [f["label"] for f in plain["faces"]] == [EILEEN, GRACE, EILEEN]  # left to right
    out = tmp_path / "tagged.jpg"
    assert main(["group-photo", photo, "--each-once", "--json", "--out", str(out), *gallery]) == 0
    once = json.loads(capsys.readouterr().out)
    labels = [f["label"] for f in once["faces"]]
    assert labels.count(EILEEN) == 1 and labels.count(GRACE) == 1 and labels.count("unknown") == 1
    assert once["not_found"] == []
    assert cv2.imread(str(out)).shape == (480, 640, 3)


def test_group_photo_reports_who_was_not_found(tmp_path, gallery, capsys):
    photo = write(tmp_path / "two.jpg", composite(("astronaut", 170), ("astronaut", 470)))
    assert main(["group-photo", photo, "--each-once", *gallery]) == 0
    out = capsys.readouterr().out
    assert out.count(EILEEN) == 1 and f"not found: {GRACE}" in out


# --- look-alike ----------------------------------------------------------------------------------

def test_lookalike_ranks_the_enrolled_people(tmp_path, gallery, people, capsys):
    query = composite(("grace_hopper", 320))
    query = np.clip(query.astype(np.float32) * 0.85, 0, 255).astype(np.uint8)  # another light
    photo = write(tmp_path / "query.jpg", query)
    assert main(["lookalike", photo, "--top", "2", "--json", *gallery]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in ranked] == [GRACE, EILEEN]
    assert ranked[0]["similarity"] > ranked[1]["similarity"]
    out = tmp_path / "lookalike.png"
    assert (
        main(
            [
                "lookalike",
                photo,
                "--top",
                "5",
                "--out",
                str(out),
                "--photos",
                str(people),
                *gallery,
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.index(GRACE) < printed.index(EILEEN) and "same person" in printed
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] > picture.shape[0]  # face | ranked list


def test_lookalike_needs_a_face_and_a_gallery(tmp_path, gallery, capsys):
    blank = write(tmp_path / "blank.png", samples.background())
    assert main(["lookalike", blank, *gallery]) == 2
    assert "no face found" in capsys.readouterr().err
    face = write(tmp_path / "face.png", samples.photo("astronaut"))
    assert main(["lookalike", face, "--gallery", str(tmp_path / "empty.npz")]) == 2
    assert "gallery is empty" in capsys.readouterr().err
    assert main(["lookalike", str(tmp_path / "missing.jpg"), *gallery]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["lookalike", face, "--out", str(tmp_path / "look.xyz"), *gallery]) == 2
    assert "cannot write image" in capsys.readouterr().err


# --- clustering ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def album(tmp_path_factory) -> Path:
    """Four photos of each person in different sizes, light and mirroring, plus a photo of both."""
    root = tmp_path_factory.mktemp("album")
    for i, (height, gain, mirror, x) in enumerate(VARIANTS):
        for key, name in samples.PEOPLE.items():
            frame = samples.background().copy()
            samples.place(frame, key, (x, 240), height, gain=gain, mirror=mirror)
            write(root / name / f"{i}.jpg", frame)
    write(root / "group" / "both.jpg", composite(("astronaut", 170), ("grace_hopper", 470)))
    return root


def test_cluster_groups_an_album_by_person_and_a_cluster_can_be_enrolled(tmp_path, album, capsys):
    out = tmp_path / "clusters"
    assert main(["cluster", str(album), "--out", str(out), "--evaluate", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "10 faces from 9 photos in 2 clusters" in printed
    assert "2 clusters for 2 identities, purity 100.0%, inverse purity 100.0%" in printed
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["cluster_1", "cluster_2"]
    assert sorted(len(list((out / f).iterdir())) for f in folders) == [
        5,
        5,
    ]  # each person's 4 + the group's
    html = (out / "index.html").read_text()
    assert html.count("<img") == 10 and "group/both.jpg" in html
    # Enrol cluster_1 without re-detection, after removing one thumbnail the user judged wrong.
    thumbnails = sorted((out / "cluster_1").iterdir())
    thumbnails[0].unlink()
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    assert main(["enroll-cluster", str(out / "cluster_1"), "someone", *gallery]) == 0
    assert "enrolled someone: 4 new sample(s)" in capsys.readouterr().out
    # The enrolled cluster names one person's photos and not the other's.
    labels = []
    for name in (EILEEN, GRACE):
        assert main(["identify", str(album / name / "0.jpg"), "--json", *gallery]) == 0
        labels.append(json.loads(capsys.readouterr().out)[0]["label"])
    assert sorted(labels) == ["someone", "unknown"]


def test_cluster_reruns_into_its_own_output_but_not_into_other_folders(tmp_path, album, capsys):
    out = tmp_path / "clusters"
    assert main(["cluster", str(album), "--out", str(out), "--no-progress"]) == 0
    assert main(["cluster", str(album), "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cluster_1", "cluster_2"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main(["cluster", str(album), "--out", str(busy), "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (busy / "keep.txt").read_text() == "mine"


def test_cluster_and_enroll_cluster_bad_inputs(tmp_path, capsys):
    assert main(["cluster", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    write(empty / "blank.png", samples.background())
    assert main(["cluster", str(empty), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "no usable faces" in capsys.readouterr().err
    assert main(["enroll-cluster", str(empty), "x", "--gallery", str(tmp_path / "g.npz")]) == 2
    assert "clusters.npz" in capsys.readouterr().err


@pytest.mark.skipif(not FACES_DEV.is_dir(), reason="../shared/faces-dev is not here")
@pytest.mark.parametrize("source", ["lfw_subset_krasserm", "faceapi_bbt", "deepface_tests"])
def test_clustering_real_photos_is_pure(source):
    root = FACES_DEV / source
    if not root.is_dir():
        pytest.skip(f"{source} is not in faces-dev")
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    collection = collect_faces(recognizer, root, progress=False)
    score = score_clusters(
        collection, cluster_embeddings(collection.embeddings, recognizer.threshold)
    )
    assert score.purity >= 0.95 and score.inverse_purity >= 0.9
    assert score.identities <= score.clusters <= score.identities + 3


# --- map------------------------------------------------------------------------------------------

def test_map_of_a_folder_and_of_a_gallery(tmp_path, album, gallery, capsys):
    out = tmp_path / "map.png"
    assert main(["map", str(album), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 embeddings of 2 people" in printed and f"{EILEEN} ~ {GRACE}" in printed
    assert cv2.imread(str(out)) is not None
    out2 = tmp_path / "gallery_map.png"
    assert main(["map", "--out", str(out2), *gallery]) == 0
    assert "2 embeddings of 2 people" in capsys.readouterr().out
    assert cv2.imread(str(out2)) is not None


def test_map_bad_inputs(tmp_path, capsys):
    assert main(["map", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "m.png")]) == 2
    assert "no gallery file or photo folder" in capsys.readouterr().err
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a gallery")
    assert main(["map", str(broken), "--out", str(tmp_path / "m.png")]) == 2
    assert "cannot use gallery" in capsys.readouterr().err
    assert broken.read_bytes() == b"not a gallery"  # a read-only tool leaves the file alone
