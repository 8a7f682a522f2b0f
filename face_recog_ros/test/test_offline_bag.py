"""`face-recog from-bag` on ROS 2 bags this test writes itself with rosbags (no committed media).

The bags hold the synthetic walk-through as sensor_msgs/Image (rgb8 / bgr8) and
CompressedImage (JPEG) topics, in both storage formats, plus a non-image topic.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest

from face_recog_ros.io import samples
from conftest import count_frames
from face_recog_ros.cli import main

rosbags = pytest.importorskip("rosbags")
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

EILEEN, GRACE = samples.PEOPLE["astronaut"], samples.PEOPLE["grace_hopper"]
FRAMES = 60
START_NS = 1_700_000_000 * 10 ** 9


def write_bag(path: Path, storage: StoragePlugin) -> Path:
    """/camera/image_raw (Image, rgb8), /camera/compressed (CompressedImage, JPEG), /chatter
    (String)."""
    store = get_typestore(Stores.LATEST)
    Image = store.types["sensor_msgs/msg/Image"]
    CompressedImage = store.types["sensor_msgs/msg/CompressedImage"]
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    String = store.types["std_msgs/msg/String"]
    with Writer(path, version=9, storage_plugin=storage) as writer:
        raw = writer.add_connection("/camera/image_raw", Image.__msgtype__, typestore=store)
        jpeg = writer.add_connection(
            "/camera/compressed", CompressedImage.__msgtype__, typestore=store
        )
        chatter = writer.add_connection("/chatter", String.__msgtype__, typestore=store)
        for frame in samples.sequence(FRAMES, dropped=range(0)):
            ns = START_NS + round(frame.stamp * 1e9)
            header = Header(stamp=Time(sec=ns // 10 ** 9, nanosec=ns % 10 ** 9), frame_id="camera")
            h, w = frame.rgb.shape[:2]
            image = Image(
                header=header,
                height=h,
                width=w,
                encoding="rgb8",
                is_bigendian=0,
                step=w * 3,
                data=frame.rgb.reshape(-1).copy(),
            )
            writer.write(raw, ns, store.serialize_cdr(image, Image.__msgtype__))
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            compressed = CompressedImage(header=header, format="jpeg", data=data.reshape(-1))
            writer.write(jpeg, ns, store.serialize_cdr(compressed, CompressedImage.__msgtype__))
            writer.write(
                chatter, ns, store.serialize_cdr(String(data="hello"), String.__msgtype__)
            )
    return path


@pytest.fixture(
    scope="module", params=[StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "db3"]
)
def bag(request, tmp_path_factory) -> Path:
    return write_bag(tmp_path_factory.mktemp("bags") / "walk", request.param)


@pytest.mark.parametrize("topic", ["/camera/image_raw", "/camera/compressed"])
def test_from_bag_labels_an_image_topic(tmp_path, gallery, bag, topic, capsys):
    out, detections = tmp_path / "bag.mp4", tmp_path / "faces.csv"
    assert (
        main(
            [
                "from-bag",
                str(bag),
                topic,
                str(out),
                "--detections",
                str(detections),
                "--no-progress",
                *gallery,
            ]
        )
        == 0
    )
    assert count_frames(out) == FRAMES
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0, abs=0.1)  # from the header stamps
    capture.release()
    rows = list(csv.DictReader(detections.open()))
    assert {EILEEN, GRACE} <= {r["label"] for r in rows}
    first = min(rows, key=lambda r: int(r["frame"]))
    assert float(first["time"]) == pytest.approx(
        int(first["frame"]) / 30.0, abs=1e-3
    )  # stamps from 0
    assert "30.0 fps" in capsys.readouterr().out


def test_the_bare_storage_file_works_too(tmp_path, gallery, bag):
    storage = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    assert (
        main(
            [
                "from-bag",
                str(storage),
                "/camera/image_raw",
                str(tmp_path / "out.mp4"),
                "--no-progress",
                *gallery,
            ]
        )
        == 0
    )
    assert count_frames(tmp_path / "out.mp4") == FRAMES


def test_bad_bags_and_topics_give_clear_errors(tmp_path, gallery, bag, capsys):
    out = str(tmp_path / "out.mp4")
    assert main(["from-bag", str(bag), "/camera/depth", out, *gallery]) == 2
    err = capsys.readouterr().err
    assert "no topic '/camera/depth'" in err and "/camera/compressed, /camera/image_raw" in err
    assert main(["from-bag", str(bag), "/chatter", out, *gallery]) == 2
    assert "std_msgs/msg/String, not an image type" in capsys.readouterr().err
    assert main(["from-bag", str(tmp_path / "missing"), "/camera/image_raw", out, *gallery]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    not_a_bag = tmp_path / "notes.mcap"
    not_a_bag.write_text("not a bag")
    assert main(["from-bag", str(not_a_bag), "/camera/image_raw", out, *gallery]) == 2
    assert "cannot read bag" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()
