"""The gallery file's format: what the bytes hold, written and validated.

A plain ``.npz`` (no pickles). ``meta`` is UTF-8 JSON (as uint8): the model, the people (name
order), the name operations (forgets and renames, by hashed name), the sample cap and the nodes
that enrolled samples. ``embeddings`` (M, D) float32 holds the rows grouped by person, each
person's in :meth:`.replica.Sample.order`; ``owners`` (M,) is the person index of each row, and
``sample_ids`` (M, 16) uint8, ``sample_versions``, ``sample_born``, ``sample_enrolled_ms`` (M,)
int64 and ``sample_origins`` (M,) int32 (an index into the nodes) are each row's register
(:mod:`.replica`). Version 1 files (no registers) still load: their samples get ids derived
from their content, so every copy of one old file agrees on them.

Decoding is hardened: every member's declared size is bounded before numpy allocates it, and
every field is validated; the contents are then normalised by the merge rules, so a file that
is valid but not canonical (unsorted, over the cap) loads as its canonical form.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import GalleryCorrupt, GalleryMismatch, GalleryVersionError
from .names import InvalidName, validate_name
from .replica import (MAX_NODE_ID_LENGTH, NAME_KEY_BYTES, SAMPLE_ID_BYTES, UNLIMITED, Cap,
                      GalleryState, NameOp, Person, Sample, frozen_rows, ms_to_iso,
                      person_digest)

FORMAT_NAME = "face_recog_ros.gallery"
FORMAT_VERSION = 2  # 2: sample registers, name operations, the cap (1: names and rows only)
# Stored rows must be unit length to this tolerance; anything else means a damaged file.
_NORM_TOLERANCE = 1e-3
_REGISTERS = {"sample_ids": (np.uint8, 2), "sample_versions": (np.int64, 1),
              "sample_born": (np.int64, 1), "sample_enrolled_ms": (np.int64, 1),
              "sample_origins": (np.int32, 1)}
_MEMBERS = ("meta", "embeddings", "owners", *_REGISTERS)
# A member may expand to at most this many times the file's size (our writer stores members
# uncompressed; this still admits a compressed copy but bounds a decompression bomb).
_MAX_EXPANSION = 16
_MAX_INT = 2**62  # versions and times: anything larger is damage


@dataclass(frozen=True)
class FileContents:
    """A decoded file: the replicated state and this copy's own bookkeeping."""

    state: GalleryState
    created_at: str
    updated_at: str
    configured_cap: int | None  # None: not recorded (version 1)


def encode(embedding_space: str, dim: int, state: GalleryState, created_at: str,
           updated_at: str, configured_cap: int) -> bytes:
    """The file's bytes (the inverse of :func:`decode`); ``state.people`` in name order."""
    nodes = sorted({s.origin for p in state.people.values() for s in p.samples})
    node_index = {n: i for i, n in enumerate(nodes)}
    samples = [s for p in state.people.values() for s in p.samples]
    cap = state.cap or Cap(0, "", UNLIMITED)
    meta = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "embedding_space": embedding_space,
        "dim": dim, "created_at": created_at, "updated_at": updated_at,
        "cap": {"value": cap.value, "version": cap.version, "node": cap.node},
        "configured_cap": configured_cap, "nodes": nodes,
        "people": [{"name": n, "samples": len(p.samples),
                    "enrolled_at": ms_to_iso(p.enrolled.enrolled_ms),
                    "updated_at": ms_to_iso(p.updated.enrolled_ms)} for n, p in state.people.items()],
        "operations": [{"key": key.hex(), "version": op.version, "node": op.node,
                        "target": op.target, "at_ms": op.at_ms}
                       for key in sorted(state.ops) for op in state.ops[key]],
    }
    people = list(state.people.values())
    matrix = (np.concatenate([p.embeddings for p in people]) if people
              else np.zeros((0, dim), np.float32))
    buffer = io.BytesIO()
    np.savez(
        buffer, embeddings=matrix,
        owners=np.repeat(np.arange(len(people), dtype=np.int32), [len(p.samples) for p in people]),
        sample_ids=np.frombuffer(b"".join(s.id for s in samples), np.uint8).reshape(
            len(samples), SAMPLE_ID_BYTES),
        sample_versions=np.array([s.version for s in samples], np.int64),
        sample_born=np.array([s.born for s in samples], np.int64),
        sample_enrolled_ms=np.array([s.enrolled_ms for s in samples], np.int64),
        sample_origins=np.array([node_index[s.origin] for s in samples], np.int32),
        meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), np.uint8))
    return buffer.getvalue()


