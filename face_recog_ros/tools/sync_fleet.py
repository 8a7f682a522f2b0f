#!/usr/bin/env python3
"""Gallery sync across a fleet (gallery.sync): convergence, forgets, catch-up, concurrency.

    python3 tools/sync_fleet.py                           # 3 nodes, 1,000 people, everything
    python3 tools/sync_fleet.py --nodes 6 --people 5000 --no-frames

N face_recognition_node processes run on this machine, each in its own namespace with its own
gallery file (copies of one file of --people people), in one private ROS domain and one sync
group (tools/fleet_probe.py). Then, in order:
1. convergence: enrol a new name (a photo) on one node, and time from the request until every
   node names that person in a camera frame, and until every node's gallery digest agrees
   (--no-frames: digests only); then forget it on another node and time until no node names it
   (and no ~/list_faces lists it). --trials times, rotating the nodes. Times start at the
   request: peers may name the person before the acknowledgement reaches the caller.
2. catch-up: SIGKILL the last node, enrol, forget and rename on the others, restart it, and time
   from its start (and from its first answer) until its digest equals the others'.
3. concurrency: every node enrols the same name and a name of its own at the same moment,
   --rounds times; time until all digests agree.
4. a node started last, with no gallery file, gets everything: time until its digest agrees.
At the end every node is stopped and its gallery file read: all files must hold identical
contents (digest), equal to what the acknowledged calls imply (nothing acknowledged lost, nothing
forgotten back), with no forgotten name in any file.
Exit status 0 when every check passed.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_recog_ros.environment import limit_native_threads  # noqa: E402

limit_native_threads()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
from fleet_probe import Fleet, Probe, file_digest, populated  # noqa: E402
from soak_node import enroll_request, run_domain  # noqa: E402

from face_recog_interfaces.srv import Forget, ListFaces, Rename  # noqa: E402

TIMEOUT = 30.0
# The launch files give every process this profile; without it (Fast DDS's defaults) camera
# frames overflow the transports and a lost sample waits for the writer's next heartbeat.
LARGE_FRAMES = Path(__file__).resolve().parents[1] / "config" / "fastdds_large_frames.xml"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"


@dataclass
class Report:
    nodes: int
    people: int
    startup_s: float = float("nan")
    enrol_ack_s: list[float] = field(default_factory=list)  # ~/enroll answered (saved there)
    converge_s: list[float] = field(default_factory=list)  # per trial, the slowest node
    digest_s: list[float] = field(default_factory=list)  # until every digest agreed
    forget_s: list[float] = field(default_factory=list)
    catch_up_s: float = float("nan")  # from the restart
    catch_up_sync_s: float = float("nan")  # from its gallery loaded (sync started)
    concurrent_s: list[float] = field(default_factory=list)
    newcomer_s: float = float("nan")
    newcomer_sync_s: float = float("nan")
    identical_files: bool = False
    lost: list[str] = field(default_factory=list)
    back: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.identical_files and not (self.lost or self.back or self.failures)

    def table(self) -> str:
        def stats(values: list[float]) -> str:
            if not values:
                return "-"
            a = np.array(values) * 1e3
            return (f"n={a.size} p50 {np.percentile(a, 50):.0f} ms, p95 "
                    f"{np.percentile(a, 95):.0f} ms, max {a.max():.0f} ms")
        rows = [("fleet", f"{self.nodes} nodes, {self.people} people at the start; all up in "
                          f"{self.startup_s:.1f} s"),
                ("enrol acknowledged", stats(self.enrol_ack_s)),
                ("enrol -> named everywhere", stats(self.converge_s)),
                ("enrol -> digests agree", stats(self.digest_s)),
                ("forget -> gone everywhere", stats(self.forget_s)),
                ("restarted node catch-up", f"{self.catch_up_s:.2f} s from restart, "
                                            f"{self.catch_up_sync_s:.2f} s from its gallery "
                                            "loaded"),
                ("concurrent enrolments", stats(self.concurrent_s)),
                ("node started last", f"{self.newcomer_s:.2f} s from start, "
                                      f"{self.newcomer_sync_s:.2f} s from its gallery loaded"),
                ("identical gallery files", str(self.identical_files)),
                ("acknowledged, lost", f"{len(self.lost)} {self.lost[:5]}"),
                ("forgotten, back", f"{len(self.back)} {self.back[:5]}"),
                ("failures", f"{len(self.failures)} {self.failures[:5]}")]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


class Ledger:
    """What the acknowledged calls imply: name -> samples (each photo enrolment adds one)."""

    def __init__(self, people: dict[str, int]) -> None:
        self.expected, self.forgotten = dict(people), set()
        self.lock = threading.Lock()

    def enrolled(self, name: str) -> None:
        with self.lock:
            self.expected[name] = self.expected.get(name, 0) + 1
            self.forgotten.discard(name)

    def forgot(self, name: str) -> None:
        with self.lock:
            self.expected.pop(name, None)
            self.forgotten.add(name)

    def renamed(self, old: str, new: str) -> None:
        with self.lock:
            self.expected[new] = self.expected.get(new, 0) + self.expected.pop(old)
            self.forgotten.add(old)


def wait_until(check, timeout: float = TIMEOUT, step: float = 0.005) -> float | None:
    """The monotonic time ``check()`` first held, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(step)
    return None


