"""The gallery file's format and the safe ways to read and replace it.

The file is a plain ``.npz`` (no pickles) holding ``embeddings`` (M, D) float32, ``owners`` (M,)
person index per row and ``meta`` (UTF-8 JSON as uint8). Reading is hardened: the path must be
a regular file (a FIFO, device or directory is refused without being opened for reading, so it
can neither hang nor flood memory), its size and every member's declared size are bounded
before anything is allocated, and every field is validated. Writing is atomic (temp file +
fsync + os.replace + directory fsync), so a crash, even SIGKILL or power loss, leaves the old
or the new file, mode 0600. Bad files are moved aside, never modified or deleted.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import secrets
import stat
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .model import Person, frozen_rows
from .names import InvalidName, validate_name

FORMAT_NAME = "face_recog_ros.gallery"
FORMAT_VERSION = 1  # "rev" per person was added within version 1: older readers ignore it
# Stored rows must be unit length to this tolerance; anything else means a damaged file.
_NORM_TOLERANCE = 1e-3
# A temp file older than this is stale even if its pid looks alive (pid reuse, other host).
_STALE_TEMP_AGE_S = 600.0
_MEMBERS = ("meta", "embeddings", "owners")
# A member may expand to at most this many times the file's size (our writer stores members
# uncompressed; this still admits a compressed copy but bounds a decompression bomb).
_MAX_EXPANSION = 16
# 10,000 people x 50 samples x 128 floats is 256 MB; anything past this is not a gallery.
MAX_FILE_BYTES = 1 << 30
_REV_CHARS = frozenset("0123456789abcdef")


class GalleryError(Exception):
    """A gallery file cannot be used."""


class GalleryCorrupt(GalleryError):
    """Truncated, not an npz, bad JSON, or arrays that disagree with the metadata."""


class GalleryMismatch(GalleryError):
    """The file was made by a different embedding model (space or dimension)."""


class GalleryVersionError(GalleryError):
    """The file uses a newer format than this code understands."""


class GalleryNotRegular(GalleryError):
    """The path is a FIFO, device, socket or directory: never read, never replaced."""


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


def encode(embedding_space: str, dim: int, people: Mapping[str, Person], created_at: str,
           updated_at: str) -> bytes:
    """The file's bytes for these records (the inverse of :func:`decode`)."""
    meta = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "embedding_space": embedding_space,
        "dim": dim, "created_at": created_at, "updated_at": updated_at,
        "people": [{"name": n, "samples": p.embeddings.shape[0], "enrolled_at": p.enrolled_at,
                    "updated_at": p.updated_at, "rev": p.rev} for n, p in people.items()],
    }
    if people:
        matrix = np.concatenate([p.embeddings for p in people.values()])
    else:
        matrix = np.zeros((0, dim), np.float32)
    owners = np.repeat(np.arange(len(people), dtype=np.int32),
                       [p.embeddings.shape[0] for p in people.values()])
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=matrix, owners=owners,
             meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8))
    return buffer.getvalue()


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