def file_model(path: Path, data: bytes) -> tuple[str, int]:
    """The embedding space and dimension a file says it was made with (GalleryError if none)."""
    meta = _parse_meta(path, _parse_npz(path, data).get("meta"))
    space, dim = meta.get("embedding_space"), meta.get("dim")
    if not isinstance(space, str) or not space or type(dim) is not int or dim <= 0:
        raise GalleryCorrupt(f"gallery {path} does not say which model made it")
    return space, dim


def decode(path: Path, data: bytes, embedding_space: str, dim: int) -> FileContents:
    """Validate a file's bytes completely; GalleryError subclasses say what is wrong."""
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
            f"running model is {embedding_space!r} (dim {dim}); embeddings of different models "
            "cannot be compared, so re-enrol or use a separate gallery file")
    entries, embeddings, owners = meta.get("people"), arrays.get("embeddings"), arrays.get("owners")
    if not isinstance(entries, list) or embeddings is None or owners is None:
        raise GalleryCorrupt(f"gallery {path} lacks people metadata, embeddings or owners")
    rows = embeddings.shape[0] if embeddings.ndim == 2 else -1
    if (embeddings.dtype != np.float32 or embeddings.ndim != 2 or embeddings.shape[1] != dim
            or owners.ndim != 1 or owners.dtype.kind not in "iu" or owners.shape[0] != rows):
        raise GalleryCorrupt(
            f"gallery {path} has inconsistent arrays: embeddings {embeddings.dtype} "
            f"{embeddings.shape}, owners {owners.dtype} {owners.shape}")
    if embeddings.size and not np.all(np.isfinite(embeddings)):
        raise GalleryCorrupt(f"gallery {path} contains NaN or infinite embeddings")
    norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
    if np.any(np.abs(norms - 1.0) > _NORM_TOLERANCE):
        raise GalleryCorrupt(f"gallery {path} contains embeddings that are not unit length")
    if owners.size and (owners.min() < 0 or owners.max() >= len(entries)):
        raise GalleryCorrupt(f"gallery {path} has owner indices outside its {len(entries)} people")
    names = [_person_name(path, index, entry) for index, entry in enumerate(entries)]
    if len(set(names)) != len(names):
        raise GalleryCorrupt(f"gallery {path} lists a name twice")
    counts = np.bincount(owners.astype(np.intp), minlength=len(names)) if owners.size else \
        np.zeros(len(names), dtype=np.intp)
    for name, entry, count in zip(names, entries, counts):
        if type(entry["samples"]) is not int or entry["samples"] != count or count < 1:
            raise GalleryCorrupt(f"gallery {path}: {name!r} should have {entry['samples']!r} "
                                 f"samples, the arrays hold {int(count)}")
    order = np.argsort(owners, kind="stable")
    if version == 1:
        samples = _derived_samples(names, entries, embeddings, owners)
        ops, cap, configured = {}, None, None
    else:
        samples = _registers(path, meta, arrays, rows)
        ops, cap = _operations(path, meta.get("operations")), _cap(path, meta.get("cap"))
        configured = meta.get("configured_cap")
        configured = configured if type(configured) is int and 0 <= configured < 2**31 else None
    people: dict[str, Person] = {}
    start = 0
    for index, name in enumerate(names):
        chosen = order[start:start + counts[index]]
        start += counts[index]
        registers = sorted(((samples[i], embeddings[i]) for i in chosen),
                           key=lambda r: r[0].order())
        person_samples = tuple(s for s, _ in registers)
        person_rows = frozen_rows(np.stack([r for _, r in registers]))
        people[name] = Person(name, person_samples, person_rows,
                              person_digest(name, person_samples, person_rows))
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise GalleryCorrupt(f"gallery {path} holds two samples with one id")
    return FileContents(GalleryState(people, ops, cap), str(meta.get("created_at", "")),
                        str(meta.get("updated_at", "")), configured)


def _person_name(path: Path, index: int, entry: object) -> str:
    if not isinstance(entry, dict) or "name" not in entry or "samples" not in entry:
        raise GalleryCorrupt(f"gallery {path} has a malformed person entry #{index}")
    name = entry["name"]
    try:
        canonical = validate_name(name)
    except InvalidName as err:
        raise GalleryCorrupt(f"gallery {path} has an invalid name: {err}") from err
    if canonical != name:
        raise GalleryCorrupt(f"gallery {path} has a non-canonical name {name!r}")
    return name


def _derived_samples(names: list[str], entries: list[dict], embeddings: np.ndarray,
                     owners: np.ndarray) -> list[Sample]:
    """Registers for a version 1 file, from its content alone: every copy of one old file
    derives the same ids; versions 1..k keep each person's oldest-first order and sort before
    every change made since."""
    seen = [0] * len(names)
    samples = []
    for row, owner in zip(embeddings, owners.astype(np.intp)):
        seen[owner] += 1
        name = names[owner]
        sid = hashlib.blake2b(f"{name}\0{seen[owner]}\0".encode() + row.tobytes(),
                              digest_size=SAMPLE_ID_BYTES).digest()
        samples.append(Sample(sid, seen[owner], seen[owner], "",
                              _ms(entries[owner].get("enrolled_at"))))
    return samples