class Run:
    def __init__(self, workdir: Path, nodes: int, people: int, frames: bool, period: float,
                 progress=lambda _: None):
        self.report = Report(nodes, people)
        self.progress = progress
        seed = workdir / "seed.npz"
        populated(seed, people)
        domain, group = run_domain(), f"fleet_{int(time.time() * 1000) % 10**9}"
        self.fleet = Fleet(workdir, domain, group, seed_file=seed, period=period)
        self.probe = Probe(domain, group, nodes + 1)
        self.robots = list(range(nodes))
        self.frames = frames
        self.ledger = Ledger(file_digest(seed)[1])

    def ids(self, robots: list[int] | None = None) -> list[str]:
        return [self.fleet.node_id(i) for i in (self.robots if robots is None else robots)]

    def all_hold(self, digest: str) -> bool:
        return self.probe.fleet_digest(self.ids()) == digest

    def new_digest(self, robot: int, before: str | None, after: float) -> str | None:
        """The digest ``robot`` publishes after a change made at ``after`` (None: timed out)."""
        sender, found = self.fleet.node_id(robot), []
        wait_until(lambda: found.append(self.probe.published_after(sender, after, before))
                   or found[-1] is not None)
        return found[-1] if found else None

    def agreed(self, digest: str, after: float) -> float | None:
        """When the last robot first published ``digest`` after ``after`` (the probe's
        callbacks' times, so polling adds nothing); None when one did not in time."""
        times: list[float | None] = []

        def check() -> bool:
            times[:] = [self.probe.first_published(s, digest, after) for s in self.ids()]
            return all(t is not None for t in times)
        return max(times) if wait_until(check) is not None else None  # type: ignore[type-var]

    def ok(self, response, what: str) -> bool:
        if not response.success:
            self.fail(f"{what}: {response.message}")
        return response.success

    def fail(self, what: str) -> None:
        self.report.failures.append(what)
        self.progress(f"FAILED: {what}")

    def start(self) -> None:
        t0 = time.monotonic()
        for i in self.robots:
            self.fleet.start(i)
        for i in self.robots:
            self.fleet.wait_ready(self.probe, i)
        self.report.startup_s = time.monotonic() - t0
        if wait_until(lambda: self.probe.fleet_digest(self.ids()) is not None) is None:
            self.fail("the fleet's digests disagree at the start")

    def convergence(self, trials: int) -> None:
        if self.frames:
            self.probe.start_camera()
        try:
            for k in range(trials):
                self._trial(k)
        finally:
            self.probe.stop_camera()

    def _trial(self, k: int) -> None:
        """Times run from the request: a peer may name the person before the acknowledgement
        (saved on the origin node) has reached this probe."""
        name, n = f"visitor_{k}", len(self.robots)
        origin = self.robots[k % n]
        before = self.probe.digests.get(self.fleet.node_id(origin), ("",))[0]
        sent = time.monotonic()
        response, acked = self.probe.call(origin, enroll_request(name, "astronaut"))
        if not self.ok(response, f"enrol {name}"):
            return
        self.report.enrol_ack_s.append(acked - sent)
        self.ledger.enrolled(name)
        digest = self.new_digest(origin, before, sent)
        agreed = self.agreed(digest, sent) if digest else None
        named = None if self.frames else agreed
        if self.frames and wait_until(lambda: all(name in self.probe.seen[i].first
                                                  for i in self.robots)):
            named = max(self.probe.seen[i].first[name] for i in self.robots)
        if named is None or agreed is None:
            missing = [i for i in self.robots if name not in self.probe.seen[i].first]
            self.fail(f"{name} not everywhere {TIMEOUT:g} s after enrolment (not named in "
                      f"frames by {missing}; digests {'agree' if agreed else 'differ'})")
            return
        if self.frames:
            self.report.converge_s.append(named - sent)
        self.report.digest_s.append(agreed - sent)
        origin = self.robots[(k + 1) % n]
        before = self.probe.digests.get(self.fleet.node_id(origin), ("",))[0]
        sent = time.monotonic()
        response, acked = self.probe.call(origin, Forget.Request(name=name))
        if not self.ok(response, f"forget {name}"):
            return
        self.ledger.forgot(name)
        digest = self.new_digest(origin, before, sent)
        done = self.agreed(digest, sent) if digest else None
        if self.frames and done is not None:
            if wait_until(lambda: all(self.probe.seen[i].gone(name, sent) for i in self.robots)):
                done = max(done, *(self.probe.seen[i].gone(name, sent) for i in self.robots))
            else:
                done = None
        if done is None:
            self.fail(f"{name} still somewhere {TIMEOUT:g} s after the forget")
            return
        self.report.forget_s.append(done - sent)
        for i in self.robots:
            listed, _ = self.probe.call(i, ListFaces.Request())
            if name in listed.names:
                self.fail(f"robot{i} still lists {name}")

    def catch_up(self) -> None:
        victim, others = self.robots[-1], self.robots[:-1]
        self.fleet.kill(victim)
        self.probe.drop(self.fleet.node_id(victim))
        for k in range(10):
            name = f"while_down_{k}"
            if self.ok(self.probe.call(others[k % len(others)],
                                       enroll_request(name, "astronaut"))[0], f"enrol {name}"):
                self.ledger.enrolled(name)
        staff = sorted(n for n in self.ledger.expected if n.startswith("staff_"))
        for k, name in enumerate(staff[:3]):
            if self.ok(self.probe.call(others[k % len(others)], Forget.Request(name=name))[0],
                       f"forget {name}"):
                self.ledger.forgot(name)
        old, new = staff[3], f"renamed_{staff[3]}"
        if self.ok(self.probe.call(others[0], Rename.Request(old_name=old, new_name=new))[0],
                   f"rename {old}"):
            self.ledger.renamed(old, new)
        if wait_until(lambda: len({self.probe.digest_of(i) for i in others}) == 1) is None:
            self.fail("the nodes left running disagree")
        target = self.probe.digest_of(others[0])
        self.fleet.start(victim)
        done = wait_until(lambda: self.all_hold(target), timeout=120)
        if done is None:
            self.fail("the restarted node did not catch up")
            return
        self.report.catch_up_s = done - self.fleet.started[victim]
        self.report.catch_up_sync_s = done - self.fleet.sync_started(victim)

    def concurrency(self, rounds: int) -> None:
        for k in range(rounds):
            gate = threading.Barrier(len(self.robots))
            acks: list[float] = []
            names = {f"together_{k}", *(f"solo_{i}_{k}" for i in self.robots)}

            def enrol(i: int) -> None:
                gate.wait()
                for name in (f"together_{k}", f"solo_{i}_{k}"):
                    response, acked = self.probe.call(i, enroll_request(name, "grace_hopper"))
                    if self.ok(response, f"robot{i} enrol {name}"):
                        self.ledger.enrolled(name)
                        acks.append(acked)
            threads = [threading.Thread(target=enrol, args=(i,)) for i in self.robots]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def same() -> bool:  # every node lists every name of the round, with one digest
                answers = [self.probe.call(i, ListFaces.Request())[0] for i in self.robots]
                return (len({a.gallery_digest for a in answers}) == 1
                        and names <= set(answers[0].names))
            agreed = wait_until(same, step=0.01)
            if agreed is None:
                self.fail(f"round {k}: the galleries did not agree")
            else:
                self.report.concurrent_s.append(agreed - max(acks))

    def newcomer(self) -> None:
        i = len(self.robots)
        target = self.probe.digest_of(self.robots[0])
        self.fleet.start(i, fresh=True)
        self.robots.append(i)
        done = wait_until(lambda: self.all_hold(target), timeout=120)
        if done is None:
            self.fail("the node started last did not get everything")
        else:
            self.report.newcomer_s = done - self.fleet.started[i]
            self.report.newcomer_sync_s = done - self.fleet.sync_started(i)

    def finish(self) -> None:
        time.sleep(2 * self.fleet.period)  # a last digest round
        codes = self.fleet.stop_all()
        for i, code in codes.items():
            if code:
                self.fail(f"robot{i} exited with {code}")
        files = {i: file_digest(self.fleet.gallery(i)) for i in self.robots}
        self.report.identical_files = len({d for d, _ in files.values()}) == 1
        for i, (_, people) in files.items():
            self.report.lost += [f"robot{i}: {n} ({c} expected, {people.get(n)} on file)"
                                 for n, c in self.ledger.expected.items() if people.get(n) != c]
            self.report.back += [f"robot{i}: {n}" for n in people if n in self.ledger.forgotten]
            text = self.fleet.gallery(i).read_bytes()
            self.report.back += [f"robot{i}'s file holds the text {n!r}"
                                 for n in self.ledger.forgotten
                                 if f"\"{n}\"".encode() in text and n not in self.ledger.expected]


