"""A special file as the gallery never hangs the node (the real node process).

At start-up a FIFO, or a symlink to /dev/zero, is refused at once with a clear error: the node
exits 1, its memory stays at its start-up size (reading /dev/zero grew RSS to 6 GB in 10 s
before). A FIFO swapped in while the node runs is refused by the reload timer without opening
it: /diagnostics keeps coming, the services answer, and SIGINT stops the node promptly (before,
the timer blocked in open() forever and SIGINT did not stop it within 20 s).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import load_tool
from diagnostic_msgs.msg import DiagnosticArray

from face_recog_interfaces.srv import ListFaces

soak_node = load_tool("soak_node")
PEAK_LIMIT_MB = 600


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_zero_link(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("make, kind", [(make_fifo, "is a FIFO"),
                                        (make_zero_link, "is a character device")])
def test_special_file_at_start_up_is_refused_at_once(tmp_path: Path, make: Callable,
                                                     kind: str) -> None:
    gallery = tmp_path / "gallery.npz"
    make(gallery)
    command = [sys.executable, "-m", "face_recog_ros.ros.node", "--ros-args",
               "-p", f"gallery.path:={gallery}"]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env=soak_node.ros_env(soak_node.run_domain()))
    peak = 0.0
    while process.poll() is None and time.monotonic() - start < 60:
        peak = max(peak, soak_node.memory_mb(process.pid, "VmHWM") or 0.0)
        time.sleep(0.02)
    if process.poll() is None:
        process.kill()
    out = process.communicate(timeout=10)[0]
    seconds = time.monotonic() - start
    print(f"{kind}: exit {process.returncode} after {seconds:.1f} s, peak RSS {peak:.0f} MB")
    assert process.returncode == 1, out
    assert f"gallery path {gallery} {kind}; it must be a regular file" in out, out
    assert "Traceback" not in out
    assert peak < PEAK_LIMIT_MB
    assert gallery.is_symlink() or gallery.is_fifo()  # left as it was


def test_fifo_swapped_in_at_run_time_never_blocks(tmp_path: Path) -> None:
    gallery = tmp_path / "gallery.npz"
    domain = soak_node.run_domain()
    node = soak_node.NodeProcess(tmp_path, gallery, domain, gallery_poll_period=0.2,
                                 diagnostics_period=0.5, publish_annotated="false")
    client = soak_node.Client(domain)
    try:
        client.wait_ready(node)
        client.call(soak_node.enroll_request("grace", "grace_hopper"), timeout=30)
        diagnostics: list[float] = []
        client.node.create_subscription(DiagnosticArray, "/diagnostics",
                                        lambda _: diagnostics.append(time.monotonic()), 10)
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        os.replace(fifo, gallery)  # as another program might, atomically
        swapped = time.monotonic()
        time.sleep(4.0)  # 20 reload periods
        after = [t for t in diagnostics if t > swapped]
        print(f"{len(after)} /diagnostics messages in the 4 s after the swap")
        assert len(after) >= 4  # 8 expected at 0.5 s; the timers were never blocked
        response, seconds = client.call(ListFaces.Request(), timeout=5)
        assert response.success and list(response.names) == ["grace"]  # memory kept
        assert "is a FIFO" in node.log()  # said why the file is not used
        enrolled, _ = client.call(soak_node.enroll_request("ada", "astronaut"), timeout=30)
        print(f"enrol after the swap: {enrolled.success} {enrolled.message!r}")
        assert not enrolled.success and "is a FIFO" in enrolled.message
        assert "internal error" not in enrolled.message
        response, _ = client.call(ListFaces.Request(), timeout=5)
        assert list(response.names) == ["grace"]  # the refused enrolment left nothing behind
        start = time.monotonic()
        node.process.send_signal(signal.SIGINT)
        node.process.wait(timeout=10)
        print(f"SIGINT to exit: {time.monotonic() - start:.2f} s")
        assert time.monotonic() - start < 5
        assert gallery.is_fifo()  # never replaced behind the user's back
    finally:
        client.close()
        node.stop()
