"""One copy's replicated contents, with the indexes a merge needs (:mod:`.replica`'s rule applied).

:class:`Contents` is not thread-safe: :class:`~.model.Gallery` holds its lock around every call.
It keeps the people in name order, every name operation, the cap, and two indexes: which person
each sample id is filed under (two registers with one id resolve to the higher version), and
the live names by name key (an operation arriving from elsewhere finds the person it affects).
"""
from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np

from .replica import (Cap, GalleryState, NameOp, Person, Sample, make_person, merged_ops, moved,
                      name_key, resolve)

Register = tuple[str, Sample, np.ndarray]  # (name it is filed under, sample, row)


class Contents:
    """See the module docstring."""

    def __init__(self, cap: Cap) -> None:
        self.cap = cap
        self.people: dict[str, Person] = {}
        self.names: list[str] = []  # sorted
        self.ops: dict[bytes, tuple[NameOp, ...]] = {}
        self.forgets = 0  # forget operations held
        self._where: dict[bytes, str] = {}  # sample id -> name it is filed under
        self._live_keys: dict[bytes, str] = {}  # name_key -> enrolled name
        self._key_cache: dict[str, bytes] = {}

    def reset(self, state: GalleryState) -> None:
        """Hold exactly ``state`` (already canonical: a checkpoint, or no people)."""
        self.people, self.ops = dict(state.people), dict(state.ops)
        self.cap = state.cap or self.cap
        self.names = sorted(self.people)
        self._where = {s.id: n for n, p in self.people.items() for s in p.samples}
        self._live_keys = {self.key(n): n for n in self.names}
        self.forgets = sum(op.is_forget for ops in self.ops.values() for op in ops)

    def state(self, names: list[str] | None = None, *, ops: bool = True) -> GalleryState:
        chosen = self.names if names is None else [n for n in names if n in self.people]
        return GalleryState({n: self.people[n] for n in chosen}, dict(self.ops) if ops else {},
                            self.cap)

    def versions(self) -> Iterator[int]:
        """Every version held (for the clock to stay above them)."""
        yield self.cap.version
        for person in self.people.values():
            yield from (s.version for s in person.samples)
        for ops in self.ops.values():
            yield from (op.version for op in ops)

    def key(self, name: str) -> bytes:
        key = self._key_cache.get(name)
        if key is None:
            key = self._key_cache[name] = name_key(name)
        return key

    def add_op(self, key: bytes, op: NameOp) -> str | None:
        """Record ``op`` (new); returns the live name it affects, if any."""
        self.ops[key] = merged_ops(self.ops.get(key, ()), (op,))
        self.forgets += op.is_forget
        return self._live_keys.get(key)

    def stage(self, theirs: GalleryState, affected: set[str]) -> dict[bytes, Register]:
        """The registers of ``theirs`` that are new or newer here; adds the names they touch
        to ``affected``. People whose digest matches ours are skipped whole."""
        staged: dict[bytes, Register] = {}
        for name, person in theirs.people.items():
            ours = self.people.get(name)
            if ours is not None and ours.digest == person.digest:
                continue
            for sample, row in zip(person.samples, person.embeddings):
                where = self._where.get(sample.id)
                if where is not None:
                    held = next(s for s in self.people[where].samples if s.id == sample.id)
                    if held.version >= sample.version:
                        continue
                    affected.add(where)
                staged[sample.id] = (name, sample, row)
                affected.add(name)
        return staged

    def rebuild(self, affected: set[str], staged: dict[bytes, Register]) -> list[str]:
        """Re-derive the people in ``affected`` from their samples, ``staged`` registers and
        the operations (:func:`.replica.resolve`), then cap them; returns the names whose
        record changed (a name that is gone included)."""
        registers: dict[bytes, Register] = {}
        for name in affected:
            self._collect(name, registers)
        for sid, register in staged.items():
            current = registers.get(sid)
            if current is None or current[1].version < register[1].version:
                registers[sid] = register
        groups: dict[str, dict[bytes, tuple[Sample, np.ndarray]]] = {}
        for name, sample, row in registers.values():
            where = resolve(name, sample.version, self.ops, self._key_cache)
            if where is not None:
                groups.setdefault(where[0], {})[sample.id] = (moved(sample, where[1]), row)
        for name in set(groups) - affected:  # a rename moved samples onto an unaffected person
            affected.add(name)
            extra: dict[bytes, Register] = {}
            self._collect(name, extra)
            for sid, (_, sample, row) in extra.items():
                groups[name].setdefault(sid, (sample, row))
        changed = []
        for name in sorted(affected):
            person = make_person(name, list(groups.get(name, {}).values()), self.cap.limit)
            old = self.people.get(name)
            if (person.digest if person else None) != (old.digest if old else None):
                self._replace(name, old, person)
                changed.append(name)
        return changed

    def _collect(self, name: str, into: dict[bytes, Register]) -> None:
        person = self.people.get(name)
        if person is not None:
            for sample, row in zip(person.samples, person.embeddings):
                into[sample.id] = (name, sample, row)

    def _replace(self, name: str, old: Person | None, new: Person | None) -> None:
        if old is not None:
            for s in old.samples:
                if self._where.get(s.id) == name:
                    del self._where[s.id]
        if new is None:
            del self.people[name]
            self.names.pop(bisect.bisect_left(self.names, name))
            self._live_keys.pop(self.key(name), None)
            return
        if old is None:
            bisect.insort(self.names, name)
            self._live_keys[self.key(name)] = name
        self.people[name] = new
        for s in new.samples:
            self._where[s.id] = name
