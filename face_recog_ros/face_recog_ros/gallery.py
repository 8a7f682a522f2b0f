"""Enrolled-faces store: names -> L2-normalised embeddings (never images), persisted in one file.

The file is a plain ``.npz`` (no pickles) holding ``embeddings`` (M, D) float32, ``owners`` (M,)
person index per row and ``meta`` (UTF-8 JSON as uint8). Saves are atomic (temp file + fsync +
os.replace + directory fsync) so a crash, even SIGKILL or power loss, leaves the old or the new
file. Several processes may share the file: writers replace it whole, readers poll
:meth:`Gallery.reload_if_changed`. Concurrent *writers* are last-writer-wins.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import secrets
import threading
import time
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from .types import UNKNOWN

FORMAT_NAME = "face_recog_ros.gallery"
FORMAT_VERSION = 1
MAX_NAME_LENGTH = 64
DEFAULT_MAX_SAMPLES_PER_PERSON = 50
# Stored rows must be unit length to this tolerance; anything else means a damaged file.
_NORM_TOLERANCE = 1e-3
# A temp file older than this is stale even if its pid looks alive (pid reuse, other host).
_STALE_TEMP_AGE_S = 600.0
_RESERVED_AUTO = re.compile(r"unknown_\d+")
_MEMBERS = ("meta", "embeddings", "owners")
# A member may expand to at most this many times the file's size (our writer stores members
# uncompressed; this still admits a compressed copy but bounds a decompression bomb).
_MAX_EXPANSION = 16


class InvalidName(ValueError):
    """A person name that cannot be used as a label."""


class UnknownPerson(KeyError):
    """The name is not enrolled."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else "unknown person"


class NameTaken(ValueError):
    """Renaming onto a name that is already enrolled without ``merge=True``."""


class GalleryError(Exception):
    """A gallery file cannot be used."""


class GalleryCorrupt(GalleryError):
    """Truncated, not an npz, bad JSON, or arrays that disagree with the metadata."""


class GalleryMismatch(GalleryError):
    """The file was made by a different embedding model (space or dimension)."""


class GalleryVersionError(GalleryError):
    """The file uses a newer format than this code understands."""


@dataclass(frozen=True)
class PersonInfo:
    name: str
    samples: int
    enrolled_at: str  # UTC ISO 8601
    updated_at: str  # UTC ISO 8601
    alignment: str = ""  # how the samples' faces were aligned ("" = not recorded, "mixed")


@dataclass(frozen=True)
class Snapshot:
    """A consistent, read-only view for matching; rows of ``matrix`` are grouped by person.

    ``starts[p]`` is the first row of person ``p`` (what ``np.maximum.reduceat`` needs), and
    ``owners[r]`` the person of row ``r``. Taken under the gallery lock, so a concurrent
    enrol/forget cannot make names and rows disagree.
    """

    names: tuple[str, ...]
    matrix: np.ndarray  # (M, D) float32, C-contiguous, read-only
    owners: np.ndarray  # (M,) intp, read-only
    starts: np.ndarray  # (P,) intp, read-only
    generation: int  # increments on every change of the gallery


def validate_name(name: str) -> str:
    """Return the canonical form of ``name`` (stripped, NFC) or raise :class:`InvalidName`.

    Names are labels, never paths, and must not collide with labels the system emits itself.
    """
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, got {type(name).__name__}")
    canonical = unicodedata.normalize("NFC", name.strip())
    if not canonical:
        raise InvalidName("name is empty")
    if len(canonical) > MAX_NAME_LENGTH:
        raise InvalidName(f"name is {len(canonical)} characters long; the limit is {MAX_NAME_LENGTH}")
    for ch in canonical:
        if ch in "/\\":
            raise InvalidName(f"name {canonical!r} contains {ch!r}; names are labels, not paths")
        if ch == "\x00" or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise InvalidName(f"name {canonical!r} contains control character {ch!r}")
    if canonical in (".", ".."):
        raise InvalidName(f"name {canonical!r} is not allowed")
    folded = canonical.casefold()
    if folded == UNKNOWN or _RESERVED_AUTO.fullmatch(folded):
        raise InvalidName(f"name {canonical!r} is reserved for unrecognised faces")
    return canonical


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _lookup_key(name: str) -> str:
    """Canonicalise a name for lookup without rejecting it (lookups of bad names just miss)."""
    return unicodedata.normalize("NFC", name.strip()) if isinstance(name, str) else ""


