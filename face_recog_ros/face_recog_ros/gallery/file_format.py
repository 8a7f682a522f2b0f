"""The gallery file's format: what the bytes hold, written and validated.

A plain ``.npz`` (no pickles). ``meta`` is UTF-8 JSON (as uint8): the model, the people (name
order), the name operations (forgets and renames, by hashed name), the sample cap, the nodes
that enrolled samples and the alignment methods. ``embeddings`` (M, D) float32 holds the rows
grouped by person, each person's in :meth:`.replica.Sample.order`; ``owners`` (M,) is the person
index of each row, and ``sample_ids`` (M, 16) uint8, ``sample_versions``, ``sample_born``,
``sample_enrolled_ms`` (M,) int64, ``sample_origins`` (M,) int32 (an index into the nodes) and
``sample_aligned`` (M,) int32 (an index into the alignments) are each row's register
(:mod:`.replica`). Version 1 files (no registers) still load: their samples get ids derived
from their content, so every copy of one old file agrees on them, and the person's alignment.

Decoding is hardened: every member's declared size is bounded before numpy allocates it, and
every field is validated (:mod:`.columns`, as for the fleet's messages); loading then
normalises the contents by the merge rules, so a file that is valid but not canonical
(unsorted, over the cap) loads as its canonical form.
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

from .columns import BadColumns, Columns, from_columns, to_columns
from .errors import GalleryCorrupt, GalleryMismatch, GalleryVersionError
from .replica import NAME_KEY_BYTES, SAMPLE_ID_BYTES, UNLIMITED, Cap, GalleryState, ms_to_iso

FORMAT_NAME = "face_recog_ros.gallery"
FORMAT_VERSION = 2  # 2: sample registers, name operations, the cap (1: names and rows only)
_REGISTERS = ("sample_ids", "sample_versions", "sample_born", "sample_enrolled_ms",
              "sample_origins", "sample_aligned")
_MEMBERS = ("meta", "embeddings", "owners", *_REGISTERS)
# A member may expand to at most this many times the file's size (our writer stores members
# uncompressed; this still admits a compressed copy but bounds a decompression bomb).
_MAX_EXPANSION = 16


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
    c = to_columns(state, dim)
    cap = state.cap or Cap(0, "", UNLIMITED)
    meta = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "embedding_space": embedding_space,
        "dim": dim, "created_at": created_at, "updated_at": updated_at,
        "cap": {"value": cap.value, "version": cap.version, "node": cap.node},
        "configured_cap": configured_cap, "nodes": c.nodes, "alignments": c.alignments,
        "people": [{"name": n, "samples": len(p.samples),
                    "enrolled_at": ms_to_iso(p.enrolled.enrolled_ms),
                    "updated_at": ms_to_iso(p.updated.enrolled_ms)}
                   for n, p in state.people.items()],
        "operations": [{"key": bytes(c.op_keys[i]).hex(), "version": int(c.op_versions[i]),
                        "node": c.nodes[c.op_nodes[i]], "target": c.op_targets[i],
                        "at_ms": int(c.op_at_ms[i])} for i in range(len(c.op_targets))],
    }
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=c.embeddings,
             owners=np.repeat(np.arange(len(c.names), dtype=np.int32), c.counts),
             sample_ids=c.ids, sample_versions=c.versions, sample_born=c.born,
             sample_enrolled_ms=c.enrolled_ms, sample_origins=c.origins,
             sample_aligned=c.aligned,
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
    entries, embeddings = meta.get("people"), arrays.get("embeddings")
    owners = arrays.get("owners")
    if not isinstance(entries, list) or embeddings is None or owners is None:
        raise GalleryCorrupt(f"gallery {path} lacks people metadata, embeddings or owners")
    rows = embeddings.shape[0] if embeddings.ndim == 2 else -1
    if owners.ndim != 1 or owners.dtype.kind not in "iu" or owners.shape[0] != rows:
        raise GalleryCorrupt(
            f"gallery {path} has inconsistent arrays: embeddings {embeddings.dtype} "
            f"{embeddings.shape}, owners {owners.dtype} {owners.shape}")
    if not all(isinstance(e, dict) and "name" in e and "samples" in e for e in entries):
        raise GalleryCorrupt(f"gallery {path} has a malformed person entry")
    if owners.size and (owners.min() < 0 or owners.max() >= len(entries)):
        raise GalleryCorrupt(f"gallery {path} has owner indices outside its {len(entries)} people")
    counts = np.bincount(owners.astype(np.intp), minlength=len(entries)) if owners.size else \
        np.zeros(len(entries), dtype=np.intp)
    for entry, count in zip(entries, counts):
        if type(entry["samples"]) is not int or entry["samples"] != count:
            raise GalleryCorrupt(f"gallery {path}: {entry['name']!r} should have "
                                 f"{entry['samples']!r} samples, the arrays hold {int(count)}")
    order = np.argsort(owners, kind="stable")  # rows grouped by person, file order within
    try:
        if version == 1:
            columns = _derived_columns(entries, embeddings[order], owners[order], counts)
        else:
            columns = _stored_columns(meta, arrays, order, counts)
        columns.names = [e["name"] for e in entries]
        state = from_columns(columns, dim)
    except BadColumns as err:
        raise GalleryCorrupt(f"gallery {path}: {err}") from None
    configured = meta.get("configured_cap")
    configured = configured if type(configured) is int and 0 <= configured < 2**31 else None
    return FileContents(state, str(meta.get("created_at", "")),
                        str(meta.get("updated_at", "")), configured if version > 1 else None)


def _derived_columns(entries: list[dict], rows: np.ndarray, owners: np.ndarray,
                     counts: np.ndarray) -> Columns:
    """Registers for a version 1 file, from its content alone: every copy of one old file
    derives the same ids; versions 1..k keep each person's oldest-first order and sort before
    every change made since."""
    index = np.concatenate([np.arange(1, k + 1) for k in counts]) if len(counts) else \
        np.zeros(0, np.int64)
    ids = [hashlib.blake2b(f"{entries[o].get('name')}\0{i}\0".encode() + row.tobytes(),
                           digest_size=SAMPLE_ID_BYTES).digest()
           for o, i, row in zip(owners.tolist(), index.tolist(), rows)]
    enrolled = np.array([_ms(entries[o].get("enrolled_at")) for o in owners.tolist()], np.int64)
    # "alignment" per person: written by version 1 files since landmark alignment, else absent.
    methods = [entry.get("alignment", "") for entry in entries]
    alignments = sorted(set(methods)) if all(isinstance(m, str) for m in methods) else None
    if alignments is None:
        raise BadColumns("a person's alignment is not text")
    aligned = np.array([alignments.index(methods[o]) for o in owners.tolist()], np.int32)
    return Columns(
        names=[], counts=counts, embeddings=rows,
        ids=np.frombuffer(b"".join(ids), np.uint8).reshape(len(ids), SAMPLE_ID_BYTES),
        versions=index.astype(np.int64), born=index.astype(np.int64), enrolled_ms=enrolled,
        origins=np.zeros(len(ids), np.int32), nodes=[""], aligned=aligned,
        alignments=alignments,
        op_keys=np.zeros((0, NAME_KEY_BYTES), np.uint8),
        op_versions=np.zeros(0, np.int64), op_nodes=np.zeros(0, np.int32), op_targets=[],
        op_at_ms=np.zeros(0, np.int64), cap=None)


def _ms(text: object) -> int:
    try:
        return max(0, int(datetime.fromisoformat(str(text)).timestamp() * 1000))
    except (ValueError, OverflowError, OSError):
        return 0


def _stored_columns(meta: dict, arrays: dict[str, np.ndarray], order: np.ndarray,
                    counts: np.ndarray) -> Columns:
    for member in _REGISTERS:
        if member not in arrays:
            raise BadColumns(f"member {member!r} is missing")
        if arrays[member].shape[:1] != order.shape:
            raise BadColumns(f"member {member!r} does not match the embeddings")
    nodes, ops, cap = meta.get("nodes"), meta.get("operations"), meta.get("cap")
    alignments = meta.get("alignments")
    if not isinstance(nodes, list) or not isinstance(alignments, list) or not isinstance(
            ops, list) or not all(isinstance(op, dict) for op in ops):
        raise BadColumns("the node list, the alignments or the name operations are malformed")
    try:
        op_nodes = [op["node"] for op in ops]
        all_nodes = nodes + op_nodes
        keys = b"".join(bytes.fromhex(op["key"]) for op in ops)
        if len(keys) != NAME_KEY_BYTES * len(ops):
            raise ValueError
        return Columns(
            names=[], counts=counts, embeddings=arrays["embeddings"][order],
            ids=arrays["sample_ids"][order], versions=arrays["sample_versions"][order],
            born=arrays["sample_born"][order],
            enrolled_ms=arrays["sample_enrolled_ms"][order],
            origins=arrays["sample_origins"][order], nodes=all_nodes,
            aligned=arrays["sample_aligned"][order], alignments=alignments,
            op_keys=np.frombuffer(keys, np.uint8).reshape(len(ops), NAME_KEY_BYTES),
            op_versions=_json_ints([op["version"] for op in ops]),
            op_nodes=np.arange(len(nodes), len(all_nodes)),
            op_targets=[op["target"] for op in ops],
            op_at_ms=_json_ints([op["at_ms"] for op in ops]),
            cap=Cap(cap["version"], cap["node"], cap["value"]))
    except (TypeError, KeyError, ValueError, OverflowError) as err:
        raise BadColumns(f"the name operations or the cap are malformed ({err})") from None


def _json_ints(values: list) -> np.ndarray:
    if not all(type(v) is int and 0 <= v < 2**63 for v in values):
        raise BadColumns("a version or time is not a non-negative integer")
    return np.array(values, np.int64)


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
