"""RGB uint8 numpy arrays -> sensor_msgs/Image (decoding, which needs no ROS, is
io/image_messages.py)."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ..io.image_messages import UnsupportedEncoding


def rgb_to_image(rgb: np.ndarray, header: Header | None = None, encoding: str = "bgr8") -> Image:
    """Pack an (H, W, 3) uint8 RGB array into a sensor_msgs/Image (bgr8, rgb8 or mono8)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    if encoding == "bgr8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "rgb8":
        out = np.ascontiguousarray(rgb)
    elif encoding == "mono8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        raise UnsupportedEncoding(f"cannot publish encoding {encoding!r}; use bgr8, rgb8 or mono8")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = out.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = out.strides[0]
    msg.data = out.tobytes()  # bytes -> array('B') is a single memcpy; memoryview is 300x slower
    return msg
