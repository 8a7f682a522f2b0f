"""The gallery file: format, hardened loader, atomic saves, and one truth shared by its writers.

The file is a plain ``.npz`` (no pickles) holding ``embeddings`` (M, D) float32, ``owners`` (M,)
person index per row and ``meta`` (UTF-8 JSON as uint8). Saves are atomic (temp file + fsync +
os.replace + directory fsync) so a crash, even SIGKILL or power loss, leaves the old or the new
file, mode 0600.

A :class:`GalleryStore` binds one :class:`~.gallery.Gallery` to one file and keeps every
acknowledged change:
- :meth:`GalleryStore.commit` applies a change and saves it as one step. When the save fails
  the change is undone and :class:`GalleryNotSaved` raised, so success always means on disk.
- Several processes may write the same file (two nodes, a node and the ``face-recog`` CLI).
  Writers take an advisory lock (``.<name>.lock`` beside the file) and, when the file changed
  since this store last read or wrote it, merge those changes in before writing
  (:meth:`~.gallery.Gallery.merge`). :meth:`GalleryStore.reload` merges the same way for
  readers that poll. The store remembers the identity and digest of what it wrote under the
  same lock as the write, so its own saves are never mistaken for someone else's.
- The path must be a regular file (or absent): a FIFO, a device or a directory is refused
  without being opened for reading, so it can neither hang nor flood memory.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import secrets
import stat
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np

from .gallery import (DEFAULT_MAX_SAMPLES_PER_PERSON, Gallery, InvalidName, Person, frozen_rows,
                      validate_name)

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

T = TypeVar("T")


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


class GalleryNotSaved(GalleryError):
    """A change could not be written; it was undone, so memory and file still agree."""


@dataclass(frozen=True)
class _FileSig:
    device: int
    inode: int
    size: int
    mtime_ns: int


@dataclass
class _Synced:
    """What this store last read or wrote: the base of the next merge."""

    sig: _FileSig | None  # None: the file did not exist
    digest: str | None
    revs: dict[str, str] = field(default_factory=dict)


class GalleryStore:
    """One gallery file and the in-memory gallery it holds; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()  # one save/reload at a time in this process
        self._synced: _Synced | None = None  # None: never read or written by this store
        self._bad_sig: _FileSig | None = None  # an unusable file already reported by reload()

    # ------------------------------------------------------------------ opening
    def load(self, embedding_space: str, dim: int, *,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON) -> Gallery:
        """Read the file made by model ``embedding_space``/``dim``.

        Raises FileNotFoundError/OSError for I/O problems, and :class:`GalleryCorrupt`,
        :class:`GalleryMismatch`, :class:`GalleryVersionError` or :class:`GalleryNotRegular` for
        unusable contents. Samples above ``max_samples_per_person`` in the file are kept until
        that person changes.
        """
        gallery = Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person)
        with self._lock:
            data, sig = _read_regular(self.path)
            people, created_at, updated_at = _decode(self.path, data, embedding_space, int(dim))
            gallery.load_records(people, created_at, updated_at)
            self._synced = _Synced(sig, _digest(data), _revs(people))
        return gallery

    def open(self, embedding_space: str, dim: int, *, move_aside_bad: bool = True,
             max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
             ) -> tuple[Gallery, str | None]:
        """Load the file or start empty; returns ``(gallery, warning or None)``.

        A missing file gives an empty gallery. An unusable one (corrupt, other model, newer
        format) is renamed to ``<path>.bad-<UTC time>`` - never modified or deleted - and an
        empty gallery is returned with a warning naming both paths; with
        ``move_aside_bad=False`` the :class:`GalleryError` is raised instead. A path that is not
        a regular file raises :class:`GalleryNotRegular` either way. Stale temp files left by
        crashed saves are removed first.
        """
        _remove_stale_temps(self.path)
        try:
            return self.load(embedding_space, dim, max_samples_per_person=max_samples_per_person), None
        except FileNotFoundError:
            warning = None
        except GalleryNotRegular:
            raise
        except GalleryError as err:
            if not move_aside_bad:
                raise
            bad = _move_aside(self.path)
            warning = (f"gallery {self.path} could not be used ({err}); moved it to {bad} and started an "
                       f"empty gallery. Nothing was deleted: restore it by moving {bad} back to {self.path}.")
        self._synced = _Synced(None, None)
        return Gallery(embedding_space, dim, max_samples_per_person=max_samples_per_person), warning

    # ------------------------------------------------------------------ writing
    def save(self, gallery: Gallery) -> None:
        """Write ``gallery`` (after merging changes another process wrote since we last synced)."""
        self.commit(gallery, lambda: None)

    def commit(self, gallery: Gallery, change: Callable[[], T]) -> T:
        """Run ``change`` (a mutation of ``gallery``) and save the result as one step.

        Under this store's lock and the file's writers' lock: take in what other writers saved,
        apply the change, write. If the write fails (read-only folder, full disk, ...), the
        change is undone and :class:`GalleryNotSaved` names the reason; exceptions from
        ``change`` itself (bad name, unknown person) pass through with nothing changed.
        """
        with self._lock, _writers_lock(self.path):
            if self._synced is not None:
                self._take_in_outside_changes(gallery)
            before = gallery.checkpoint()
            result = change()
            try:
                self._write(gallery)
            except OSError as exc:
                gallery.restore(before)
                raise GalleryNotSaved(f"the gallery {self.path} could not be saved "
                                      f"({exc.strerror or exc}); the change was undone") from None
            return result

    def _write(self, gallery: Gallery) -> None:
        state = gallery.checkpoint()
        directory = self.path.parent
        os.makedirs(directory, mode=0o700, exist_ok=True)
        current = _stat_regular(self.path)
        if current is not None and current == self._bad_sig:
            _move_aside(self.path)  # a bad file reload() reported: kept for the user, not replaced
        meta = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION,
            "embedding_space": gallery.embedding_space, "dim": gallery.dim,
            "created_at": state.created_at, "updated_at": state.updated_at,
            "people": [{"name": n, "samples": p.embeddings.shape[0], "enrolled_at": p.enrolled_at,
                        "updated_at": p.updated_at, "rev": p.rev} for n, p in state.people.items()],
        }
        if state.people:
            matrix = np.concatenate([p.embeddings for p in state.people.values()])
        else:
            matrix = np.zeros((0, gallery.dim), np.float32)
        owners = np.repeat(np.arange(len(state.people), dtype=np.int32),
                           [p.embeddings.shape[0] for p in state.people.values()])
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=matrix, owners=owners,
                 meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8))
        data = buffer.getvalue()
        tmp = directory / f"{_temp_prefix(self.path)}{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                sig = _sig(os.fstat(f.fileno()))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)
        self._synced = _Synced(sig, _digest(data), _revs(state.people))
        self._bad_sig = None

    # ------------------------------------------------------------------ reading others' changes
    def reload(self, gallery: Gallery) -> bool:
        """Take in changes another process saved to the file; True when ``gallery`` changed.

        Our own saves are recognised and skipped. Local changes are never dropped: the file is
        merged in, not swapped in. A missing file changes nothing. If the new file is unusable
        the :class:`GalleryError` is raised once and the current contents are kept (and the bad
        file moved aside before our next save replaces it).
        """
        with self._lock:
            return self._take_in_outside_changes(gallery)

    def _take_in_outside_changes(self, gallery: Gallery) -> bool:
        current = _stat_regular(self.path)
        synced = self._synced or _Synced(None, None)
        if current is None or current == synced.sig or current == self._bad_sig:
            return False
        data, sig = _read_regular(self.path)
        digest = _digest(data)
        if digest == synced.digest:  # same bytes (touched, copied back): nothing new
            self._synced = _Synced(sig, digest, synced.revs)
            return False
        try:
            people, created_at, updated_at = _decode(self.path, data, gallery.embedding_space, gallery.dim)
        except GalleryError:
            self._bad_sig = sig
            raise
        changed = gallery.merge(synced.revs, people, created_at=created_at, updated_at=updated_at)
        self._synced = _Synced(sig, digest, _revs(people))
        return changed


