#!/usr/bin/env python3
"""Gallery stress: back-to-back enrol / forget / rename against the real node; nothing acknowledged
lost.

    python3 tools/stress_gallery.py                          # 1,500 people, 60 s
    python3 tools/stress_gallery.py --people 1500 --seconds 60 --cli

The node runs as its own process on a private ROS domain, with a gallery file that already
holds --people people (one sample each) and its shared-gallery reload timer on. One client
calls ~/enroll (a photo, a new name each time), ~/forget and ~/rename back to back, each call
waiting for the previous answer, and records every acknowledged change. With --cli, a second
process edits the same file at the same time through the `face-recog` command line (enrol and
forget of names of its own), as a user at a terminal would.

At the end the node's ~/list_faces, the gallery file and the acknowledged changes of both
writers must agree exactly: no acknowledged enrolment lost, no acknowledged forget undone.
Exit status 0 when they do. test/test_robustness_gallery_stress.py runs a short version.
"""

from __future__ import annotations


from face_recog_ros.environment import limit_native_threads  # noqa: E402  (imports no numpy)

limit_native_threads()  # before numpy loads, like the package's own entry points

import argparse  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_node import (DIM, SPACE, CallTimeout, Client, NodeProcess, enroll_request,  # noqa: E402
                       gallery_file_people, run_domain)

from face_recog_interfaces.srv import Forget, ListFaces, Rename  # noqa: E402
from face_recog_ros.io import samples  # noqa: E402
from face_recog_ros.gallery.model import Gallery  # noqa: E402
from face_recog_ros.gallery.store import save_gallery  # noqa: E402


def populated_gallery(path: Path, people: int, seed: int = 7) -> dict[str, int]:
    """A gallery file of `people` people with one random unit sample each."""
    rng = np.random.default_rng(seed)
    gallery = Gallery(SPACE, DIM)
    for k in range(people):
        gallery.add(f"pre_{k}", rng.normal(size=(1, DIM)))
    save_gallery(gallery, path)
    return {f"pre_{k}": 1 for k in range(people)}


@dataclass
class Writer:
    """What one writer was told succeeded: name -> samples, and every answer that was not kept."""

    expected: dict[str, int]
    calls: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def node_client_loop(
    client: Client, writer: Writer, stop: threading.Event, rng: random.Random
) -> None:
    """Enrol a new name, forget one, rename one: back to back, each after the previous answer."""
    request = enroll_request("x", "astronaut")
    i = 0
    while not stop.is_set():
        kind = ("enroll", "forget", "rename")[i % 3]
        with writer.lock:
            mine = [n for n in writer.expected if not n.startswith("cli_")]
        try:
            if kind == "enroll":
                request.name = f"svc_{i}"
                response, _ = client.call(request, timeout=30)
                if response.success:
                    with writer.lock:
                        writer.expected[request.name] = response.total_samples
            elif kind == "forget" and mine:
                victim = rng.choice(mine)
                response, _ = client.call(Forget.Request(name=victim), timeout=30)
                if response.success:
                    with writer.lock:
                        writer.expected.pop(victim)
            elif mine:
                old = rng.choice(mine)
                response, _ = client.call(
                    Rename.Request(old_name=old, new_name=f"ren_{i}"), timeout=30
                )
                if response.success:
                    with writer.lock:
                        writer.expected[f"ren_{i}"] = writer.expected.pop(old)
            else:
                response = None
        except CallTimeout as exc:
            writer.refused.append(f"{kind}: {exc}")
            response = None
        if response is not None:
            writer.calls += 1
            if not response.success:
                writer.refused.append(f"{kind}: {response.message}")
        i += 1


def cli_loop(gallery: Path, photo: Path, writer: Writer, stop: threading.Event) -> None:
    """Another process at a terminal: `face-recog enroll` and `face-recog forget` on the same
    file."""
    base = [sys.executable, "-m", "face_recog_ros.cli"]
    i = 0
    while not stop.is_set():
        if i % 3 == 2:
            name = f"cli_{i - 1}"
            if name not in writer.expected:
                i += 1
                continue
            command = base + ["forget", name, "--gallery", str(gallery)]
        else:
            name = f"cli_{i}"
            command = base + ["enroll", name, str(photo), "--gallery", str(gallery)]
        done = subprocess.run(
            command, cwd=gallery.parent, capture_output=True, text=True, timeout=120
        )
        writer.calls += 1
        if done.returncode == 0:
            with writer.lock:
                if command[3] == "forget":
                    writer.expected.pop(name)
                else:
                    writer.expected[name] = 1
        else:
            writer.refused.append(f"{' '.join(command[3:5])}: {done.stderr.strip()[-300:]}")
        i += 1


