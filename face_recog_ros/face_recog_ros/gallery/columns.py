"""A gallery state as flat columns (arrays and lists), and back, validated.

The file (:mod:`.file_format`) and the fleet's messages (``face_recog_interfaces/GalleryUpdate``)
carry a :class:`~.replica.GalleryState` the same way: people as names with sample counts, then
one entry per sample in each sample column, then one entry per name operation. Whatever
produced the columns (a damaged file, a buggy or hostile peer), :func:`from_columns` either
returns a valid state or raises :class:`BadColumns` saying what is wrong.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .names import InvalidName, validate_name
from .replica import (MAX_NODE_ID_LENGTH, NAME_KEY_BYTES, SAMPLE_ID_BYTES, Cap, GalleryState,
                      NameOp, Person, Sample, frozen_rows, person_digest)

NORM_TOLERANCE = 1e-3  # stored rows are unit length to this; anything else is damage
MAX_INT = 2**62  # versions and times beyond this are damage
MAX_ALIGNMENT_LENGTH = 64  # an alignment method's name


class BadColumns(ValueError):
    """Columns that do not make a valid gallery state."""


@dataclass
class Columns:
    names: list[str]
    counts: np.ndarray  # (P,) samples per name, in order
    ids: np.ndarray  # (M, SAMPLE_ID_BYTES) uint8
    versions: np.ndarray  # (M,) int64
    born: np.ndarray  # (M,) int64
    enrolled_ms: np.ndarray  # (M,) int64
    origins: np.ndarray  # (M,) index into nodes
    aligned: np.ndarray  # (M,) index into alignments
    embeddings: np.ndarray  # (M, D) float32
    op_keys: np.ndarray  # (K, NAME_KEY_BYTES) uint8
    op_versions: np.ndarray  # (K,) int64
    op_nodes: np.ndarray  # (K,) index into nodes
    op_targets: list[str]  # '' = forget
    op_at_ms: np.ndarray  # (K,) int64
    nodes: list[str]
    alignments: list[str]  # alignment methods ("" = not recorded)
    cap: Cap | None


def to_columns(state: GalleryState, dim: int) -> Columns:
    """``state`` as columns (people in the state's order, operations by key)."""
    samples = [s for p in state.people.values() for s in p.samples]
    ops = [(key, op) for key in sorted(state.ops) for op in state.ops[key]]
    nodes = sorted({s.origin for s in samples} | {op.node for _, op in ops})
    index = {n: i for i, n in enumerate(nodes)}
    alignments = sorted({s.alignment for s in samples})
    method = {a: i for i, a in enumerate(alignments)}
    people = list(state.people.values())
    return Columns(
        names=[p.name for p in people],
        counts=np.array([len(p.samples) for p in people], np.int64),
        ids=np.frombuffer(b"".join(s.id for s in samples), np.uint8).reshape(
            len(samples), SAMPLE_ID_BYTES),
        versions=np.array([s.version for s in samples], np.int64),
        born=np.array([s.born for s in samples], np.int64),
        enrolled_ms=np.array([s.enrolled_ms for s in samples], np.int64),
        origins=np.array([index[s.origin] for s in samples], np.int32),
        aligned=np.array([method[s.alignment] for s in samples], np.int32),
        embeddings=(np.concatenate([p.embeddings for p in people]) if people
                    else np.zeros((0, dim), np.float32)),
        op_keys=np.frombuffer(b"".join(k for k, _ in ops), np.uint8).reshape(
            len(ops), NAME_KEY_BYTES),
        op_versions=np.array([op.version for _, op in ops], np.int64),
        op_nodes=np.array([index[op.node] for _, op in ops], np.int32),
        op_targets=[op.target for _, op in ops],
        op_at_ms=np.array([op.at_ms for _, op in ops], np.int64),
        nodes=nodes, alignments=alignments, cap=state.cap)


def from_columns(c: Columns, dim: int) -> GalleryState:
    """The state the columns describe; :class:`BadColumns` when they are inconsistent."""
    names = [_name(n) for n in c.names]
    if len(set(names)) != len(names):
        raise BadColumns("a name is listed twice")
    counts = _ints("sample counts", c.counts, (len(names),), low=1)
    m = int(counts.sum())
    if not all(isinstance(n, str) and len(n) <= MAX_NODE_ID_LENGTH for n in c.nodes):
        raise BadColumns("a node id is not text or too long")
    if not all(isinstance(a, str) and len(a) <= MAX_ALIGNMENT_LENGTH for a in c.alignments):
        raise BadColumns("an alignment method is not text or too long")
    ids = _array("sample ids", c.ids, (m, SAMPLE_ID_BYTES), "u")
    versions, born, enrolled = (_ints(label, a, (m,)) for label, a in (
        ("sample versions", c.versions), ("birth versions", c.born),
        ("enrolment times", c.enrolled_ms)))
    origins = _ints("sample origins", c.origins, (m,), high=len(c.nodes) - 1)
    aligned = _ints("sample alignments", c.aligned, (m,), high=len(c.alignments) - 1)
    rows = _array("embeddings", c.embeddings, (m, dim), "f")
    if rows.dtype != np.float32:
        raise BadColumns(f"embeddings are {rows.dtype}, not float32")
    if rows.size and not np.all(np.isfinite(rows)):
        raise BadColumns("embeddings contain NaN or infinity")
    if np.any(np.abs(np.linalg.norm(rows.astype(np.float64), axis=1) - 1.0) > NORM_TOLERANCE):
        raise BadColumns("embeddings are not unit length")
    id_bytes = [bytes(row) for row in ids]
    if len(set(id_bytes)) != m:
        raise BadColumns("two samples have one id")
    people: dict[str, Person] = {}
    start = 0
    for name, count in zip(names, counts.tolist()):
        span = range(start, start + count)
        start += count
        registers = sorted(((Sample(id_bytes[i], int(versions[i]), int(born[i]),
                                    c.nodes[origins[i]], int(enrolled[i]),
                                    c.alignments[aligned[i]]), rows[i])
                            for i in span), key=lambda r: r[0].order())
        samples = tuple(s for s, _ in registers)
        person_rows = frozen_rows(np.stack([r for _, r in registers]))
        people[name] = Person(name, samples, person_rows,
                              person_digest(name, samples, person_rows))
    return GalleryState(people, _ops(c), _cap(c.cap))


def _name(name: object) -> str:
    try:
        canonical = validate_name(name)  # type: ignore[arg-type]
    except InvalidName as err:
        raise BadColumns(f"invalid name: {err}") from None
    if canonical != name:
        raise BadColumns(f"non-canonical name {name!r}")
    return canonical


def _array(label: str, values: object, shape: tuple[int, ...], kinds: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != shape or array.dtype.kind not in kinds:
        raise BadColumns(f"{label}: {array.dtype} {array.shape}, expected {shape}")
    return array


def _ints(label: str, values: object, shape: tuple[int, ...], *, low: int = 0,
          high: int = MAX_INT) -> np.ndarray:
    array = _array(label, values, shape, "iu")
    if array.size and (int(array.min()) < low or int(array.max()) > high):
        raise BadColumns(f"{label} out of range")
    return array.astype(np.int64)


def _ops(c: Columns) -> dict[bytes, tuple[NameOp, ...]]:
    k = len(c.op_targets)
    keys = _array("operation keys", c.op_keys, (k, NAME_KEY_BYTES), "u")
    versions = _ints("operation versions", c.op_versions, (k,))
    nodes = _ints("operation nodes", c.op_nodes, (k,), high=len(c.nodes) - 1)
    times = _ints("operation times", c.op_at_ms, (k,))
    found: dict[bytes, set[NameOp]] = {}
    for i, target in enumerate(c.op_targets):
        if not isinstance(target, str) or (target and _name(target) != target):
            raise BadColumns("a rename target is not a valid name")
        op = NameOp(int(versions[i]), c.nodes[nodes[i]], target, int(times[i]))
        found.setdefault(bytes(keys[i]), set()).add(op)
    return {key: tuple(sorted(ops)) for key, ops in found.items()}


def _cap(cap: Cap | None) -> Cap | None:
    if cap is None:
        return None
    if not (type(cap.version) is int and 0 <= cap.version <= MAX_INT
            and isinstance(cap.node, str) and len(cap.node) <= MAX_NODE_ID_LENGTH
            and type(cap.value) is int and 0 <= cap.value < 2**31):
        raise BadColumns("malformed sample cap")
    return cap


def rows_in(values: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    """A flat float32 buffer as (M, dim) rows (BadColumns when it does not divide)."""
    flat = np.frombuffer(memoryview(values).cast("B"), np.float32) if not isinstance(
        values, np.ndarray) else values.astype(np.float32, copy=False).ravel()
    if dim <= 0 or flat.size % dim:
        raise BadColumns(f"{flat.size} floats are not rows of {dim}")
    return flat.reshape(-1, dim)
