"""Gallery states in and out of face_recog_interfaces' GalleryUpdate and GallerySyncRequest.

The columns (gallery/columns.py) map one to one onto the message fields; the arrays travel as
array.array buffers (no per-element Python objects), and what arrives is validated by
``from_columns`` like a file (a buggy or hostile peer's message is refused, never merged).
"""
from __future__ import annotations

import array

import numpy as np

from face_recog_interfaces.msg import GallerySyncRequest, GalleryUpdate

from ..gallery.columns import BadColumns, Columns, from_columns, rows_in, to_columns
from ..gallery.replica import NAME_KEY_BYTES, SAMPLE_ID_BYTES, Cap, GalleryState


def _buffer(values: np.ndarray, code: str, dtype: str) -> array.array:
    out = array.array(code)
    out.frombytes(np.ascontiguousarray(values, dtype=dtype).tobytes())
    return out


def _array(values: object, dtype: str) -> np.ndarray:
    return np.frombuffer(memoryview(values).cast("B"), dtype) if len(values) else \
        np.zeros(0, dtype)


def update_message(state: GalleryState, sender: str, embedding_space: str, dim: int, *,
                   reply_to: str = "", request_id: int = 0, chunk: int = 0,
                   chunks: int = 1) -> GalleryUpdate:
    c = to_columns(state, dim)
    msg = GalleryUpdate(sender=sender, embedding_space=embedding_space, dim=dim,
                        reply_to=reply_to, request_id=request_id, chunk=chunk, chunks=chunks)
    msg.names = c.names
    msg.sample_counts = _buffer(c.counts, "I", "<u4")
    msg.sample_ids = _buffer(c.ids.ravel(), "B", "u1")
    msg.sample_versions = _buffer(c.versions, "q", "<i8")
    msg.sample_born = _buffer(c.born, "q", "<i8")
    msg.sample_enrolled_ms = _buffer(c.enrolled_ms, "q", "<i8")
    msg.sample_origins = _buffer(c.origins, "I", "<u4")
    msg.sample_aligned = _buffer(c.aligned, "I", "<u4")
    msg.embeddings = _buffer(c.embeddings.ravel(), "f", "<f4")
    msg.op_keys = _buffer(c.op_keys.ravel(), "B", "u1")
    msg.op_versions = _buffer(c.op_versions, "q", "<i8")
    msg.op_nodes = _buffer(c.op_nodes, "I", "<u4")
    msg.op_targets = c.op_targets
    msg.op_at_ms = _buffer(c.op_at_ms, "q", "<i8")
    msg.nodes = c.nodes
    msg.alignments = c.alignments
    if state.cap is not None:
        msg.has_cap, msg.cap_version = True, state.cap.version
        msg.cap_node, msg.cap_value = state.cap.node, state.cap.value
    return msg


def update_state(msg: GalleryUpdate, dim: int) -> GalleryState:
    """The state a GalleryUpdate carries; BadColumns when it is inconsistent."""
    samples = len(msg.sample_versions)
    ops = len(msg.op_targets)
    ids, keys = _array(msg.sample_ids, "u1"), _array(msg.op_keys, "u1")
    if ids.size != samples * SAMPLE_ID_BYTES or keys.size != ops * NAME_KEY_BYTES:
        raise BadColumns("sample ids or operation keys do not match their counts")
    cap = Cap(int(msg.cap_version), msg.cap_node, int(msg.cap_value)) if msg.has_cap else None
    return from_columns(Columns(
        names=list(msg.names), counts=_array(msg.sample_counts, "<u4"),
        ids=ids.reshape(samples, SAMPLE_ID_BYTES), versions=_array(msg.sample_versions, "<i8"),
        born=_array(msg.sample_born, "<i8"),
        enrolled_ms=_array(msg.sample_enrolled_ms, "<i8"),
        origins=_array(msg.sample_origins, "<u4"), aligned=_array(msg.sample_aligned, "<u4"),
        embeddings=rows_in(msg.embeddings, dim),
        op_keys=keys.reshape(ops, NAME_KEY_BYTES), op_versions=_array(msg.op_versions, "<i8"),
        op_nodes=_array(msg.op_nodes, "<u4"), op_targets=list(msg.op_targets),
        op_at_ms=_array(msg.op_at_ms, "<i8"), nodes=list(msg.nodes),
        alignments=list(msg.alignments), cap=cap), dim)


def request_message(state: GalleryState, ops_digest: str, sender: str, peer: str,
                    request_id: int, embedding_space: str, dim: int) -> GallerySyncRequest:
    msg = GallerySyncRequest(sender=sender, peer=peer, request_id=request_id,
                             embedding_space=embedding_space, dim=dim, ops_digest=ops_digest)
    msg.names = list(state.people)
    digests = array.array("B")
    digests.frombytes(b"".join(p.digest for p in state.people.values()))
    msg.digests = digests
    return msg


def request_digests(msg: GallerySyncRequest) -> dict[str, bytes]:
    """name -> record digest of the asker; BadColumns when the lists disagree."""
    raw = bytes(msg.digests)
    if len(raw) != 16 * len(msg.names):
        raise BadColumns("names and record digests disagree")
    return {name: raw[16 * i:16 * i + 16] for i, name in enumerate(msg.names)}