@dataclass
class StressReport:
    people: int
    seconds: float
    node_calls: int
    cli_calls: int
    refused: list[str]
    lost: list[str]  # acknowledged and missing, or with the wrong count
    undone: list[str]  # forgotten (or renamed away) and back
    listed_matches_file: bool
    node_alive: bool

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.undone or self.refused)
            and self.listed_matches_file
            and self.node_alive
        )

    def table(self) -> str:
        rate = self.node_calls / self.seconds if self.seconds else float("nan")
        return "\n".join(
            [
                f"gallery at start      {self.people} people",
                f"node calls            {self.node_calls} in {self.seconds:.1f} s ({rate:.1f} "
                "calls/s, "
                "each after the previous answer)",
                f"CLI changes           {self.cli_calls}",
                f"refused / unanswered  {len(self.refused)}"
                + (f": {self.refused[:3]}" if self.refused else ""),
                f"acknowledged, lost    {len(self.lost)}"
                + (f": {self.lost[:5]}" if self.lost else ""),
                f"forgotten, back       {len(self.undone)}"
                + (f": {self.undone[:5]}" if self.undone else ""),
                f"list_faces == file    {self.listed_matches_file}",
                f"node alive            {self.node_alive}",
            ]
        )


def listed(client: Client) -> dict[str, int]:
    response, _ = client.call(ListFaces.Request(), timeout=30)
    return dict(zip(response.names, (int(n) for n in response.sample_counts), strict=True))


def stress(workdir: Path, people: int, seconds: float, with_cli: bool) -> StressReport:
    domain = run_domain()
    gallery = workdir / "gallery" / "gallery.npz"
    gallery.parent.mkdir(parents=True)
    writer = Writer(populated_gallery(gallery, people))
    cli_writer = Writer(
        writer.expected, lock=writer.lock
    )  # one truth: both writers' acknowledgements
    photo = workdir / "grace.png"
    cv2.imwrite(str(photo), cv2.cvtColor(samples.photo("grace_hopper"), cv2.COLOR_RGB2BGR))
    # Reload poll as fast as the node allows, to give the race every chance.
    node = NodeProcess(
        workdir, gallery, domain, publish_annotated="false", gallery_poll_period=0.1
    )
    client = Client(domain)
    stop = threading.Event()
    try:
        client.wait_ready(node, timeout=120)
        threads = [
            threading.Thread(
                target=node_client_loop, args=(client, writer, stop, random.Random(1))
            )
        ]
        if with_cli:
            threads.append(
                threading.Thread(target=cli_loop, args=(gallery, photo, cli_writer, stop))
            )
        start = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=180)
        elapsed = time.monotonic() - start
        expected = dict(writer.expected)
        # The node takes in the CLI's last change at its next reload poll.
        deadline = time.monotonic() + 10
        now_listed = listed(client)
        while now_listed != gallery_file_people(gallery) and time.monotonic() < deadline:
            time.sleep(0.2)
            now_listed = listed(client)
        on_disk = gallery_file_people(gallery)
        lost = sorted(
            f"{n} ({c} expected, {on_disk.get(n)} on disk, {now_listed.get(n)} listed)"
            for n, c in expected.items()
            if on_disk.get(n) != c or now_listed.get(n) != c
        )
        undone = sorted(n for n in on_disk.keys() | now_listed.keys() if n not in expected)
        return StressReport(
            people,
            elapsed,
            writer.calls,
            cli_writer.calls,
            writer.refused + cli_writer.refused,
            lost,
            undone,
            now_listed == on_disk,
            node.alive(),
        )
    finally:
        stop.set()
        node.stop()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--people", type=int, default=1500, help="people in the gallery at the start"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--cli", action="store_true", help="a face-recog CLI process edits the file too"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stress_gallery_") as tmp:
        report = stress(Path(tmp), args.people, args.seconds, args.cli)
    print(report.table())
    print("PASS" if report.ok else "FAIL")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
