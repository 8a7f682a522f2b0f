"""The entry points limit numpy's BLAS to one thread before numpy loads.

A multi-threaded OpenBLAS fights the TFLite threads for the cores. The limit is an environment
variable read once, when numpy loads, so it only works if every entry point sets it first; it
once sat in ros/node.py after face_recog_ros/__init__.py had already imported numpy, so
`ros2 run`, the console scripts and the demo ran with one BLAS thread per core.

Each process here starts without the variables and with a sitecustomize (on PYTHONPATH) that,
at exit, asks the OpenBLAS library loaded by numpy how many threads it runs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from face_recog_ros.environment import THREAD_LIMITS

BIN = Path(sys.executable).parent
PROBE = '''
import atexit, ctypes, os, sys

def _report():
    if "numpy" not in sys.modules:
        return
    libs = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                       "openblas_get_num_threads"):
            if hasattr(lib, symbol):
                with open(os.environ["BLAS_THREADS_FILE"], "w") as f:
                    f.write(str(getattr(lib, symbol)()))
                return

atexit.register(_report)
'''


def blas_threads(tmp_path: Path, command: list[str], *, stop_when: str | None = None) -> int:
    """Run ``command`` (until ``stop_when`` appears in its output, then SIGINT) and return the
    OpenBLAS thread count its numpy ran with."""
    (tmp_path / "sitecustomize.py").write_text(PROBE)
    result = tmp_path / "threads.txt"
    env = {k: v for k, v in os.environ.items() if k not in THREAD_LIMITS}
    env.update(PYTHONPATH=str(tmp_path), BLAS_THREADS_FILE=str(result))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        if stop_when is not None:
            deadline = time.monotonic() + 60.0
            output = ""
            while stop_when not in output:
                line = process.stdout.readline()
                assert (
                    line and time.monotonic() < deadline
                ), f"{command[0]} never said {stop_when!r}: {output}"
                output += line
            process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert result.is_file(), f"{command} loaded no numpy with OpenBLAS: {out}"
    return int(result.read_text())


def test_the_probe_sees_several_blas_threads_without_the_limit(tmp_path):
    """The control: plain numpy here starts one BLAS thread per core (this machine has several)."""
    threads = blas_threads(tmp_path, [sys.executable, "-c", "import numpy"])
    assert threads > 1 or len(os.sched_getaffinity(0)) == 1


def test_a_fresh_face_recognition_node_process_has_one_blas_thread(tmp_path):
    command = [
        str(BIN / "face_recognition_node"),
        "--ros-args",
        "-p",
        f"gallery.path:={tmp_path / 'g.npz'}",
        "-r",
        "__node:=blas_probe_node",
    ]
    assert blas_threads(tmp_path, command, stop_when="ready:") == 1


@pytest.mark.parametrize("command", [
    ["face-recog", "list", "--gallery", ""],
    ["python", "-m", "face_recog_ros.cli", "list", "--gallery", ""],
    ["face_recog_demo", "--help"],
    ["python", "-m", "face_recog_ros.ros.demo", "--help"],
])
def test_other_entry_points_have_one_blas_thread(tmp_path, command):
    if command[0] == "python":
        command = [sys.executable, *command[1:]]
    else:
        command = [str(BIN / command[0]), *command[1:]]
    assert blas_threads(tmp_path, command) == 1