@contextlib.contextmanager
def fastdds_profile(path: Path | None) -> Iterator[None]:
    """Every process started inside (the nodes, and this one's probe) uses this Fast DDS
    profile (None: Fast DDS's defaults), as the launch files do."""
    old = os.environ.pop(PROFILE_VARIABLE, None)
    if path is not None:
        os.environ[PROFILE_VARIABLE] = str(path)
    try:
        yield
    finally:
        os.environ.pop(PROFILE_VARIABLE, None)
        if old is not None:
            os.environ[PROFILE_VARIABLE] = old


def run(workdir: Path, nodes: int = 3, people: int = 1000, trials: int = 20, rounds: int = 5,
        frames: bool = True, period: float = 1.0, progress=lambda _: None,
        profile: Path | None = LARGE_FRAMES) -> Report:
    with fastdds_profile(profile):
        return _run(workdir, nodes, people, trials, rounds, frames, period, progress)


def _run(workdir: Path, nodes: int, people: int, trials: int, rounds: int, frames: bool,
         period: float, progress) -> Report:
    r = Run(workdir, nodes, people, frames, period, progress)
    try:
        r.start()
        progress(f"{nodes} nodes up in {r.report.startup_s:.1f} s")
        r.convergence(trials)
        progress("convergence done")
        r.catch_up()
        progress("catch-up done")
        r.concurrency(rounds)
        progress("concurrency done")
        r.newcomer()
        progress("newcomer done")
        r.finish()
    finally:
        r.fleet.stop_all()
        r.probe.close()
    return r.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--period", type=float, default=1.0, help="gallery.sync_period")
    parser.add_argument("--no-frames", dest="frames", action="store_false",
                        help="time convergence by digests only (no camera, no recognition)")
    parser.add_argument("--profile", default=str(LARGE_FRAMES),
                        help="Fast DDS profile for every process ('none': Fast DDS defaults)")
    args = parser.parse_args(argv)
    profile = None if args.profile == "none" else Path(args.profile).resolve()
    print(f"Fast DDS profile: {profile or 'none (defaults)'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sync_fleet_") as tmp:
        report = run(Path(tmp), args.nodes, args.people, args.trials, args.rounds, args.frames,
                     args.period, progress=lambda text: print(text, flush=True),
                     profile=profile)
    print(report.table())
    print("PASS" if report.ok else "FAIL")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
