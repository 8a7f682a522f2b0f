"""Keeping one copy of a gallery in step with its peers: what to tell them, what to ask them, and
whom to refuse. ROS-free; ``ros/gallery_sync.py`` carries the messages.

The protocol (each node runs it; every message is a state that merges by :mod:`.replica`'s rule,
so none needs to arrive in order, once, or at all for the copies to converge):
- After a change here (an enrolment, a forget, ... or one read from the file), the news
  (:meth:`~.model.Gallery.changes_since`) is published to the group, split in chunks.
- Every node publishes its digest now and then and after each change. A peer whose digest
  differs from ours for longer than changes take to arrive, or one heard for the first time,
  is asked (one request at a time) for what we lack: the request lists our people's record
  digests, and the answer holds the people whose records differ, the name operations if ours
  differ, and the cap. What the peer lacks it asks us for the same way.
- A peer whose embedding model differs is refused (its messages are never merged) and logged
  once.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from .replica import GalleryState, NameOp, Person, hash_ops

# Bytes of people per chunk. Each chunk is one DDS sample: the RTPS layer fragments it (64 KB
# UDP datagrams, the shared-memory transport's segment), and a reliable writer repeats only the
# fragments a reader missed; smaller chunks let merging start before the last one arrives.
CHUNK_BYTES = 256 * 1024
OPS_PER_CHUNK = 2000
_SAMPLE_OVERHEAD = 64  # bytes of register per sample besides the embedding


def ops_digest(ops: Mapping[bytes, tuple[NameOp, ...]]) -> str:
    h = hashlib.sha256()
    hash_ops(h, ops)
    return h.hexdigest()


def split(state: GalleryState, dim: int, budget: int = CHUNK_BYTES) -> list[GalleryState]:
    """``state`` in chunks of about ``budget`` bytes of people (a person is never split) and
    :data:`OPS_PER_CHUNK` operations; the cap travels in the first. Never empty."""
    chunks = [GalleryState(cap=state.cap)]
    size = 0
    for name, person in state.people.items():
        cost = len(person.samples) * (4 * dim + _SAMPLE_OVERHEAD) + len(name)
        if size and size + cost > budget:
            chunks.append(GalleryState())
            size = 0
        chunks[-1].people[name] = person
        size += cost
    count = 0
    for key, ops in state.ops.items():
        if count + len(ops) > OPS_PER_CHUNK and count:
            chunks.append(GalleryState())
            count = 0
        chunks[-1].ops[key] = ops
        count += len(ops)
    return chunks


def missing_from(ours: GalleryState, their_digests: Mapping[str, bytes],
                 their_ops_digest: str) -> GalleryState:
    """What a peer that holds ``their_digests`` (name -> record digest) and operations with
    ``their_ops_digest`` lacks of ``ours``: every person whose record differs, all our
    operations if theirs differ, and the cap."""
    people: dict[str, Person] = {n: p for n, p in ours.people.items()
                                 if their_digests.get(n) != p.digest}
    ops = dict(ours.ops) if ops_digest(ours.ops) != their_ops_digest else {}
    return GalleryState(people, ops, ours.cap)


@dataclass
class Peer:
    """What we know of one node of the group."""

    digest: str = ""
    people: int = 0
    samples: int = 0
    first_heard: float = 0.0  # monotonic time of its first digest
    heard: float = 0.0  # ... and of its last
    differ_since: float | None = None  # when its digest and ours started to differ
    pair: tuple[str, str] = ("", "")  # (ours, theirs), as they are now ...
    pair_since: float = 0.0  # ... since then
    synced_once: bool = False  # a request to it has been answered in full (ask others first)


@dataclass
class Request:
    peer: str
    request_id: int
    progress: float  # when it was sent, or its last chunk arrived
    chunks_seen: set[int] = field(default_factory=set)


class FleetSync:
    """The protocol state of one node (not thread-safe: one worker thread drives it).

    ``period`` is the digest period in seconds; a difference that outlasts ``settle`` periods
    (changes still in flight take less) is repaired, as is any difference that outlasts
    ``patience`` periods even while the digests keep changing. A request whose answer makes no
    progress for ``timeout`` seconds (at least three periods) is given up and asked again.
    """

    def __init__(self, node_id: str, embedding_space: str, dim: int, period: float, *,
                 settle: float = 1.5, patience: float = 10.0, timeout: float = 2.0) -> None:
        self.node_id, self.embedding_space, self.dim = node_id, embedding_space, dim
        self.period = period
        self._settle, self._patience = settle * period, patience * period
        self._timeout = max(timeout, 3 * period)
        self.peers: dict[str, Peer] = {}
        self.refused: dict[str, str] = {}  # peer -> why (reported once)
        self.request: Request | None = None
        self._next_id = 1

    def refusal(self, sender: str, embedding_space: str, dim: int) -> str | None:
        """None when ``sender``'s messages may be merged; otherwise why not, the first time
        only ('' after that), so the caller logs it once."""
        if embedding_space == self.embedding_space and dim == self.dim:
            return None
        if sender in self.refused:
            return ""
        why = (f"refusing gallery sync with {sender}: its gallery holds embeddings of model "
               f"{embedding_space!r} (dim {dim}), this node's model is {self.embedding_space!r} "
               f"(dim {self.dim}); they cannot be compared, so its changes are not merged")
        self.refused[sender] = why
        return why

    def heard(self, sender: str, digest: str, people: int, samples: int, now: float) -> None:
        peer = self.peers.get(sender)
        if peer is None:
            peer = self.peers[sender] = Peer(first_heard=now)
        peer.digest, peer.people, peer.samples, peer.heard = digest, people, samples, now

    def in_sync(self, own_digest: str, now: float) -> dict[str, bool]:
        """Peers heard within the last three periods, and whether each holds our digest."""
        return {name: p.digest == own_digest for name, p in sorted(self.peers.items())
                if now - p.heard <= 3 * self.period}

    def due(self, own_digest: str, now: float) -> str | None:
        """The peer to ask for what we lack now, if any (one request at a time)."""
        if self.request is not None:
            if now - self.request.progress < self._timeout:
                return None
            self.request = None  # lost (or the peer went away): ask again
        candidates = []
        for name, peer in self.peers.items():
            if now - peer.heard > 3 * self.period or peer.digest == own_digest:
                peer.differ_since, peer.pair = None, ("", "")
                continue
            if peer.differ_since is None:
                peer.differ_since = now
            if peer.pair != (own_digest, peer.digest):
                peer.pair, peer.pair_since = (own_digest, peer.digest), now
            new = now - peer.first_heard < self._settle  # just met: ask at once
            if (new or now - peer.pair_since >= self._settle
                    or now - peer.differ_since >= self._patience):
                candidates.append((peer.synced_once, -peer.samples, name))
        return min(candidates)[2] if candidates else None

    def ask(self, peer: str, now: float) -> int:
        """Note a request sent to ``peer``; returns its id."""
        request_id, self._next_id = self._next_id, self._next_id + 1
        self.request = Request(peer, request_id, now)
        return request_id

    def answered(self, sender: str, request_id: int, chunk: int, chunks: int, now: float) -> bool:
        """Count a chunk of an answer; True when the request is complete."""
        request = self.request
        if request is None or request.peer != sender or request.request_id != request_id:
            return False
        request.chunks_seen.add(chunk)
        request.progress = now
        if len(request.chunks_seen) < chunks:
            return False
        self.request = None
        peer = self.peers.get(sender)
        if peer is not None:
            peer.synced_once = True
            peer.differ_since, peer.pair = None, ("", "")
        return True
