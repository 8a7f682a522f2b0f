"""success means saved, at the node level: when the gallery folder turns read-only or the disk
fills up, ~/forget, ~/rename and ~/enroll answer success=false with a one-line reason, the
change is undone in memory (~/list_faces unchanged), nothing is logged as a traceback, and
the node saves again once the fault is gone.

The faults are real: the node runs in a mount namespace of its own (unshare) with a small tmpfs
as its gallery folder, remounted read-only or filled up to ENOSPC from outside (nsenter,
/proc/<pid>/root). That needs root (CAP_SYS_ADMIN), since chmod does not stop root. As another
user, the read-only case uses chmod and the full-disk case is skipped.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_tool

from face_recog_interfaces.srv import Forget, ListFaces, Rename

soak_node = load_tool("soak_node")
SPACE, DIM = soak_node.SPACE, soak_node.DIM


def namespaces_usable() -> bool:
    """Root with unshare, nsenter and the right to mount a tmpfs in a new mount namespace."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        return False
    probe = subprocess.run(["unshare", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


NAMESPACES = namespaces_usable()


class Folder:
    """The node's gallery folder and the faults that can be put on it."""

    def __init__(self, path: Path, confined: bool) -> None:
        self.path, self.confined = path, confined
        self.pid = 0  # the node's, once started

    def prefix(self) -> list[str]:
        """The node's start command prefix: a 1 MB tmpfs on the folder in its own namespace."""
        if not self.confined:
            return []
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'mount -t tmpfs -o size=1m,mode=0700 tmpfs "{self.path}" && exec "$@"', "sh"]

    def seen(self, name: str) -> Path:
        """A file in the folder as the node sees it (its mount namespace)."""
        return Path(f"/proc/{self.pid}/root{self.path}/{name}") if self.confined else (
            self.path / name)

    def read_only(self, on: bool) -> None:
        if self.confined:
            subprocess.run(["nsenter", "--target", str(self.pid), "--mount", "mount", "-o",
                            f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True)
        else:
            self.path.chmod(stat.S_IRUSR | stat.S_IXUSR if on else stat.S_IRWXU)

    def full(self, on: bool) -> None:
        filler = self.seen("filler")
        if not on:
            filler.unlink()
            return
        with open(filler, "wb", buffering=0) as f:  # unbuffered: close() has nothing to flush
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


@pytest.fixture
def folder(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Folder]:
    path = tmp_path / "galleries"
    path.mkdir()
    if request.param == "full" and not NAMESPACES:
        pytest.skip("filling a disk needs a tmpfs of its own: root (CAP_SYS_ADMIN) and unshare")
    if request.param == "read_only" and not NAMESPACES and os.geteuid() == 0:
        pytest.skip("root ignores chmod, and no mount namespace is available here")
    folder = Folder(path, NAMESPACES)
    folder.fault = request.param
    yield folder
    if not NAMESPACES:
        path.chmod(stat.S_IRWXU)


def listed(client) -> list[str]:
    response, _ = client.call(ListFaces.Request(), timeout=10)
    return list(response.names)


@pytest.mark.parametrize("folder", ["read_only", "full"], indirect=True)
def test_failed_saves_are_refused_and_undone(tmp_path: Path, folder: Folder) -> None:
    domain = soak_node.run_domain()
    node = soak_node.NodeProcess(tmp_path, folder.path / "gallery.npz", domain,
                                 command_prefix=folder.prefix(), publish_annotated="false")
    folder.pid = node.pid
    client = soak_node.Client(domain)
    fault = getattr(folder, folder.fault)
    try:
        client.wait_ready(node)
        for name, photo in (("ada", "astronaut"), ("grace", "grace_hopper")):
            answer, _ = client.call(soak_node.enroll_request(name, photo), timeout=30)
            assert answer.success, answer.message
        saved = folder.seen("gallery.npz").read_bytes()
        fault(True)
        answers = {
            "forget": client.call(Forget.Request(name="ada"), timeout=10)[0],
            "rename": client.call(Rename.Request(old_name="grace", new_name="g2"), timeout=10)[0],
            "enroll": client.call(soak_node.enroll_request("eve", "astronaut"), timeout=30)[0],
        }
        for kind, answer in answers.items():
            print(f"{folder.fault} {kind}: {answer.success} {answer.message!r}")
            assert not answer.success, kind
            assert "could not be saved" in answer.message, answer.message
            assert "internal error" not in answer.message and "\n" not in answer.message
        assert listed(client) == ["ada", "grace"]  # every change undone in memory
        assert folder.seen("gallery.npz").read_bytes() == saved  # and the file untouched
        assert not [p for p in folder.seen("").iterdir() if ".tmp-" in p.name]  # no half file
        fault(False)
        answer, _ = client.call(Forget.Request(name="ada"), timeout=10)
        assert answer.success, answer.message  # saving works again
        assert listed(client) == ["grace"]
        assert {p.name for p in soak_node.load_gallery(
            folder.seen("gallery.npz"), SPACE, DIM).people()} == {"grace"}
        assert "Traceback" not in node.log()
    finally:
        client.close()
        node.stop()
