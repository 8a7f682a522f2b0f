"""Safe ways to read and replace a gallery file, whatever is at its path.

Reading: the path must be a regular file (a FIFO, device or directory is refused without being
opened for reading, so it can neither hang nor flood memory) and its size is bounded before
anything is read. Writing is atomic (temp file + fsync + os.replace + directory fsync), so a
crash, even SIGKILL or power loss, leaves the old or the new file, mode 0600. Unusable files
are moved aside to ``<path>.bad-<UTC time>``. What is in the bytes is :mod:`.file_format`.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import GalleryCorrupt, GalleryError, GalleryNotRegular

# A temp file older than this is stale even if its pid looks alive (pid reuse, other host).
_STALE_TEMP_AGE_S = 600.0
# 10,000 people x 50 samples x 128 floats is 256 MB; anything past this is not a gallery.
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class FileSig:
    device: int
    inode: int
    size: int
    mtime_ns: int


def file_sig(st: os.stat_result) -> FileSig:
    return FileSig(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path: Path, mode: int) -> GalleryNotRegular:
    return GalleryNotRegular(
        f"gallery path {path} is {_kind(mode)}; it must be a regular file (or not exist yet)"
    )


def stat_regular(path: Path) -> FileSig | None:
    """The file's identity, None when absent; :class:`GalleryNotRegular` for anything special."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    return file_sig(st)


def read_regular(path: Path) -> tuple[bytes, FileSig]:
    """Read the whole file through one descriptor so contents and identity agree.

    A special file is refused on its stat, before it is opened. O_NONBLOCK: a FIFO swapped in
    after the stat must not block the open; the fstat then refuses anything but a regular file
    before a byte is read, and the size is bounded.
    """
    if stat_regular(path) is None:
        raise FileNotFoundError(errno.ENOENT, "no gallery file", str(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        if st.st_size > MAX_FILE_BYTES:
            raise GalleryCorrupt(
                f"gallery {path} is {st.st_size} bytes; no gallery is larger than "
                f"{MAX_FILE_BYTES} bytes"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(st.st_size), file_sig(st)  # bounded by the size checked above
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> FileSig:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file (mode 0600);
    returns the new file's identity."""
    directory = path.parent
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = directory / f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            sig = file_sig(os.fstat(f.fileno()))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return sig


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some filesystems (e.g. FAT, some network mounts) refuse."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: Path, *, all_of_them: bool = False) -> list[Path]:
    """Delete temp files of saves that died (their pid is gone, or they are very old); with
    ``all_of_them``, every temp file of ``path`` (for a caller that holds the writers' lock, so
    no save is in flight). Returns what was deleted."""
    prefix = _temp_prefix(path)
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return []
    now, removed = time.time(), []
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        full = path.parent / entry
        try:
            pid = int(entry[len(prefix):].split("-", 1)[0])
            stale = all_of_them or (pid != os.getpid() and not _pid_alive(pid))
            stale = stale or now - os.stat(full).st_mtime > _STALE_TEMP_AGE_S
            if stale:
                os.unlink(full)
                removed.append(full)
        except (ValueError, OSError):
            continue
    return removed


def moved_aside(path: Path) -> list[Path]:
    """The files :func:`move_aside` made for ``path`` (``<path>.bad-*``), oldest name first."""
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return []
    prefix = f"{path.name}.bad-"
    return sorted(path.parent / e for e in entries if e.startswith(prefix))


def move_aside(path: Path) -> str:
    """Rename a bad gallery to ``<path>.bad-<UTC time>[-n]``, never overwriting anything."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1000):
        bad = f"{path}.bad-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            os.link(path, bad)  # fails if ``bad`` exists: no overwrite race
        except FileExistsError:
            continue
        except OSError:  # filesystem without hard links (FAT on SD cards)
            if os.path.lexists(bad):
                continue
            os.rename(path, bad)
            return bad
        os.unlink(path)
        return bad
    raise GalleryError(f"could not find a free name to move {path} aside")
