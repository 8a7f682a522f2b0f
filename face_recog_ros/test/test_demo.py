"""face_recog_demo end to end: the real node, real models, the real services and topics."""
from __future__ import annotations

import re

import cv2
import pytest
from conftest import ros_domain

from face_recog_ros.ros import demo

FRAMES = 90
LINE = re.compile(r"^\s*[\d.]+s\s+frame\s+(\d+)\s+(\w+): (.*)$")


@pytest.fixture(autouse=True)
def private_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo uses the user's ROS domain; tests get their own so parallel runs cannot meet."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain()))


def printed(text: str) -> list[tuple[int, str, str]]:
    """(frame, kind, rest) for every story line: kind is faces, event or enroll."""
    return [(int(m[1]), m[2], m[3]) for m in map(LINE.match, text.splitlines()) if m]


def test_demo_tells_the_story_and_writes_the_video(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert demo.main(["--frames", str(FRAMES), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = printed(text)
    script = demo.Script.for_frames(FRAMES)
    eileen, grace = demo.NAMES[demo.EILEEN], demo.NAMES[demo.GRACE]

    enrolls = [(frame, rest) for frame, kind, rest in lines if kind == "enroll"]
    assert [rest.split(":")[0] for _, rest in enrolls] == [
        f"{eileen} from a photo (512x512) -> /face_recog_demo/face_recognition_node/enroll",
        "done",
        enrolls[2][1].split(":")[0],
        "done",
    ]
    assert enrolls[0][0] == script.enroll_photo_at
    live_start = enrolls[2][0]
    assert (
        live_start >= script.enroll_live_at and f"as {grace} from the live stream" in enrolls[2][1]
    )

    named: dict[str, list[int]] = {eileen: [], grace: []}
    for frame, kind, rest in lines:
        if kind != "faces" or rest == "nobody":
            continue
        faces = re.findall(r"#(\d+) (\w+)", rest)
        labels = [label for _, label in faces]
        assert len(set(labels) - {"unknown"}) == len(
            [lb for lb in labels if lb != "unknown"]
        )  # no name twice
        for label in labels:
            if label in named:
                named[label].append(frame)
        # A name only where that person is in the room, and Grace only once she was enrolled.
        assert eileen not in labels or script.in_view(demo.EILEEN, frame), frame
        assert grace not in labels or (
            script.in_view(demo.GRACE, frame) and frame >= live_start
        ), frame
    assert named[eileen] and named[grace]
    # Eileen is named in both of her visits (the second one is a new track).
    assert any(f in script.present[demo.EILEEN][0] for f in named[eileen])
    assert any(f in script.present[demo.EILEEN][1] for f in named[eileen])

    events = [rest for _, kind, rest in lines if kind == "event"]
    assert sum(f"identified {eileen}" in e for e in events) >= 2
    assert any(f"identified {grace}" in e for e in events)

    assert f"{eileen}: 1 samples, {grace}: {demo.LIVE_SAMPLES} samples (~/list_faces)" in text
    # The node's own figures (its /diagnostics): every frame processed, at the camera's pace.
    assert re.search(
        rf"node\s+{FRAMES} of {FRAMES} frames processed \(0 dropped\), [\d.]+ frames/s; "
        r"[\d.]+ ms a frame from receipt to publish",
        text,
    )
    assert re.search(r"latency .* p50 [\d.]+ ms, p95 [\d.]+ ms", text)

    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    ok, frame = video.read()
    assert ok and frame.shape == (480, 640, 3)
    snapshots = sorted(p.name for p in out.glob("*.png"))
    assert any(eileen in name for name in snapshots) and any(grace in name for name in snapshots)


def test_demo_fails_clearly_when_the_node_never_answers(capsys) -> None:
    # The node listens on another topic, so nothing subscribes to the demo's frames.
    code = demo.main(
        [
            "--frames",
            "40",
            "--no-video",
            "--ready-timeout",
            "2",
            "--param",
            "image_topics=[elsewhere]",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert (
        "face_recognition_node never answered within 2 s: nothing subscribes "
        "/face_recog_demo/image"
        in err
    )


def test_demo_reports_a_node_that_cannot_start(capsys) -> None:
    assert (
        demo.main(["--frames", "40", "--no-video", "--param", "embedder.model=no_such_model"]) == 1
    )
    assert "face_recognition_node could not start: " in capsys.readouterr().err


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        demo.parse_args(["--frames", "10"])
    with pytest.raises(SystemExit):
        demo.parse_args(["--param", "no_equals_sign"])
    assert demo.parse_args(["--param", "detector.min_score=0.6", "--param", "x=true"]).param == {
        "detector.min_score": 0.6, "x": True}