def decode(
    path: Path, data: bytes, embedding_space: str, dim: int
) -> tuple[dict[str, Person], str, str]:
    """Validate a file's bytes completely; returns (records in file order, created_at,
    updated_at)."""
    arrays = _parse_npz(path, data)
    meta = _parse_meta(path, arrays.get("meta"))
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise GalleryCorrupt(f"gallery {path} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise GalleryVersionError(
            f"gallery {path} uses format version {version}, but this face_recog_ros reads up to "
            f"version {FORMAT_VERSION}; upgrade face_recog_ros to use it")
    space, file_dim = meta.get("embedding_space"), meta.get("dim")
    if space != embedding_space or file_dim != dim:
        raise GalleryMismatch(
            f"gallery {path} was made with embedding model {space!r} (dim {file_dim}), but the "
            "running "
            f"model is {embedding_space!r} (dim {dim}); embeddings of different models "
            "cannot be compared, so re-enrol or use a separate gallery file"
        )
    people, embeddings, owners = meta.get("people"), arrays.get("embeddings"), arrays.get("owners")
    if not isinstance(people, list) or embeddings is None or owners is None:
        raise GalleryCorrupt(f"gallery {path} lacks people metadata, embeddings or owners")
    if (
        embeddings.dtype != np.float32
        or embeddings.ndim != 2
        or embeddings.shape[1] != dim
        or owners.ndim != 1
        or owners.dtype.kind not in "iu"
        or owners.shape[0] != embeddings.shape[0]
    ):
        raise GalleryCorrupt(
            f"gallery {path} has inconsistent arrays: embeddings {embeddings.dtype} "
            f"{embeddings.shape}, owners {owners.dtype} {owners.shape}"
        )
    if embeddings.size and not np.all(np.isfinite(embeddings)):
        raise GalleryCorrupt(f"gallery {path} contains NaN or infinite embeddings")
    norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
    if np.any(np.abs(norms - 1.0) > _NORM_TOLERANCE):
        raise GalleryCorrupt(f"gallery {path} contains embeddings that are not unit length")
    if owners.size and (owners.min() < 0 or owners.max() >= len(people)):
        raise GalleryCorrupt(f"gallery {path} has owner indices outside its {len(people)} people")
    counts = np.bincount(owners.astype(np.intp), minlength=len(people)) if owners.size else \
        np.zeros(len(people), dtype=np.intp)
    order = np.argsort(owners, kind="stable")
    grouped = np.split(embeddings[order], np.cumsum(counts)[:-1]) if len(people) else []
    records: dict[str, Person] = {}
    for index, entry in enumerate(people):
        try:
            name, samples = entry["name"], entry["samples"]
            enrolled_at, updated_at = str(entry["enrolled_at"]), str(entry["updated_at"])
        except (TypeError, KeyError) as err:
            raise GalleryCorrupt(f"gallery {path} has a malformed person entry #{index}") from err
        try:
            canonical = validate_name(name)
        except InvalidName as err:
            raise GalleryCorrupt(f"gallery {path} has an invalid name: {err}") from err
        if canonical != name or name in records:
            raise GalleryCorrupt(f"gallery {path} has a duplicate or non-canonical name {name!r}")
        if type(samples) is not int or samples != counts[index] or samples < 1:
            raise GalleryCorrupt(f"gallery {path}: {name!r} should have {samples!r} samples, "
                                 f"the arrays hold {int(counts[index])}")
        rows = frozen_rows(grouped[index])
        rev = entry.get("rev")
        if not (isinstance(rev, str) and 0 < len(rev) <= 32 and set(rev) <= _REV_CHARS):
            # Files written before revisions: the same bytes give the same revision everywhere.
            rev = hashlib.sha256(
                rows.tobytes() + f"{name}|{enrolled_at}|{updated_at}".encode()
            ).hexdigest()[:16]
        records[name] = Person(rows, enrolled_at, updated_at, rev)
    return records, str(meta.get("created_at", "")), str(meta.get("updated_at", ""))


def _parse_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    if not data.startswith(b"PK"):
        raise GalleryCorrupt(f"gallery {path} is not an npz archive ({len(data)} bytes)")
    try:
        _check_member_sizes(path, data)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            # Only the members we know: an unexpected huge member is never decompressed.
            return {key: npz[key] for key in _MEMBERS if key in npz.files}
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        KeyError,
        RuntimeError,
        zlib.error,
        NotImplementedError,
    ) as err:  # zlib.error/NotImplementedError: bad or unknown compression
        raise GalleryCorrupt(f"gallery {path} is damaged or truncated: {err}") from err


def _check_member_sizes(path: Path, data: bytes) -> None:
    """Refuse a member whose .npy header claims more data than the member holds, before numpy
    allocates the array: a damaged or hostile header must not cost gigabytes (or MemoryError)."""
    limit = max(_MAX_EXPANSION * len(data), 1 << 20)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.filename.removesuffix(".npy") not in _MEMBERS:
                continue
            if info.file_size > limit:
                raise GalleryCorrupt(
                    f"gallery {path}: member {info.filename!r} claims {info.file_size} bytes "
                    f"in a {len(data)}-byte file"
                )
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            nbytes = dtype.itemsize * math.prod(shape)
            if nbytes > info.file_size:
                raise GalleryCorrupt(
                    f"gallery {path}: member {info.filename!r} claims shape {shape} of "
                    f"{dtype} ({nbytes} bytes) but holds {info.file_size} bytes"
                )


def _parse_meta(path: Path, meta: np.ndarray | None) -> dict:
    if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
        raise GalleryCorrupt(f"gallery {path} has no metadata")
    try:
        parsed = json.loads(meta.tobytes().decode("utf-8"))
    except (
        UnicodeDecodeError,
        json.JSONDecodeError,
        RecursionError,
    ) as err:  # RecursionError: deep nesting
        raise GalleryCorrupt(f"gallery {path} has unreadable metadata: {err}") from err
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT_NAME:
        raise GalleryCorrupt(f"gallery {path} is not a {FORMAT_NAME} file")
    return parsed


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


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of saves that died: their pid is gone, or they are very old."""
    prefix = _temp_prefix(path)
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        full = path.parent / entry
        try:
            pid = int(entry[len(prefix):].split("-", 1)[0])
            stale = pid != os.getpid() and not _pid_alive(pid)
            stale = stale or now - os.stat(full).st_mtime > _STALE_TEMP_AGE_S
            if stale:
                os.unlink(full)
        except (ValueError, OSError):
            continue


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
