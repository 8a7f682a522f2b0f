"""A stream of image bombs on the camera topic of the real node: every one is refused from its
header and counted, the node keeps answering, and its memory stays flat.

Before decoding was bounded, one 35-byte GIF every 0.5 s starved the camera and a 1,080-byte
BMP made OpenCV allocate 5-7 GB (an OOM kill on a 4 GB Pi). Here every bomb of
test_robustness_image_bombs.BOMBS arrives as a CompressedImage, 20 per second for 10 s, while
the node's RSS (VmRSS) is sampled.
"""
from __future__ import annotations

import time
from pathlib import Path

from conftest import load_tool
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from test_robustness_image_bombs import BOMBS

from face_recog_interfaces.srv import ListFaces

soak_node = load_tool("soak_node")
RATE_HZ, SECONDS, RSS_LIMIT_MB = 20.0, 10.0, 600.0


def test_node_memory_stays_flat_under_a_stream_of_bombs(tmp_path: Path) -> None:
    domain = soak_node.run_domain()
    node = soak_node.NodeProcess(tmp_path, tmp_path / "gallery.npz", domain,
                                 use_compressed="true", image_reliability="reliable",
                                 publish_annotated="false", diagnostics_period=0.5)
    client = soak_node.Client(domain)
    try:
        publisher = client.node.create_publisher(
            CompressedImage, "image/compressed",
            QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                       depth=10))
        refused = [0.0]

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if ": camera" in status.name:
                    refused[0] = sum(float(v.value) for v in status.values
                                     if v.key == "errors_total")

        client.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert publisher.get_subscription_count() > 0, node.log()[-2000:]
        time.sleep(1.0)
        start_mb = node.rss_mb()
        samples: list[float] = []
        bombs = sorted(BOMBS.items())
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < SECONDS:
            name, data = bombs[sent % len(bombs)]
            msg = CompressedImage(format=name, data=data)
            msg.header.stamp = client.node.get_clock().now().to_msg()
            publisher.publish(msg)
            sent += 1
            samples.append(node.rss_mb() or 0.0)
            time.sleep(1.0 / RATE_HZ)
        deadline = time.monotonic() + 10
        while refused[0] < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        response, seconds = client.call(ListFaces.Request(), timeout=5)
        print(f"{sent} bombs in {SECONDS:g} s ({len(bombs)} kinds): {refused[0]:.0f} refused; "
              f"node RSS {start_mb:.0f} MB before, peak {max(samples):.0f} MB, "
              f"end {samples[-1]:.0f} MB; ~/list_faces answered in {seconds * 1e3:.0f} ms")
        assert node.alive() and response.success
        assert refused[0] == sent  # each refused and counted (none decoded, none lost)
        assert max(samples) < RSS_LIMIT_MB
        assert max(samples) - start_mb < 50  # flat: nothing decoded at the claimed size
        assert "Traceback" not in node.log()
    finally:
        client.close()
        node.stop()
