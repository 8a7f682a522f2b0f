"""Enrolled faces: names -> L2-normalised embeddings (never images), in memory.

This module is the people model: who is enrolled, their samples, and the rules for changing
and merging them. Persistence (the file format, atomic saves, the hardened loader, the
writers' lock) is :mod:`.store` and :mod:`.file_format`; names are :mod:`.names`.

Every person carries a revision token that changes whenever that person changes, and person
records are never modified in place (a change makes a new record). That makes two things
cheap and exact: undoing a change whose save failed (:meth:`Gallery.checkpoint` /
:meth:`Gallery.restore`) and a three-way merge with another copy of the gallery
(:meth:`Gallery.merge`), which is how changes written by another process are taken in
without losing local ones.
"""
from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from .names import lookup_key, validate_name
from .options import DEFAULT_MAX_SAMPLES_PER_PERSON, GalleryOptions


class UnknownPerson(KeyError):
    """The name is not enrolled."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else "unknown person"


class NameTaken(ValueError):
    """Renaming onto a name that is already enrolled without ``merge=True``."""


@dataclass(frozen=True)
class _FixedCap:
    max_samples_per_person: int | None


@dataclass(frozen=True)
class PersonInfo:
    name: str
    samples: int
    enrolled_at: str  # UTC ISO 8601
    updated_at: str  # UTC ISO 8601


@dataclass(frozen=True)
class Person:
    """One enrolled person. Immutable: a change makes a new record with a new ``rev``."""

    embeddings: np.ndarray  # (k, D) float32, oldest first, read-only
    enrolled_at: str
    updated_at: str
    rev: str  # changes with every change of this person; compared by merges


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


@dataclass(frozen=True)
class Checkpoint:
    """The whole gallery at one moment (records are immutable, so this is a shallow copy)."""

    people: dict[str, Person]
    created_at: str
    updated_at: str


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_rev() -> str:
    return secrets.token_hex(8)


def frozen_rows(rows: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy nobody can modify (records share arrays across snapshots)."""
    rows = np.array(rows, dtype=np.float32, order="C", copy=True)
    rows.flags.writeable = False
    return rows


