"""Enrolled faces: names -> L2-normalised embeddings (never images), in memory.

This module is the people model: who is enrolled, their samples, and the changes a user makes
(enrol, forget, rename, the sample cap). How copies merge is :mod:`.replica` (one rule for a
second process writing the same file and for other robots); persistence is :mod:`.store` and
:mod:`.file_format`; names are :mod:`.names`.

Person records are immutable (a change makes new records), which makes undoing a change whose
save failed (:meth:`Gallery.checkpoint` / :meth:`Gallery.restore`) cheap and exact, and lets a
merge skip every person whose digest matches.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np

from .contents import Contents, Register
from .names import lookup_key, validate_name
from .options import DEFAULT_MAX_SAMPLES_PER_PERSON
from .replica import (UNLIMITED, Cap, Clock, GalleryState, NameOp, Person, Sample,
                      default_node_id, gallery_digest, ms_to_iso, new_sample_ids, now_ms,
                      unit_rows)
from .snapshot import Snapshot, build_snapshot


class UnknownPerson(KeyError):
    """The name is not enrolled."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else "unknown person"


class NameTaken(ValueError):
    """Renaming onto a name that is already enrolled without ``merge=True``."""


@dataclass(frozen=True)
class PersonInfo:
    name: str
    samples: int
    enrolled_at: str  # UTC ISO 8601, of the earliest sample kept
    updated_at: str  # UTC ISO 8601, of the newest sample
    enrolled_by: str = ""  # node id that enrolled the earliest sample kept
    updated_by: str = ""  # node id that enrolled the newest sample
    alignment: str = ""  # how the samples' faces were aligned ("" = not recorded, or "mixed")


@dataclass(frozen=True)
class Checkpoint:
    """The whole gallery at one moment (records are immutable, so this is a shallow copy):
    what a save writes and what :meth:`Gallery.restore` goes back to."""

    state: GalleryState  # people in name order
    created_at: str
    updated_at: str
    configured_cap: int
    announced: tuple[dict[str, int], int, int]


def utc_now() -> str:
    return ms_to_iso(now_ms())


