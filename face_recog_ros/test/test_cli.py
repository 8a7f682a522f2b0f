"""`face-recog` as a user runs it: real photos written to disk, real models, real gallery file."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from face_recog_ros.io import samples
from face_recog_ros.cli import main


def write(path, rgb) -> str:
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return str(path)


@pytest.fixture()
def photos(tmp_path):
    root = tmp_path / "people"
    for key, name in samples.PEOPLE.items():
        (root / name).mkdir(parents=True)
        write(root / name / "1.png", samples.photo(key))
    frame = samples.background().copy()
    samples.place(frame, "astronaut", (200, 240), 250, gain=0.8)
    samples.place(frame, "grace_hopper", (460, 240), 250, mirror=True)
    return {"root": root, "pair": write(tmp_path / "pair.jpg", frame),
            "blank": write(tmp_path / "blank.png", np.zeros((100, 100, 3), np.uint8))}


def test_enroll_dir_identify_list_rename_forget(tmp_path, photos, capsys):
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    assert main(["enroll-dir", str(photos["root"]), *gallery]) == 0
    assert main(["list", *gallery]) == 0
    listing = capsys.readouterr().out
    assert "eileen_collins" in listing and "grace_hopper" in listing
    drawn = tmp_path / "drawn.jpg"
    assert main(["identify", photos["pair"], "--json", "--draw", str(drawn), *gallery]) == 0
    rows = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert sorted(r["label"] for r in rows) == ["eileen_collins", "grace_hopper"]
    assert cv2.imread(str(drawn)).shape == (480, 640, 3)
    assert main(["rename", "grace_hopper", "grace", *gallery]) == 0
    assert main(["forget", "eileen_collins", *gallery]) == 0
    capsys.readouterr()
    assert main(["identify", photos["pair"], *gallery]) == 0
    out = capsys.readouterr().out
    assert "grace (similarity" in out and "unknown" in out


def test_enroll_a_single_person_and_append(tmp_path, photos, capsys):
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    one = str(photos["root"] / "eileen_collins" / "1.png")
    assert main(["enroll", "eileen", one, *gallery]) == 0
    assert main(["enroll", "eileen", one, *gallery]) == 0
    assert "2 in total" in capsys.readouterr().out


def test_bad_inputs_give_clear_errors(tmp_path, photos, capsys):
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    assert main(["enroll", "x", photos["blank"], *gallery]) == 1
    assert "no face found" in capsys.readouterr().err
    assert main(["identify", str(tmp_path / "missing.jpg"), *gallery]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["enroll", "../etc/passwd", photos["pair"], *gallery]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["forget", "nobody", *gallery]) == 2
    assert "nobody" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_help_shows_percent_signs_once(capsys):
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "TAR@FAR=1%" in text and "%%" not in text and "unlabeled" in text


def test_gallery_enrolled_with_keypoint_alignment_still_works(tmp_path, photos, capsys):
    """Enrolled with the old alignment: loaded, recognised, and the user is told re-enrolling
    helps."""
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    assert main(["enroll-dir", str(photos["root"]), "--alignment", "keypoints", *gallery]) == 0
    capsys.readouterr()
    assert main(["identify", photos["pair"], "--json", *gallery]) == 0
    out = capsys.readouterr()
    assert sorted(r["label"] for r in json.loads(out.out)) == ["eileen_collins", "grace_hopper"]
    assert "2 enrolled people were aligned another way" in out.err and "re-enrolling" in out.err
    photo = str(photos["root"] / "grace_hopper" / "1.png")
    assert main(["enroll", "grace_hopper", photo, "--overwrite", *gallery]) == 0
    capsys.readouterr()
    assert main(["list", *gallery]) == 0
    err = capsys.readouterr().err
    assert "1 enrolled person was aligned another way" in err and "(eileen_collins)" in err


def test_alignment_fidelity_against_face_recognition(photos, capsys):
    pytest.importorskip("face_recognition")
    assert main(["evaluate", str(photos["root"]), "--alignment-fidelity"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("alignment fidelity (landmarks)")
    faces, mean, p5, low = lines[-1].split()[1:5]
    assert int(faces) == 2 and float(mean) >= 0.995 and float(p5) >= 0.99