@dataclass
class _Person:
    embeddings: np.ndarray  # (k, D) float32, oldest first
    enrolled_at: str
    updated_at: str
    # Alignment method of the samples: the same embedding space, but samples aligned another
    # way match a little worse. "" = not recorded (enrolled before it was), "mixed" = several.
    alignment: str = ""


def _merged_alignment(a: str, b: str) -> str:
    return a if a == b else "mixed"


_FileSig = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _sig(st: os.stat_result) -> _FileSig:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Gallery:
    """People, each with several unit embeddings from one embedding model.

    Thread-safe: mutations and :meth:`snapshot` hold one lock, so a service callback may enrol
    while the image callback matches.
    """

    def __init__(
        self,
        embedding_space: str,
        dim: int,
        *,
        max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
    ) -> None:
        if not embedding_space:
            raise ValueError("embedding_space must be a non-empty model identifier")
        if int(dim) <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if max_samples_per_person is not None and int(max_samples_per_person) < 1:
            raise ValueError("max_samples_per_person must be >= 1 or None (unlimited)")
        self.embedding_space = str(embedding_space)
        self.dim = int(dim)
        self.max_samples_per_person = None if max_samples_per_person is None else int(max_samples_per_person)
        now = _utc_now()
        self.created_at = now
        self.updated_at = now
        self._people: dict[str, _Person] = {}
        self._lock = threading.RLock()
        self._generation = 0
        self._snapshot: Snapshot | None = None
        self._file_sig: dict[str, _FileSig] = {}

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _lookup_key(name) in self._people

    @property
    def num_samples(self) -> int:
        with self._lock:
            return sum(p.embeddings.shape[0] for p in self._people.values())

    def names(self) -> list[str]:
        """Names in person-index order (the order of ``Snapshot.names`` and ``owners()``)."""
        with self._lock:
            return list(self._people)

    def people(self) -> list[PersonInfo]:
        with self._lock:
            return [
                PersonInfo(name, p.embeddings.shape[0], p.enrolled_at, p.updated_at, p.alignment)
                for name, p in self._people.items()
            ]

    def aligned_otherwise(self, alignment: str) -> list[str]:
        """People with samples not (all) aligned by ``alignment``: re-enrolling them helps."""
        with self._lock:
            return [name for name, p in self._people.items() if p.alignment != alignment]

    def embeddings(self, name: str) -> np.ndarray:
        """A copy of one person's samples, oldest first."""
        with self._lock:
            return self._get(name).embeddings.copy()

    def snapshot(self) -> Snapshot:
        """Cached consistent view; rebuilt only after a change."""
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != self._generation:
                self._snapshot = self._build_snapshot()
            return self._snapshot

    def matrix(self) -> np.ndarray:
        """(M, D) float32 of all samples, grouped by person; read-only, cached."""
        return self.snapshot().matrix

    def owners(self) -> np.ndarray:
        """(M,) person index of each row of :meth:`matrix`; read-only, cached."""
        return self.snapshot().owners

    def _build_snapshot(self) -> Snapshot:
        counts = np.fromiter((p.embeddings.shape[0] for p in self._people.values()), dtype=np.intp,
                             count=len(self._people))
        if counts.size:
            matrix = np.ascontiguousarray(np.concatenate([p.embeddings for p in self._people.values()]))
        else:
            matrix = np.zeros((0, self.dim), dtype=np.float32)
        owners = np.repeat(np.arange(counts.size, dtype=np.intp), counts)
        starts = np.zeros(counts.size, dtype=np.intp)
        if counts.size:
            np.cumsum(counts[:-1], out=starts[1:])
        for a in (matrix, owners, starts):
            a.flags.writeable = False
        return Snapshot(tuple(self._people), matrix, owners, starts, self._generation)

    # --------------------------------------------------------------- mutations
    def add(self, name: str, embeddings: np.ndarray, *, overwrite: bool = False,
            alignment: str = "") -> int:
        """Enrol samples for ``name`` (appending unless ``overwrite``); returns its sample count.

        Rows are L2-normalised here. Beyond ``max_samples_per_person`` the oldest are dropped,
        so re-enrolling keeps the gallery current as a face changes. ``alignment`` records how
        the faces were aligned (the recognizer's alignment.method).
        """
        key = validate_name(name)
        rows = self._check_embeddings(embeddings)
        now = _utc_now()
        with self._lock:
            person = self._people.get(key)
            if person is None or overwrite:
                person = _Person(rows, now, now, alignment)
                self._people[key] = person
            else:
                person.embeddings = np.concatenate([person.embeddings, rows])
                person.updated_at = now
                person.alignment = _merged_alignment(person.alignment, alignment)
            self._cap(person)
            self._changed(now)
            return person.embeddings.shape[0]

    def remove(self, name: str) -> int:
        """Forget a person; returns how many samples were deleted."""
        with self._lock:
            person = self._get(name)
            del self._people[_lookup_key(name)]
            self._changed(_utc_now())
            return person.embeddings.shape[0]

    def rename(self, old: str, new: str, *, merge: bool = False) -> int:
        """Rename ``old`` to ``new``; returns the sample count under ``new``.

        Onto an existing name this raises :class:`NameTaken` unless ``merge``, in which case the
        samples are combined (``old``'s count as the most recent) and ``old`` disappears.
        The person keeps its index when not merging.
        """
        new_key = validate_name(new)
        with self._lock:
            person = self._get(old)
            old_key = _lookup_key(old)
            if new_key == old_key:
                return person.embeddings.shape[0]
            now = _utc_now()
            target = self._people.get(new_key)
            if target is None:
                self._people = {(new_key if k == old_key else k): v for k, v in self._people.items()}
                person.updated_at = now
                self._changed(now)
                return person.embeddings.shape[0]
            if not merge:
                raise NameTaken(f"cannot rename {old_key!r} to {new_key!r}: {new_key!r} is already enrolled "
                                "(use merge to combine them)")
            target.embeddings = np.concatenate([target.embeddings, person.embeddings])
            target.alignment = _merged_alignment(target.alignment, person.alignment)
            target.enrolled_at = min(target.enrolled_at, person.enrolled_at)
            target.updated_at = now
            self._cap(target)
            del self._people[old_key]
            self._changed(now)
            return target.embeddings.shape[0]

    def clear(self) -> None:
        with self._lock:
            self._people.clear()
            self._changed(_utc_now())

    def _get(self, name: str) -> _Person:
        person = self._people.get(_lookup_key(name))
        if person is None:
            raise UnknownPerson(f"{name!r} is not enrolled")
        return person

    def _cap(self, person: _Person) -> None:
        cap = self.max_samples_per_person
        if cap is not None and person.embeddings.shape[0] > cap:
            person.embeddings = np.ascontiguousarray(person.embeddings[-cap:])

    def _changed(self, now: str) -> None:
        self.updated_at = now
        self._generation += 1

    def _check_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        rows = np.asarray(embeddings)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape (N, {self.dim}) for {self.embedding_space!r}, "
                             f"got {np.shape(embeddings)}")
        if rows.shape[0] == 0:
            raise ValueError("no embeddings given")
        if not np.issubdtype(rows.dtype, np.number) or np.iscomplexobj(rows):
            raise ValueError(f"embeddings must be real numbers, got dtype {rows.dtype}")
        rows = rows.astype(np.float64)
        if not np.all(np.isfinite(rows)):
            raise ValueError("embeddings contain NaN or infinity")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if np.any(norms < 1e-12):
            raise ValueError("an embedding has zero length")
        return np.ascontiguousarray(rows / norms, dtype=np.float32)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the gallery atomically with mode 0600 (creating the directory, mode 0700)."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with self._lock:
            snap = self.snapshot()
            meta = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "embedding_space": self.embedding_space,
                "dim": self.dim,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "people": [
                    {"name": n, "samples": p.embeddings.shape[0], "enrolled_at": p.enrolled_at,
                     "updated_at": p.updated_at, **({"alignment": p.alignment} if p.alignment else {})}
                    for n, p in self._people.items()
                ],
            }
        meta_bytes = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
        tmp = os.path.join(directory, f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                np.savez(f, embeddings=snap.matrix, owners=snap.owners.astype(np.int32), meta=meta_bytes)
                f.flush()
                os.fsync(f.fileno())
                sig = _sig(os.fstat(f.fileno()))
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(directory)
        self._file_sig[os.path.abspath(path)] = sig

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        embedding_space: str,
        dim: int,
        *,
        max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
    ) -> Gallery:
        """Read a gallery made by model ``embedding_space``/``dim``.

        Raises FileNotFoundError/OSError for I/O problems, and :class:`GalleryCorrupt`,
        :class:`GalleryMismatch` or :class:`GalleryVersionError` for unusable contents.
        Samples above ``max_samples_per_person`` in the file are kept until that person changes.
        """
        path = os.fspath(path)
        data, sig = _read_file(path)
        gallery = cls(embedding_space, dim, max_samples_per_person=max_samples_per_person)
        gallery._fill_from(path, data)
        gallery._file_sig[os.path.abspath(path)] = sig
        return gallery

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        embedding_space: str,
        dim: int,
        *,
        move_aside_bad: bool = True,
        max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
    ) -> tuple[Gallery, str | None]:
        """Load ``path`` or start empty; returns ``(gallery, warning or None)``.

        A missing file gives an empty gallery. An unusable one (corrupt, other model, newer
        format) is renamed to ``<path>.bad-<UTC time>`` - never modified or deleted - and an
        empty gallery is returned with a warning naming both paths; with
        ``move_aside_bad=False`` the :class:`GalleryError` is raised instead.
        Stale temp files left by crashed saves are removed first.
        """
        path = os.fspath(path)
        _remove_stale_temps(path)
        try:
            return cls.load(path, embedding_space, dim, max_samples_per_person=max_samples_per_person), None
        except FileNotFoundError:
            return cls(embedding_space, dim, max_samples_per_person=max_samples_per_person), None
        except GalleryError as err:
            if not move_aside_bad:
                raise
            bad = _move_aside(path)
            warning = (f"gallery {path} could not be used ({err}); moved it to {bad} and started an empty "
                       f"gallery. Nothing was deleted: restore it by moving {bad} back to {path}.")
            return cls(embedding_space, dim, max_samples_per_person=max_samples_per_person), warning

    def reload_if_changed(self, path: str | os.PathLike[str]) -> bool:
        """Re-read ``path`` if another process replaced it since we last loaded/saved it.

        Returns True when the contents were replaced (unsaved local changes are dropped: save
        after every change). A missing file changes nothing. If the new file is unusable the
        :class:`GalleryError` is raised once and the current contents are kept until the file
        changes again.
        """
        path = os.fspath(path)
        key = os.path.abspath(path)
        try:
            sig = _sig(os.stat(path))
        except FileNotFoundError:
            return False
        if self._file_sig.get(key) == sig:
            return False
        data, sig = _read_file(path)
        fresh = type(self)(self.embedding_space, self.dim, max_samples_per_person=self.max_samples_per_person)
        try:
            fresh._fill_from(path, data)
        finally:
            self._file_sig[key] = sig
        with self._lock:
            self._people = fresh._people
            self.created_at, self.updated_at = fresh.created_at, fresh.updated_at
            self._generation += 1
        return True

    def _fill_from(self, path: str, data: bytes) -> None:
        arrays = _parse_npz(path, data)
        meta = _parse_meta(path, arrays.get("meta"))
        version = meta.get("version")
        if type(version) is not int or version < 1:
            raise GalleryCorrupt(f"gallery {path} has an invalid format version {version!r}")
        if version > FORMAT_VERSION:
            raise GalleryVersionError(
                f"gallery {path} uses format version {version}, but this face_recog_ros reads up to "
                f"version {FORMAT_VERSION}; upgrade face_recog_ros to use it")
        space, dim = meta.get("embedding_space"), meta.get("dim")
        if space != self.embedding_space or dim != self.dim:
            raise GalleryMismatch(
                f"gallery {path} was made with embedding model {space!r} (dim {dim}), but the running "
                f"model is {self.embedding_space!r} (dim {self.dim}); embeddings of different models "
                "cannot be compared, so re-enrol or use a separate gallery file")
        people, embeddings, owners = meta.get("people"), arrays.get("embeddings"), arrays.get("owners")
        if not isinstance(people, list) or embeddings is None or owners is None:
            raise GalleryCorrupt(f"gallery {path} lacks people metadata, embeddings or owners")
        if (embeddings.dtype != np.float32 or embeddings.ndim != 2 or embeddings.shape[1] != self.dim
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
        for index, entry in enumerate(people):
            try:
                name, samples = entry["name"], entry["samples"]
                enrolled_at, updated_at = str(entry["enrolled_at"]), str(entry["updated_at"])
                alignment = entry.get("alignment", "")  # absent in files written before it was recorded
            except (TypeError, KeyError, AttributeError) as err:
                raise GalleryCorrupt(f"gallery {path} has a malformed person entry #{index}") from err
            if not isinstance(alignment, str):
                raise GalleryCorrupt(f"gallery {path}: {name!r} has a non-text alignment {alignment!r}")
            try:
                canonical = validate_name(name)
            except InvalidName as err:
                raise GalleryCorrupt(f"gallery {path} has an invalid name: {err}") from err
            if canonical != name or name in self._people:
                raise GalleryCorrupt(f"gallery {path} has a duplicate or non-canonical name {name!r}")
            if type(samples) is not int or samples != counts[index] or samples < 1:
                raise GalleryCorrupt(f"gallery {path}: {name!r} should have {samples!r} samples, "
                                     f"the arrays hold {int(counts[index])}")
            self._people[name] = _Person(np.ascontiguousarray(grouped[index]), enrolled_at, updated_at,
                                         alignment)
        self.created_at = str(meta.get("created_at", self.created_at))
        self.updated_at = str(meta.get("updated_at", self.updated_at))
        self._generation += 1


# ------------------------------------------------------------------ file helpers
def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def _read_file(path: str) -> tuple[bytes, _FileSig]:
    """Read the whole file through one descriptor so contents and signature agree."""
    with open(path, "rb") as f:
        sig = _sig(os.fstat(f.fileno()))
        return f.read(), sig


def _parse_npz(path: str, data: bytes) -> dict[str, np.ndarray]:
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


def _check_member_sizes(path: str, data: bytes) -> None:
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


def _parse_meta(path: str, meta: np.ndarray | None) -> dict:
    if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
        raise GalleryCorrupt(f"gallery {path} has no metadata")
    try:
        parsed = json.loads(meta.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # RecursionError: deep nesting
        raise GalleryCorrupt(f"gallery {path} has unreadable metadata: {err}") from err
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT_NAME:
        raise GalleryCorrupt(f"gallery {path} is not a {FORMAT_NAME} file")
    return parsed


def _fsync_dir(directory: str) -> None:
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


def _remove_stale_temps(path: str) -> None:
    """Delete temp files of saves that died: their pid is gone, or they are very old."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        full = os.path.join(directory, entry)
        try:
            pid = int(entry[len(prefix):].split("-", 1)[0])
            stale = pid != os.getpid() and not _pid_alive(pid)
            stale = stale or now - os.stat(full).st_mtime > _STALE_TEMP_AGE_S
            if stale:
                os.unlink(full)
        except (ValueError, OSError):
            continue


def _move_aside(path: str) -> str:
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