def load_gallery(path: str | os.PathLike[str], embedding_space: str, dim: int, *,
                 max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON) -> Gallery:
    """Read a gallery file once (see :meth:`GalleryStore.load`)."""
    return GalleryStore(path).load(embedding_space, dim, max_samples_per_person=max_samples_per_person)


def save_gallery(gallery: Gallery, path: str | os.PathLike[str]) -> None:
    """Write ``gallery`` to ``path`` atomically, replacing whatever the file held (a new store
    has no base to merge with)."""
    GalleryStore(path).save(gallery)


# ------------------------------------------------------------------ file helpers
def _sig(st: os.stat_result) -> _FileSig:
    return _FileSig(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _revs(people: dict[str, Person]) -> dict[str, str]:
    return {name: person.rev for name, person in people.items()}


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
    return GalleryNotRegular(f"gallery path {path} is {_kind(mode)}; it must be a regular file (or not "
                             "exist yet)")


def _stat_regular(path: Path) -> _FileSig | None:
    """The file's identity, None when absent; :class:`GalleryNotRegular` for anything special."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    return _sig(st)


def _read_regular(path: Path) -> tuple[bytes, _FileSig]:
    """Read the whole file through one descriptor so contents and identity agree.

    A special file is refused on its stat, before it is opened. O_NONBLOCK: a FIFO swapped in
    after the stat must not block the open; the fstat then refuses anything but a regular file
    before a byte is read, and the size is bounded.
    """
    if _stat_regular(path) is None:
        raise FileNotFoundError(errno.ENOENT, "no gallery file", str(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        if st.st_size > MAX_FILE_BYTES:
            raise GalleryCorrupt(f"gallery {path} is {st.st_size} bytes; no gallery is larger than "
                                 f"{MAX_FILE_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(st.st_size), _sig(st)  # bounded by the size checked above
    finally:
        os.close(fd)


@contextlib.contextmanager
def _writers_lock(path: Path) -> Iterator[None]:
    """Advisory lock shared by every process that writes ``path`` (``.<name>.lock`` beside it).

    Filesystems without flock (some network mounts) fall back to no lock: saves stay atomic,
    and concurrent writers there are merged on the next reload instead of at the save. A folder
    where the lock cannot be created (read-only, missing permission) cannot take the save either:
    the write then fails and the change is undone, so no lock is needed.
    """
    try:
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        fd = os.open(path.parent / f".{path.name}.lock",
                     os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _decode(path: Path, data: bytes, embedding_space: str, dim: int) -> tuple[dict[str, Person], str, str]:
    """Validate a file's bytes completely; returns (records in file order, created_at, updated_at)."""
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
            f"gallery {path} was made with embedding model {space!r} (dim {file_dim}), but the running "
            f"model is {embedding_space!r} (dim {dim}); embeddings of different models "
            "cannot be compared, so re-enrol or use a separate gallery file")
    people, embeddings, owners = meta.get("people"), arrays.get("embeddings"), arrays.get("owners")
    if not isinstance(people, list) or embeddings is None or owners is None:
        raise GalleryCorrupt(f"gallery {path} lacks people metadata, embeddings or owners")
    if (embeddings.dtype != np.float32 or embeddings.ndim != 2 or embeddings.shape[1] != dim
            or owners.ndim != 1 or owners.dtype.kind not in "iu" or owners.shape[0] != embeddings.shape[0]):
        raise GalleryCorrupt(f"gallery {path} has inconsistent arrays: embeddings {embeddings.dtype} "
                             f"{embeddings.shape}, owners {owners.dtype} {owners.shape}")
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
            rev = hashlib.sha256(rows.tobytes() + f"{name}|{enrolled_at}|{updated_at}".encode()).hexdigest()[:16]
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
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError, zlib.error,
            NotImplementedError) as err:  # zlib.error/NotImplementedError: bad or unknown compression
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
                raise GalleryCorrupt(f"gallery {path}: member {info.filename!r} claims {info.file_size} bytes "
                                     f"in a {len(data)}-byte file")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            nbytes = dtype.itemsize * math.prod(shape)
            if nbytes > info.file_size:
                raise GalleryCorrupt(f"gallery {path}: member {info.filename!r} claims shape {shape} of "
                                     f"{dtype} ({nbytes} bytes) but holds {info.file_size} bytes")


def _parse_meta(path: Path, meta: np.ndarray | None) -> dict:
    if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
        raise GalleryCorrupt(f"gallery {path} has no metadata")
    try:
        parsed = json.loads(meta.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # RecursionError: deep nesting
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


def _remove_stale_temps(path: Path) -> None:
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


def _move_aside(path: Path) -> str:
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
