"""The one merge rule every copy of a gallery follows: processes sharing a file, and robots.

A gallery is a state-based CRDT (a join-semilattice): two copies merge by :func:`join`, and
merging is commutative, associative and idempotent, so copies that have seen the same changes,
in any order and any number of times, hold the same contents (byte for byte, see
:func:`gallery_digest`). Nothing here knows about files or ROS.

The state:
- **Samples.** Each embedding is a register with a unique id, the node that enrolled it, its
  enrolment time, and a *version*: a hybrid logical clock value (:class:`Clock`, microseconds
  that follow wall time but never run backwards, and always exceed every version this copy has
  seen, so a change made after seeing another sorts after it). Two registers with one id (a
  sample renamed on one copy) resolve to the higher version.
- **Name operations** (:class:`NameOp`), kept per name (by a keyed hash of the name, so a file
  does not list who was forgotten): a *forget* removes the samples of that name with lower
  versions, now and whenever a copy that missed it comes back; a *rename* re-files them under
  the new name at the rename's version (carried as a rename, not a forget plus an enrolment,
  so an enrolment of the old name made concurrently on another robot follows the person).
  A sample takes the first operation on its name with a higher version; equal versions keep
  the sample (an enrolment is never lost to a forget it could not have seen).
- **The sample cap** (:class:`Cap`): a last-writer-wins register. Each person keeps the top
  ``cap`` samples in the order (version, birth version, id): the newest, identically on every
  copy. The same name enrolled on two robots at once is the union of both, then this cap.

Samples removed by a forget or the cap are purged at once (never kept as tombstones).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np

SAMPLE_ID_BYTES = 16
NAME_KEY_BYTES = 16
_NAME_KEY = b"face_recog_ros.gallery.name/1"  # fixed, so every copy hashes a name alike
MAX_NODE_ID_LENGTH = 256
UNLIMITED = 0  # a cap value of 0 keeps every sample


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def name_key(name: str) -> bytes:
    """The keyed hash under which operations on ``name`` are kept (BLAKE2b-128).

    A file then does not list forgotten names. It is not secret: someone holding the file who
    guesses a name can test it, which is why a forget also purges every sample at once.
    """
    return hashlib.blake2b(name.encode("utf-8"), digest_size=NAME_KEY_BYTES,
                           key=_NAME_KEY).digest()


def default_node_id() -> str:
    """Who made a change, when the process does not say (the face-recog CLI): host and pid."""
    return f"{os.uname().nodename}/pid{os.getpid()}"


class Clock:
    """Hybrid logical clock: ``tick()`` is max(wall time in µs, last + 1); ``observe`` keeps
    it above every version seen, so causally later changes always get higher versions, and
    concurrent ones are ordered by wall time (within the robots' clock skew)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def tick(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last

    def observe(self, version: int) -> None:
        with self._lock:
            self._last = max(self._last, int(version))


@dataclass(frozen=True, slots=True)
class Sample:
    """One embedding's register (the row itself is in the person's matrix)."""

    id: bytes  # SAMPLE_ID_BYTES, unique
    version: int  # when it got its current name (enrolment, or the rename that moved it)
    born: int  # version of its enrolment
    origin: str  # node that enrolled it
    enrolled_ms: int  # wall time of the enrolment, ms since the Unix epoch
    # How its face was aligned (the enrolling recognizer's alignment.method; "" = not
    # recorded). The same embedding space either way, but a mix matches a little worse.
    alignment: str = ""

    def order(self) -> tuple[int, int, bytes]:
        """The cap keeps the highest; rows are stored in this order (oldest first)."""
        return self.version, self.born, self.id


def new_sample_ids(count: int) -> list[bytes]:
    """Unique ids that sort in enrolment order within one call (random prefix, then index)."""
    prefix = secrets.token_bytes(SAMPLE_ID_BYTES - 4)
    return [prefix + i.to_bytes(4, "big") for i in range(count)]


@dataclass(frozen=True, order=True, slots=True)
class NameOp:
    """A forget (``target`` empty) or a rename to ``target``, at ``version``."""

    version: int
    node: str
    target: str
    at_ms: int

    @property
    def is_forget(self) -> bool:
        return not self.target


@dataclass(frozen=True, order=True)
class Cap:
    """The fleet's sample cap: the highest (version, node, value) wins. Version 0 is the
    configured default of a copy that never set it explicitly; any explicit setting beats it."""

    version: int
    node: str
    value: int  # UNLIMITED (0) or >= 1

    @property
    def limit(self) -> int | None:
        return None if self.value == UNLIMITED else self.value


@dataclass(frozen=True, eq=False)
class Person:
    """One enrolled person: samples in :meth:`Sample.order`, and their rows. Immutable."""

    name: str
    samples: tuple[Sample, ...]
    embeddings: np.ndarray  # (k, D) float32, read-only, same order as ``samples``
    digest: bytes  # person_digest(): equal on two copies exactly when the records are

    @property
    def enrolled(self) -> Sample:
        """The earliest-enrolled sample still kept: who enrolled this person, and when."""
        return min(self.samples, key=lambda s: (s.born, s.id))

    @property
    def updated(self) -> Sample:
        """The latest-enrolled sample."""
        return max(self.samples, key=lambda s: (s.born, s.id))

    @property
    def alignment(self) -> str:
        """How the samples kept were aligned: one method, or "mixed"."""
        methods = {s.alignment for s in self.samples}
        return methods.pop() if len(methods) == 1 else "mixed"


@dataclass
class GalleryState:
    """A gallery's replicated contents, or any part of them (a change, a snapshot chunk):
    whatever holds it, :func:`join` merges it the same way."""

    people: dict[str, Person] = field(default_factory=dict)
    ops: dict[bytes, tuple[NameOp, ...]] = field(default_factory=dict)
    cap: Cap | None = None

    @property
    def num_samples(self) -> int:
        return sum(len(p.samples) for p in self.people.values())

    @property
    def num_ops(self) -> int:
        return sum(len(o) for o in self.ops.values())


def frozen_rows(rows: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy nobody can modify (records share arrays across snapshots)."""
    rows = np.array(rows, dtype=np.float32, order="C", copy=True)
    rows.flags.writeable = False
    return rows


def unit_rows(embeddings: np.ndarray, dim: int, embedding_space: str) -> np.ndarray:
    """``embeddings`` (N, dim) or (dim,) as L2-normalised float32 rows; ValueError says what is
    wrong (wrong shape, empty, not real numbers, NaN, infinity, zero length)."""
    rows = np.asarray(embeddings)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != dim:
        raise ValueError(f"embeddings must have shape (N, {dim}) for {embedding_space!r}, "
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


def person_digest(name: str, samples: Iterable[Sample], rows: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(name.encode("utf-8") + b"\0")
    for s in samples:
        h.update(s.id + s.version.to_bytes(8, "big", signed=True)
                 + s.born.to_bytes(8, "big", signed=True)
                 + s.enrolled_ms.to_bytes(8, "big", signed=True) + s.origin.encode() + b"\0"
                 + s.alignment.encode() + b"\0")
    h.update(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    return h.digest()


def make_person(name: str, registers: list[tuple[Sample, np.ndarray]], cap: int | None
                ) -> Person | None:
    """The person these registers make: sorted, capped to the newest ``cap``; None if empty."""
    if not registers:
        return None
    registers = sorted(registers, key=lambda r: r[0].order())
    if cap is not None and len(registers) > cap:
        registers = registers[-cap:]
    samples = tuple(s for s, _ in registers)
    rows = frozen_rows(np.stack([row for _, row in registers]))
    return Person(name, samples, rows, person_digest(name, samples, rows))


def resolve(name: str, version: int, ops: Mapping[bytes, tuple[NameOp, ...]],
            keys: dict[str, bytes]) -> tuple[str, int] | None:
    """Where a sample named ``name`` at ``version`` ends up: (name, version), or None when a
    forget removed it. Each hop raises the version, so this ends. ``keys`` caches name keys."""
    while True:
        key = keys.get(name)
        if key is None:
            key = keys[name] = name_key(name)
        first = next((op for op in ops.get(key, ()) if op.version > version), None)
        if first is None:
            return name, version
        if first.is_forget:
            return None
        name, version = first.target, first.version


def merged_ops(ours: tuple[NameOp, ...], theirs: Iterable[NameOp]) -> tuple[NameOp, ...]:
    """The union of two operation lists, sorted (operations are never removed)."""
    added = set(theirs).difference(ours)
    return tuple(sorted((*ours, *added))) if added else ours


def moved(sample: Sample, version: int) -> Sample:
    return sample if version == sample.version else replace(sample, version=version)


def gallery_digest(embedding_space: str, dim: int, people: Mapping[str, Person],
                   ops: Mapping[bytes, tuple[NameOp, ...]], cap: Cap) -> str:
    """SHA-256 (hex) of the replicated contents, the same on every copy that holds them: the
    model, the cap, every person (name order) and every operation (key order). Local
    bookkeeping (file times, which parameter value this copy was configured with) is not in it."""
    h = hashlib.sha256()
    h.update(f"{embedding_space}\0{dim}\0{cap.value}\0{cap.version}\0{cap.node}\0".encode())
    for name in sorted(people):
        h.update(people[name].digest)
    hash_ops(h, ops)
    return h.hexdigest()


def hash_ops(h: Any, ops: Mapping[bytes, tuple[NameOp, ...]]) -> None:
    """Feed every operation (key order) to the hash ``h`` (hashlib's interface)."""
    for key in sorted(ops):
        h.update(key)
        for op in ops[key]:
            h.update(f"{op.version}\0{op.node}\0{op.target}\0{op.at_ms}\0".encode())
