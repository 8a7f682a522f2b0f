"""Frames of a sensor_msgs/Image or CompressedImage topic in a ROS 2 bag.

`rosbags` (pure Python, no ROS installation) reads .mcap and sqlite3 .db3 bags, as the bag folder
(with its metadata.yaml) or the bare storage file. Messages are decoded by the node's validated
decoding (io/image_messages.py), which reads the messages' fields only. The frame time is the
message's header stamp, or the time it was recorded when the publisher left the stamp empty,
counted from the topic's first frame.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .image_messages import compressed_to_rgb, image_to_rgb
from .video import Frame

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def _reader(path: Path):
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError:
        raise ValueError("reading bags needs the rosbags package: pip install rosbags") from None
    # Bags without embedded message definitions (older sqlite3 ones) fall back to these.
    return AnyReader([path], default_typestore=get_typestore(Stores.LATEST))


def message_stamp(msg, logged_ns: int) -> float:
    """Seconds: the header stamp, or the recording time when the publisher left it at zero."""
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return stamp if stamp > 0 else logged_ns * 1e-9


class BagSource:
    """Iterate over the decoded frames of one image topic, in recording order."""

    def __init__(self, path: str | Path, topic: str) -> None:
        self.path, self.topic = Path(path), topic
        if not self.path.exists():
            raise ValueError(f"cannot open bag {self.path}: no such file or folder")
        with self._open() as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
            if not connections:
                raise ValueError(f"bag {self.path} has no topic {topic!r}; image topics in it: "
                                 f"{', '.join(images) or 'none'}")
            if connections[0].msgtype not in IMAGE_TYPES:
                raise ValueError(f"topic {topic!r} carries {connections[0].msgtype}, not an image "
                                 f"type; image topics in the bag: {', '.join(images) or 'none'}")
            self.msgtype = connections[0].msgtype
            self.frame_count = sum(c.msgcount for c in connections)
            messages = [(reader.deserialize(raw, c.msgtype), t) for c, t, raw in
                        itertools.islice(reader.messages(connections=connections), 50)]
        if not messages:
            raise ValueError(f"topic {topic!r} in bag {self.path} has no messages")
        first = self._decoder()(messages[0][0])
        self.size = (first.shape[1], first.shape[0])  # width, height of the first frame
        stamps = [message_stamp(msg, t) for msg, t in messages]
        steps = np.diff(stamps)
        steps = steps[steps > 0]
        # The written video's rate: the typical gap between the first messages' stamps.
        self.fps = float(np.clip(1.0 / np.median(steps), 1.0, 240.0)) if len(steps) else 30.0

    @property
    def frame_period(self) -> float:
        return 1.0 / self.fps

    @contextlib.contextmanager
    def _open(self) -> Iterator:
        reader = _reader(self.path)
        from rosbags.highlevel import AnyReaderError
        try:
            reader.open()
        except (AnyReaderError, OSError) as exc:
            raise ValueError(f"cannot read bag {self.path}: {exc}") from None
        try:
            yield reader
        finally:
            reader.close()

    def _decoder(self):
        # The node's validated decoders; they read only the message's fields, so rosbags'
        # message objects work as they are.
        return compressed_to_rgb if self.msgtype.endswith("CompressedImage") else image_to_rgb

    def __iter__(self) -> Iterator[Frame]:
        decode = self._decoder()
        with self._open() as reader:
            connections = [c for c in reader.connections if c.topic == self.topic]
            first = None
            for index, (connection, logged_ns, raw) in enumerate(
                reader.messages(connections=connections)
            ):
                msg = reader.deserialize(raw, connection.msgtype)
                stamp = message_stamp(msg, logged_ns)
                first = stamp if first is None else first
                yield Frame(index, stamp - first, decode(msg))
