"""`face-recog label-video` and `screen-time` on clips written from the synthetic sequences.

Real models, a real gallery file, real .mp4 files in tmp_path (no committed media). The
sequences move the two public-domain heads over a backdrop with known ground truth.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from face_recog_ros.io import samples
from conftest import count_frames
from face_recog_ros.cli import main
from face_recog_ros.io.video import find_ffmpeg, has_audio

EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]
FPS = 30.0


def write_clip(path, frames, fps: float = FPS) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for frame in frames:
        writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def walk_clip(tmp_path_factory) -> str:
    """90 frames of the default walk-through: the astronaut all along, Grace Hopper from frame
    30."""
    return write_clip(
        tmp_path_factory.mktemp("clip") / "walk.mp4", samples.sequence(90, dropped=range(0))
    )


def test_label_video_writes_every_frame_and_a_detections_file_naming_the_people(
    tmp_path, gallery, walk_clip, capsys
):
    out, detections = tmp_path / "labelled.mp4", tmp_path / "faces.csv"
    assert (
        main(
            [
                "label-video",
                walk_clip,
                str(out),
                "--detections",
                str(detections),
                "--no-progress",
                *gallery,
            ]
        )
        == 0
    )
    assert count_frames(out) == count_frames(walk_clip) == 90
    rows = list(csv.DictReader(detections.open()))
    assert list(rows[0]) == [
        "frame",
        "time",
        "track_id",
        "label",
        "similarity",
        "x1",
        "y1",
        "x2",
        "y2",
    ]
    labels = {r["label"] for r in rows}
    assert {EILEEN, GRACE} <= labels
    eileen = [r for r in rows if r["label"] == EILEEN]
    assert (
        abs(float(eileen[0]["time"]) - int(eileen[0]["frame"]) / FPS) < 1e-3
    )  # the container's times
    assert len({r["track_id"] for r in eileen}) == 1  # one track all along
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "90 frames" in printed


def test_label_video_json_detections(tmp_path, gallery, walk_clip):
    detections = tmp_path / "faces.json"
    assert (
        main(
            [
                "label-video",
                walk_clip,
                str(tmp_path / "out.avi"),
                "--detections",
                str(detections),
                "--no-progress",
                *gallery,
            ]
        )
        == 0
    )
    rows = json.loads(detections.read_text())
    assert {"frame", "time", "track_id", "label", "similarity", "box"} == set(rows[0])
    assert len(rows[0]["box"]) == 4
    assert EILEEN in {r["label"] for r in rows}
    assert count_frames(tmp_path / "out.avi") == 90


def test_without_ffmpeg_the_output_is_said_to_be_silent(
    tmp_path, gallery, walk_clip, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg there
    assert (
        main(["label-video", walk_clip, str(tmp_path / "out.mp4"), "--no-progress", *gallery]) == 0
    )
    assert "SILENT" in capsys.readouterr().out
    assert count_frames(tmp_path / "out.mp4") == 90


@pytest.mark.skipif(find_ffmpeg() is None, reason="ffmpeg is not on PATH")
def test_the_audio_track_is_kept_when_ffmpeg_is_there(tmp_path, gallery, walk_clip, capsys):
    with_audio = tmp_path / "with_audio.mp4"
    subprocess.run([find_ffmpeg(), "-v", "error", "-i", walk_clip, "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", "-c:v", "copy", "-c:a", "aac", "-shortest",
                    str(with_audio)], check=True)
    out = tmp_path / "labelled.mp4"
    assert main(["label-video", str(with_audio), str(out), "--no-progress", *gallery]) == 0
    assert "audio copied" in capsys.readouterr().out
    assert has_audio(find_ffmpeg(), out)
    assert count_frames(out) == 90


# --- screen time -------------------------------------------------------------------------------

def astronaut_path(i: int):
    """In view from the first frame, away for frames 100-139 (1.33 s), back until the end."""
    return None if 100 <= i < 140 else (180 + 60 * np.sin(i / 30), 150, 200)


def grace_path(i: int):
    """In view for frames 40-159 (4 s)."""
    return (470, 330 + 20 * np.sin(i / 10), 180) if 40 <= i < 160 else None


def test_screen_time_matches_the_known_visible_durations(tmp_path, gallery, capsys):
    cast = (
        samples.Appearance("astronaut", astronaut_path),
        samples.Appearance("grace_hopper", grace_path),
    )
    frames = list(samples.sequence(200, cast=cast, occluded={}, dropped=range(0)))
    clip = write_clip(tmp_path / "scenes.mp4", frames)
    chart = tmp_path / "chart.png"
    assert (
        main(["screen-time", clip, "--json", "--chart", str(chart), "--no-progress", *gallery])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    people = {p["label"]: p for p in report["people"]}
    assert set(people) == {EILEEN, GRACE}
    for key, name in samples.PEOPLE.items():
        seen = [f.stamp for f in frames if key in f.visible]
        assert people[name]["seconds"] == pytest.approx(len(seen) / FPS, abs=2 / FPS)
        assert people[name]["first"] == pytest.approx(seen[0], abs=2 / FPS)
        assert people[name]["last"] == pytest.approx(seen[-1], abs=2 / FPS)
    assert people[EILEEN]["appearances"] == 2 and people[GRACE]["appearances"] == 1
    assert report["seconds"] == pytest.approx(200 / FPS, abs=1e-3)
    assert cv2.imread(str(chart)) is not None


def test_screen_time_groups_strangers_into_unknown_clusters(tmp_path, walk_clip, capsys):
    assert (
        main(["screen-time", walk_clip, "--no-progress", "--gallery", str(tmp_path / "empty.npz")])
        == 0
    )
    table = capsys.readouterr().out
    assert "unknown_1" in table and "unknown_2" in table  # two strangers told apart, no enrolment


# --- bad inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["label-video", "screen-time"])
def test_bad_videos_give_clear_errors(tmp_path, gallery, command, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    extra = [str(tmp_path / "out.mp4")] if command == "label-video" else []
    assert main([command, str(tmp_path / "missing.mp4"), *extra, "--no-progress", *gallery]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([command, str(garbage), *extra, "--no-progress", *gallery]) == 2
    assert "cannot read video" in capsys.readouterr().err


def test_bad_outputs_give_clear_errors_and_leave_no_files(tmp_path, gallery, walk_clip, capsys):
    assert main(["label-video", walk_clip, str(tmp_path / "out.gif"), *gallery]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["label-video", walk_clip, str(tmp_path / "nowhere" / "out.mp4"), *gallery]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["label-video", walk_clip, str(tmp_path / "out.mp4"), "--detections",
                 str(tmp_path / "faces.txt"), *gallery]) == 2
    assert ".csv or .json" in capsys.readouterr().err
    assert (
        main(
            [
                "screen-time",
                walk_clip,
                "--chart",
                str(tmp_path / "nowhere" / "chart.png"),
                *gallery,
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_progress_bar_goes_to_stderr(tmp_path, gallery, walk_clip, capsys):
    assert main(["label-video", walk_clip, str(tmp_path / "out.mp4"), *gallery]) == 0
    captured = capsys.readouterr()
    assert "label-video" in captured.err and "90" in captured.err
    assert "label-video" not in captured.out


def test_a_missing_video_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "face_recog_ros.cli", "label-video",
                           str(tmp_path / "no.mp4"), str(tmp_path / "out.mp4")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "error: cannot open video" in done.stderr and "Traceback" not in done.stderr


# --- the stream's enrolment from the command line-------------------------------------------------

def test_enroll_video_enrols_the_face_of_a_clip(tmp_path, capsys):
    # One photo moved about gives near-identical landmark-aligned chips (cosine 0.993-0.999), so
    # the clip changes the look (mirror, light) as a person turning would, and the duplicate
    # filter is relaxed as in the stream's live-enrolment tests.
    clip = write_clip(tmp_path / "looks.mp4", samples.looks("astronaut", 90))
    config = tmp_path / "params.yaml"
    config.write_text("tracking:\n  enroll_max_similarity: 0.997\n")
    options = ["--gallery", str(tmp_path / "g.npz"), "--config", str(config)]
    assert main(["enroll-video", EILEEN, clip, "--samples", "3", *options]) == 0
    assert f"enrolled {EILEEN}: 3 samples, 3 in total (3 of 3 samples" in capsys.readouterr().out
    assert main(["list", *options]) == 0
    assert EILEEN in capsys.readouterr().out
    assert (
        main(["enroll-video", GRACE, clip, "--samples", "50", *options]) == 1
    )  # not enough frames
    assert "the video ended first; nothing was enrolled" in capsys.readouterr().err


def test_label_video_enrols_a_stranger_by_its_unknown_label(tmp_path, walk_clip, capsys):
    gallery = ["--gallery", str(tmp_path / "g.npz")]
    out = str(tmp_path / "out.mp4")
    assert (
        main(
            [
                "label-video",
                walk_clip,
                out,
                "--no-progress",
                "--enroll-unknown",
                f"unknown_2={GRACE}",
                *gallery,
            ]
        )
        == 0
    )
    assert f"enrolled unknown_2 as {GRACE}:" in capsys.readouterr().out
    assert main(["label-video", walk_clip, out, "--no-progress", *gallery]) == 0  # named now
    assert GRACE in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: not an unknown_<n> label
        main(
            ["label-video", walk_clip, out, "--no-progress", "--enroll-unknown", "bob=x", *gallery]
        )
