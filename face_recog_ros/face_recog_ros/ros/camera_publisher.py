"""camera_publisher: a USB camera or a video file as a sensor_msgs/Image topic, with no other
driver.

    ros2 run face_recog_ros camera_publisher          # /dev/video0, 640x480 at 30 fps
    ros2 run face_recog_ros camera_publisher --ros-args -p device:=/dev/video2 -p fps:=15.0
    ros2 run face_recog_ros camera_publisher --ros-args -p device:=walk.mp4 -p loop:=true

Publishes `image` (bgr8, sensor-data QoS) stamped with the capture time, and with
publish_compressed also `image/compressed` (JPEG), the image_transport name of the same stream.
For robots with a camera driver already (usb_cam, v4l2_camera, realsense2_camera) this node is
not needed: point face_recognition_node at that driver's topic.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

DEFAULT_FRAME_ID = "camera_optical_frame"  # REP 103: z forward, x right, y down


class CaptureOpenError(RuntimeError):
    """The camera device or video file could not be opened; the message says what to check."""


def parse_device(device: int | str) -> int | str:
    """A camera index (int or a string of digits) or a path (device node or video file)."""
    if isinstance(device, int):
        return device
    text = str(device).strip()
    return int(text) if text.isdigit() else text


def open_capture(source: int | str, width: int, height: int, fps: float) -> cv2.VideoCapture:
    """Open a camera index, device path or video file; CaptureOpenError says why not."""
    if isinstance(source, str) and not source.startswith("/dev/"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise CaptureOpenError(f"video file '{source}' does not exist")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise CaptureOpenError(
                f"could not open video file '{source}': OpenCV cannot read its format"
            )
        return capture
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        node = f"/dev/video{source}" if isinstance(source, int) else source
        raise CaptureOpenError(
            f"could not open camera {source!r} ({node}): check that it is connected "
            "(`ls /dev/video*`), not in use by another program, and that your user is in the "
            "'video' group")
    # Requests only: a camera picks the nearest mode it supports.
    if width > 0 and height > 0:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    if fps > 0:
        capture.set(cv2.CAP_PROP_FPS, fps)
    return capture


class CameraPublisher(Node):
    """Reads frames on its own thread (a camera read blocks) and publishes each at capture time."""

    def __init__(self, **kwargs) -> None:
        super().__init__("camera_publisher", **kwargs)
        # device and fps take either type: launch files and `-p` pass "0" / 0 and 30 / 30.0.
        self.declare_parameter(
            "device",
            "0",
            ParameterDescriptor(
                dynamic_typing=True,
                description="Camera index (0 = /dev/video0), device path, or video file",
            ),
        )
        self.declare_parameter(
            "width",
            640,
            ParameterDescriptor(
                description="Requested capture width; 0 keeps the camera's default (ignored for "
                            "files)"
            ),
        )
        self.declare_parameter(
            "height",
            480,
            ParameterDescriptor(
                description="Requested capture height; 0 keeps the camera's default (ignored for "
                            "files)"
            ),
        )
        self.declare_parameter(
            "fps",
            30.0,
            ParameterDescriptor(
                dynamic_typing=True,
                description="Most frames per second to publish; 0: the camera's own rate / the "
                            "file's rate",
            ),
        )
        self.declare_parameter("frame_id", DEFAULT_FRAME_ID, ParameterDescriptor(
            description="header.frame_id of the published images"))
        self.declare_parameter("loop", False, ParameterDescriptor(
            description="Video files: start again at the end instead of stopping"))
        self.declare_parameter(
            "publish_compressed",
            False,
            ParameterDescriptor(
                description="Also publish image/compressed (JPEG) for remote or low-bandwidth "
                            "subscribers"
            ),
        )
        self.declare_parameter("jpeg_quality", 80, ParameterDescriptor(
            description="JPEG quality 1-100 of image/compressed"))

        device = self.get_parameter("device").value
        self.source = parse_device(device)
        self.frame_id = str(self.get_parameter("frame_id").value)
        self.loop = bool(self.get_parameter("loop").value)
        self.jpeg_quality = int(np.clip(self.get_parameter("jpeg_quality").value, 1, 100))
        fps = float(self.get_parameter("fps").value)
        self.capture = open_capture(self.source, int(self.get_parameter("width").value),
                                    int(self.get_parameter("height").value), fps)
        self.is_file = isinstance(self.source, str) and not self.source.startswith("/dev/")
        if fps <= 0 and self.is_file:
            fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0  # a file plays at its own rate
        self.period = 1.0 / fps if fps > 0 else 0.0

        self.publisher = self.create_publisher(Image, "image", qos_profile_sensor_data)
        self.compressed_publisher = None
        if self.get_parameter("publish_compressed").value:
            # image_transport naming: the compressed stream sits under the resolved raw topic.
            self.compressed_publisher = self.create_publisher(
                CompressedImage,
                self.resolve_topic_name("image") + "/compressed",
                qos_profile_sensor_data,
            )
        self.published = 0
        self.finished = threading.Event()  # set when a file ended (without loop) or reading failed
        self.error: str | None = None  # why the camera stopped, if it failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera_capture", daemon=True)
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.get_logger().info(
            f"publishing {self.resolve_topic_name('image')} from "
            f"{'file' if self.is_file else 'camera'} "
            f"{device!r} at {width}x{height}, "
            f"{'unlimited' if not self.period else f'{1 / self.period:g}'} "
            f"fps, frame_id '{self.frame_id}'"
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.capture.release()

    def _run(self) -> None:
        next_time = time.monotonic()
        failures = 0
        while not self._stop.is_set():
            if self.period:
                delay = next_time - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                # Stay on the fps grid, but do not burst to catch up after a stall.
                next_time = max(next_time + self.period, time.monotonic())
            ok, bgr = self.capture.read()
            stamp = self.get_clock().now().to_msg()
            if not ok:
                if self.is_file and self.loop and self.published:
                    self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                failures += 1
                if self.is_file:
                    self.get_logger().info(
                        f"end of the video file; published {self.published} frames"
                    )
                    break
                if failures >= 10:
                    self.error = f"camera {self.source!r} stopped delivering frames (unplugged?)"
                    self.get_logger().error(self.error)
                    break
                continue
            failures = 0
            self._publish(bgr, stamp)
        self.finished.set()

    def _publish(self, bgr: np.ndarray, stamp) -> None:
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = self.frame_id
        msg.height, msg.width = bgr.shape[:2]
        msg.encoding = "bgr8"
        msg.is_bigendian = 0
        bgr = np.ascontiguousarray(bgr)
        msg.step = bgr.strides[0]
        msg.data = bgr.tobytes()
        self.publisher.publish(msg)
        if self.compressed_publisher is not None:
            ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                compressed = CompressedImage(
                    format="bgr8; jpeg compressed bgr8", data=jpeg.tobytes()
                )
                compressed.header = msg.header
                self.compressed_publisher.publish(compressed)
        self.published += 1


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = CameraPublisher()
        node.start()
        while rclpy.ok() and not node.finished.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
        return 1 if node.error else 0
    except CaptureOpenError as exc:
        print(f"camera_publisher: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