class Gallery:
    """People, each with several unit embeddings from one embedding model.

    Thread-safe: mutations and :meth:`snapshot` hold one lock, so a service callback may enrol
    while the image callback matches.

    The sample cap is ``max_samples_per_person`` (None: unlimited), or, given ``options``, that
    object's value read at every change: a running node's parameter change applies to the next
    enrolment without anyone touching the gallery.
    """

    def __init__(
        self,
        embedding_space: str,
        dim: int,
        *,
        max_samples_per_person: int | None = DEFAULT_MAX_SAMPLES_PER_PERSON,
        options: GalleryOptions | None = None,
    ) -> None:
        if not embedding_space:
            raise ValueError("embedding_space must be a non-empty model identifier")
        if int(dim) <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if (
            options is None
            and max_samples_per_person is not None
            and int(max_samples_per_person) < 1
        ):
            raise ValueError("max_samples_per_person must be >= 1 or None (unlimited)")
        self.embedding_space = str(embedding_space)
        self.dim = int(dim)
        self._limits: GalleryOptions | _FixedCap = options or _FixedCap(
            None if max_samples_per_person is None else int(max_samples_per_person))
        now = utc_now()
        self.created_at = now
        self.updated_at = now
        self._people: dict[str, Person] = {}
        self._lock = threading.RLock()
        self._generation = 0
        self._snapshot: Snapshot | None = None

    @property
    def max_samples_per_person(self) -> int | None:
        """Most samples kept per person (oldest dropped first); None = unlimited."""
        return self._limits.max_samples_per_person

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and lookup_key(name) in self._people

    @property
    def generation(self) -> int:
        """Increments on every change, including merges of changes made elsewhere."""
        return self._generation

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
                PersonInfo(name, p.embeddings.shape[0], p.enrolled_at, p.updated_at)
                for name, p in self._people.items()
            ]

    def records(self) -> dict[str, Person]:
        """Every person's record, in person-index order (records are immutable)."""
        with self._lock:
            return dict(self._people)

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
            matrix = np.ascontiguousarray(
                np.concatenate([p.embeddings for p in self._people.values()])
            )
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
    def add(self, name: str, embeddings: np.ndarray, *, overwrite: bool = False) -> int:
        """Enrol samples for ``name`` (appending unless ``overwrite``); returns its sample count.

        Rows are L2-normalised here. Beyond ``max_samples_per_person`` the oldest are dropped,
        so re-enrolling keeps the gallery current as a face changes.
        """
        key = validate_name(name)
        rows = self._check_embeddings(embeddings)
        now = utc_now()
        with self._lock:
            person = self._people.get(key)
            if person is None or overwrite:
                person = Person(self._capped(rows), now, now, new_rev())
            else:
                person = Person(self._capped(np.concatenate([person.embeddings, rows])),
                                person.enrolled_at, now, new_rev())
            self._people[key] = person
            self._changed(now)
            return person.embeddings.shape[0]

    def remove(self, name: str) -> int:
        """Forget a person; returns how many samples were deleted."""
        with self._lock:
            person = self._get(name)
            del self._people[lookup_key(name)]
            self._changed(utc_now())
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
            old_key = lookup_key(old)
            if new_key == old_key:
                return person.embeddings.shape[0]
            now = utc_now()
            target = self._people.get(new_key)
            if target is None:
                renamed = replace(person, updated_at=now, rev=new_rev())
                self._people = {(new_key if k == old_key else k): (renamed if k == old_key else v)
                                for k, v in self._people.items()}
                self._changed(now)
                return renamed.embeddings.shape[0]
            if not merge:
                raise NameTaken(
                    f"cannot rename {old_key!r} to {new_key!r}: {new_key!r} is already enrolled "
                    "(use merge to combine them)"
                )
            combined = Person(self._capped(np.concatenate([target.embeddings, person.embeddings])),
                              min(target.enrolled_at, person.enrolled_at), now, new_rev())
            self._people[new_key] = combined
            del self._people[old_key]
            self._changed(now)
            return combined.embeddings.shape[0]

    def clear(self) -> None:
        with self._lock:
            self._people.clear()
            self._changed(utc_now())

    # ------------------------------------------------- undo and merge (for the store)
    def checkpoint(self) -> Checkpoint:
        """The current contents, to :meth:`restore` if a change cannot be saved."""
        with self._lock:
            return Checkpoint(dict(self._people), self.created_at, self.updated_at)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Go back to ``checkpoint`` (a change after it was not saved, so it never happened)."""
        with self._lock:
            self._people = dict(checkpoint.people)
            self.created_at, self.updated_at = checkpoint.created_at, checkpoint.updated_at
            self._generation += 1

    def merge(self, base: Mapping[str, str], theirs: Mapping[str, Person], *, created_at: str,
              updated_at: str) -> bool:
        """Take in another copy's changes without losing ours (a three-way merge, per person).

        ``base`` maps each name to its ``rev`` in the last state both copies shared (for the
        store: the file as last read or written); ``theirs`` is the other copy now. A person
        changed on one side only takes that side's record (an enrolment, a forget or a rename,
        seen as a forget plus an enrolment). Changed on both sides: the samples are combined
        (capped, newest kept), and a forget on one side loses to an enrolment on the other, so no
        acknowledged enrolment disappears. Returns True when this copy changed.
        """
        with self._lock:
            merged: dict[str, Person] = {}
            for name in [*self._people, *(n for n in theirs if n not in self._people)]:
                ours, other = self._people.get(name), theirs.get(name)
                ours_rev, other_rev = (ours.rev if ours else None), (other.rev if other else None)
                if ours_rev == base.get(name):
                    chosen = other
                elif other_rev == base.get(name) or ours_rev == other_rev or other is None:
                    chosen = ours
                elif ours is None:
                    chosen = other
                else:
                    chosen = self._combined(ours, other)
                if chosen is not None:
                    merged[name] = chosen
            changed = merged.keys() != self._people.keys() or any(
                merged[n] is not self._people[n] for n in merged)
            if changed:
                self._people = merged
                self.created_at = min(self.created_at, created_at)
                self._changed(max(self.updated_at, updated_at))
            return changed

    def _combined(self, ours: Person, other: Person) -> Person:
        """Both copies changed one person: keep every distinct sample (theirs first, ours
        newest)."""
        seen = {row.tobytes() for row in other.embeddings}
        extra = [row for row in ours.embeddings if row.tobytes() not in seen]
        rows = np.concatenate(
            [other.embeddings, np.asarray(extra, np.float32).reshape(-1, self.dim)]
        )
        return Person(self._capped(rows), min(ours.enrolled_at, other.enrolled_at),
                      max(ours.updated_at, other.updated_at), new_rev())

    # ------------------------------------------------------------------ helpers
    def _get(self, name: str) -> Person:
        person = self._people.get(lookup_key(name))
        if person is None:
            raise UnknownPerson(f"{name!r} is not enrolled")
        return person

    def _capped(self, rows: np.ndarray) -> np.ndarray:
        cap = self.max_samples_per_person
        return frozen_rows(rows[-cap:] if cap is not None and rows.shape[0] > cap else rows)

    def _changed(self, now: str) -> None:
        self.updated_at = now
        self._generation += 1

    def _check_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        rows = np.asarray(embeddings)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(
                f"embeddings must have shape (N, {self.dim}) for {self.embedding_space!r}, "
                f"got {np.shape(embeddings)}"
            )
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

    def load_records(self, people: Mapping[str, Person], created_at: str, updated_at: str) -> None:
        """Replace the contents with records read from a file (the store validated them)."""
        with self._lock:
            self._people = dict(people)
            self.created_at, self.updated_at = created_at, updated_at
            self._generation += 1