class Gallery:
    """People, each with several unit embeddings from one embedding model; see the module
    docstring. People are kept in name order (the same order on every copy).

    Thread-safe: mutations and :meth:`snapshot` hold one lock, so a service callback may enrol
    while the image callback matches. ``node_id`` is recorded with every change made here.
    """

    def __init__(self, embedding_space: str, dim: int, *,
                 max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
                 node_id: str | None = None) -> None:
        if not embedding_space:
            raise ValueError("embedding_space must be a non-empty model identifier")
        if int(dim) <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        cap = UNLIMITED if max_samples_per_person is None else int(max_samples_per_person)
        if cap < 1 and max_samples_per_person is not None:
            raise ValueError("max_samples_per_person must be >= 1 or None (unlimited)")
        self.embedding_space = str(embedding_space)
        self.dim = int(dim)
        self.node_id = node_id or default_node_id()
        self.clock = Clock()
        self._c = Contents(Cap(0, "", cap))  # the configured default until someone sets it
        self.configured_cap = cap  # local: the value this copy's configuration last asked for
        self.created_at = self.updated_at = utc_now()
        self._lock = threading.RLock()
        self._generation = 0
        self._snapshot: Snapshot | None = None
        self._digest: tuple[int, str] | None = None
        # What changed since a sequence number, for the fleet sync to publish (see changes_since)
        self._seq = 0
        self._person_seq: dict[str, int] = {}
        self._op_log: list[tuple[int, bytes, NameOp]] = []
        self._cap_seq = 0

    @property
    def max_samples_per_person(self) -> int | None:
        """Most samples kept per person (newest kept); None = unlimited. A gallery setting,
        shared by every copy (:meth:`set_cap`)."""
        return self._c.cap.limit

    @property
    def cap(self) -> Cap:
        return self._c.cap

    @property
    def forgets(self) -> int:
        """How many forgets this copy holds (it grows when one is made or merged in)."""
        return self._c.forgets

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._c.people)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and lookup_key(name) in self._c.people

    @property
    def generation(self) -> int:
        """Increments on every change, including merges of changes made elsewhere."""
        return self._generation

    @property
    def num_samples(self) -> int:
        with self._lock:
            return sum(len(p.samples) for p in self._c.people.values())

    def names(self) -> list[str]:
        """Names in person-index order (the order of ``Snapshot.names`` and ``owners()``)."""
        with self._lock:
            return list(self._c.names)

    def people(self) -> list[PersonInfo]:
        with self._lock:
            return [_info(self._c.people[n]) for n in self._c.names]

    def aligned_otherwise(self, alignment: str) -> list[str]:
        """People with samples not (all) aligned by ``alignment``: re-enrolling them helps."""
        with self._lock:
            return [n for n in self._c.names if self._c.people[n].alignment != alignment]

    def records(self) -> dict[str, Person]:
        """Every person's record, in name order (records are immutable)."""
        with self._lock:
            return {n: self._c.people[n] for n in self._c.names}

    def embeddings(self, name: str) -> np.ndarray:
        """A copy of one person's samples, oldest first."""
        with self._lock:
            return self._get(name).embeddings.copy()

    def digest(self) -> str:
        """The replicated contents' digest (:func:`.replica.gallery_digest`): equal on two
        copies exactly when they hold the same people, samples, operations and cap."""
        with self._lock:
            if self._digest is None or self._digest[0] != self._generation:
                self._digest = (self._generation, gallery_digest(
                    self.embedding_space, self.dim, self._c.people, self._c.ops, self._c.cap))
            return self._digest[1]

    def state(self, names: list[str] | None = None, *, ops: bool = True) -> GalleryState:
        """The contents (or these people's records) as a :class:`GalleryState`, to send."""
        with self._lock:
            return self._c.state(names, ops=ops)

    def changes_since(self, seq: int) -> tuple[GalleryState, int]:
        """What changed here after ``seq`` that other copies have not been told (changes made
        here or read from the file; a merged peer change only where the merge differs from what
        that peer sent), and the sequence number to ask from next time."""
        with self._lock:
            people = {n: self._c.people[n] for n, s in self._person_seq.items()
                      if s > seq and n in self._c.people}
            ops: dict[bytes, tuple[NameOp, ...]] = {}
            start = bisect.bisect_right(self._op_log, seq, key=lambda e: e[0])
            for _, key, op in self._op_log[start:]:
                ops[key] = (*ops.get(key, ()), op)
            cap = self._c.cap if self._cap_seq > seq else None
            return GalleryState(dict(sorted(people.items())), ops, cap), self._seq

    def snapshot(self) -> Snapshot:
        """Cached consistent view; rebuilt only after a change."""
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != self._generation:
                self._snapshot = build_snapshot(
                    [self._c.people[n] for n in self._c.names], self.dim, self._generation)
            return self._snapshot

    def matrix(self) -> np.ndarray:
        """(M, D) float32 of all samples, grouped by person; read-only, cached."""
        return self.snapshot().matrix

    def owners(self) -> np.ndarray:
        """(M,) person index of each row of :meth:`matrix`; read-only, cached."""
        return self.snapshot().owners

    # --------------------------------------------------------------- mutations
    def add(self, name: str, embeddings: np.ndarray, *, overwrite: bool = False,
            alignment: str = "") -> int:
        """Enrol samples for ``name`` (appending unless ``overwrite``); returns its sample count.

        Rows are L2-normalised here. Beyond ``max_samples_per_person`` the oldest are dropped,
        so re-enrolling keeps the gallery current as a face changes. ``alignment`` records how
        the faces were aligned (the recognizer's alignment.method).
        """
        key = validate_name(name)
        rows = unit_rows(embeddings, self.dim, self.embedding_space)
        with self._lock:
            version, at = self.clock.tick(), now_ms()
            if overwrite:
                self._add_op(self._c.key(key), NameOp(version, self.node_id, "", at), True)
            staged = {sid: (key, Sample(sid, version, version, self.node_id, at, alignment), row)
                      for sid, row in zip(new_sample_ids(len(rows)), rows)}
            self._rebuild({key}, staged)
            return len(self._c.people[key].samples)

    def remove(self, name: str) -> int:
        """Forget a person; returns how many samples were deleted. The forget is kept (as a
        hash of the name), so copies that still hold the person drop them when they merge."""
        with self._lock:
            person = self._get(name)
            self._add_op(self._c.key(person.name),
                         NameOp(self.clock.tick(), self.node_id, "", now_ms()), True)
            self._rebuild({person.name}, {})
            return len(person.samples)

    def rename(self, old: str, new: str, *, merge: bool = False) -> int:
        """Rename ``old`` to ``new``; returns the sample count under ``new``.

        Onto an existing name this raises :class:`NameTaken` unless ``merge``, in which case the
        samples are combined (``old``'s as the most recent, then the cap) and ``old`` disappears.
        """
        new_key = validate_name(new)
        with self._lock:
            person = self._get(old)
            if new_key == person.name:
                return len(person.samples)
            if new_key in self._c.people and not merge:
                raise NameTaken(
                    f"cannot rename {person.name!r} to {new_key!r}: {new_key!r} is already "
                    "enrolled (use merge to combine them)"
                )
            op = NameOp(self.clock.tick(), self.node_id, new_key, now_ms())
            self._add_op(self._c.key(person.name), op, True)
            self._rebuild({person.name, new_key}, {})
            return len(self._c.people[new_key].samples)

    def clear(self) -> None:
        with self._lock:
            for name in list(self._c.names):
                self.remove(name)

    def set_cap(self, value: int | None) -> bool:
        """Set the sample cap for every copy (None: unlimited); people above it lose their
        oldest samples. Returns False when it already was ``value``."""
        value = UNLIMITED if value is None else int(value)
        if value < 0:
            raise ValueError("the sample cap must be >= 1, or 0/None for unlimited")
        with self._lock:
            if value == self._c.cap.value:
                return False
            self._set_cap(Cap(self.clock.tick(), self.node_id, value), True)
            return True

    def configure_cap(self, value: int | None) -> bool:
        """A process opened this copy configured for ``value``: set it for every copy only when
        the configuration changed since the last time (a params file edited), so a restart
        does not undo a cap the fleet set meanwhile. True when anything changed."""
        value = UNLIMITED if value is None else int(value)
        with self._lock:
            if value == self.configured_cap:
                return False
            self.configured_cap = value
            self.set_cap(value)
            return True

    # ------------------------------------------------- merge, undo, load (for store and sync)
    def join(self, theirs: GalleryState, *, announce: bool = True) -> bool:
        """Merge another copy's contents (or part of them) in; True when this copy changed.

        ``announce``: whether what changed here is news for the fleet (False for a change that
        came from the fleet: only a merge result that differs from what was sent is announced).
        """
        with self._lock:
            for version in (*(op.version for ops in theirs.ops.values() for op in ops),
                            *(s.version for p in theirs.people.values() for s in p.samples)):
                self.clock.observe(version)
            affected: set[str] = set()
            for key, ops in theirs.ops.items():
                for op in ops:
                    if op not in self._c.ops.get(key, ()):
                        affected.update(filter(None, [self._add_op(key, op, announce)]))
            if theirs.cap is not None and theirs.cap > self._c.cap:
                self.clock.observe(theirs.cap.version)
                self._set_cap(theirs.cap, announce)
            staged = self._c.stage(theirs, affected)
            return self._rebuild(affected, staged, None if announce else theirs.people)

    def checkpoint(self) -> Checkpoint:
        """The current contents, to save, or to :meth:`restore` if a change cannot be saved."""
        with self._lock:
            return Checkpoint(self._c.state(), self.created_at, self.updated_at,
                              self.configured_cap,
                              (dict(self._person_seq), len(self._op_log), self._cap_seq))

    def restore(self, checkpoint: Checkpoint) -> None:
        """Go back to ``checkpoint`` (a change after it was not saved, so it never happened)."""
        with self._lock:
            self._c.reset(checkpoint.state)
            self._generation += 1
            self.created_at, self.updated_at = checkpoint.created_at, checkpoint.updated_at
            self.configured_cap = checkpoint.configured_cap
            person_seq, log_length, self._cap_seq = checkpoint.announced
            self._person_seq = dict(person_seq)
            del self._op_log[log_length:]

    def load(self, state: GalleryState, created_at: str, updated_at: str,
             configured_cap: int | None = None) -> None:
        """Replace the contents with a file's (validated by the store), in canonical form:
        the operations and the cap applied, whatever the file held."""
        with self._lock:
            self._c.reset(GalleryState({}, state.ops, state.cap))
            self._rebuild(set(), {s.id: (n, s, row) for n, p in state.people.items()
                                  for s, row in zip(p.samples, p.embeddings)})
            for version in self._c.versions():
                self.clock.observe(version)
            self._person_seq.clear()  # the copy's own contents: nothing new to announce
            self._generation += 1
            self.created_at, self.updated_at = created_at, updated_at
            if configured_cap is not None:
                self.configured_cap = configured_cap

    # ------------------------------------------------------------------ helpers
    def _add_op(self, key: bytes, op: NameOp, announce: bool) -> str | None:
        affected = self._c.add_op(key, op)
        if announce:
            self._seq += 1
            self._op_log.append((self._seq, key, op))
        return affected

    def _set_cap(self, cap: Cap, announce: bool) -> None:
        self._c.cap = cap
        if announce:
            self._seq += 1
            self._cap_seq = self._seq
        self._rebuild(set(self._c.names), {})

    def _rebuild(self, affected: set[str], staged: dict[bytes, Register],
                 sent: dict[str, Person] | None = None) -> bool:
        """:meth:`.contents.Contents.rebuild`, then note what is news for the fleet: every
        change, or (``sent``: a peer's records) only results that differ from what it sent."""
        changed = self._c.rebuild(affected, staged)
        for name in changed:
            person = self._c.people.get(name)
            if person is not None and (sent is None or name not in sent
                                       or sent[name].digest != person.digest):
                self._seq += 1
                self._person_seq[name] = self._seq
        if changed:
            self.updated_at = utc_now()
            self._generation += 1
        return bool(changed)

    def _get(self, name: str) -> Person:
        person = self._c.people.get(lookup_key(name))
        if person is None:
            raise UnknownPerson(f"{name!r} is not enrolled")
        return person


def _info(person: Person) -> PersonInfo:
    first, last = person.enrolled, person.updated
    return PersonInfo(person.name, len(person.samples), ms_to_iso(first.enrolled_ms),
                      ms_to_iso(last.enrolled_ms), first.origin, last.origin, person.alignment)