def _ms(text: object) -> int:
    try:
        return max(0, int(datetime.fromisoformat(str(text)).timestamp() * 1000))
    except (ValueError, OverflowError, OSError):
        return 0


def _registers(path: Path, meta: dict, arrays: dict[str, np.ndarray], rows: int
               ) -> list[Sample]:
    for member, (dtype, ndim) in _REGISTERS.items():
        array = arrays.get(member)
        width = (SAMPLE_ID_BYTES,) if ndim == 2 else ()
        if array is None or array.dtype != dtype or array.shape != (rows, *width):
            raise GalleryCorrupt(f"gallery {path}: member {member!r} is missing or does not "
                                 f"match the {rows} embeddings")
    nodes = meta.get("nodes")
    if not isinstance(nodes, list) or not all(_node_ok(n) for n in nodes):
        raise GalleryCorrupt(f"gallery {path} has a malformed node list")
    versions, born = arrays["sample_versions"], arrays["sample_born"]
    times, origins = arrays["sample_enrolled_ms"], arrays["sample_origins"]
    for label, values in (("versions", versions), ("birth versions", born), ("times", times)):
        if values.size and (values.min() < 0 or values.max() > _MAX_INT):
            raise GalleryCorrupt(f"gallery {path} has sample {label} out of range")
    if origins.size and (origins.min() < 0 or origins.max() >= len(nodes)):
        raise GalleryCorrupt(f"gallery {path} has sample origins outside its node list")
    ids = arrays["sample_ids"]
    return [Sample(ids[i].tobytes(), int(versions[i]), int(born[i]), nodes[origins[i]],
                   int(times[i])) for i in range(rows)]


def _node_ok(node: object) -> bool:
    return isinstance(node, str) and len(node) <= MAX_NODE_ID_LENGTH


def _int_ok(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_INT


def _operations(path: Path, entries: object) -> dict[bytes, tuple[NameOp, ...]]:
    if not isinstance(entries, list):
        raise GalleryCorrupt(f"gallery {path} has no list of name operations")
    ops: dict[bytes, set[NameOp]] = {}
    for entry in entries:
        try:
            key = bytes.fromhex(entry["key"])
            op = NameOp(entry["version"], entry["node"], entry["target"], entry["at_ms"])
            if (len(key) != NAME_KEY_BYTES or not _int_ok(op.version) or not _int_ok(op.at_ms)
                    or not _node_ok(op.node) or not isinstance(op.target, str)
                    or (op.target and validate_name(op.target) != op.target)):
                raise ValueError
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise GalleryCorrupt(f"gallery {path} has a malformed name operation") from err
        ops.setdefault(key, set()).add(op)
    return {key: tuple(sorted(found)) for key, found in ops.items()}


def _cap(path: Path, entry: object) -> Cap:
    try:
        cap = Cap(entry["version"], entry["node"], entry["value"])
        if not (_int_ok(cap.version) and _node_ok(cap.node) and _int_ok(cap.value)
                and cap.value < 2**31):
            raise ValueError
    except (TypeError, KeyError, ValueError) as err:
        raise GalleryCorrupt(f"gallery {path} has a malformed sample cap") from err
    return cap


def _parse_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    if not data.startswith(b"PK"):
        raise GalleryCorrupt(f"gallery {path} is not an npz archive ({len(data)} bytes)")
    try:
        _check_member_sizes(path, data)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            # Only the members we know: an unexpected huge member is never decompressed.
            return {key: npz[key] for key in _MEMBERS if key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError,
            zlib.error, NotImplementedError) as err:  # zlib/NotImplemented: bad compression
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
                    f"in a {len(data)}-byte file")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
            nbytes = dtype.itemsize * math.prod(shape)
            if nbytes > info.file_size:
                raise GalleryCorrupt(
                    f"gallery {path}: member {info.filename!r} claims shape {shape} of "
                    f"{dtype} ({nbytes} bytes) but holds {info.file_size} bytes")


def _parse_meta(path: Path, meta: np.ndarray | None) -> dict:
    if meta is None or meta.dtype != np.uint8 or meta.ndim != 1:
        raise GalleryCorrupt(f"gallery {path} has no metadata")
    try:
        parsed = json.loads(meta.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise GalleryCorrupt(f"gallery {path} has unreadable metadata: {err}") from err
    if not isinstance(parsed, dict) or parsed.get("format") != FORMAT_NAME:
        raise GalleryCorrupt(f"gallery {path} is not a {FORMAT_NAME} file")
    return parsed
