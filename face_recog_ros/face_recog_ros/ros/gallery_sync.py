"""gallery.sync: the node's gallery shared with every node of its sync group over DDS.

Topics (absolute, so nodes in any namespace meet; the group is in the name, so fleets stay
apart), all reliable:
  /face_recog_ros/gallery_sync/<group>/updates   GalleryUpdate: each node's changes; transient
                                                 local (the last UPDATES_DEPTH), so a node that
                                                 (re)starts gets recent changes at once
  /face_recog_ros/gallery_sync/<group>/answers   GalleryUpdate: answers to requests (chunks)
  /face_recog_ros/gallery_sync/<group>/digests   GalleryDigest: every gallery.sync_period and
                                                 after each change (the last one transient local)
  /face_recog_ros/gallery_sync/<group>/requests  GallerySyncRequest: what a node lacks (the last
                                                 one transient local)
The protocol is gallery/fleet.py; every message merges by the gallery's CRDT rule, so none has
to arrive in order, once, or at all. What arrives is merged into the gallery and saved to the
node's own file (the durable copy) before it counts; a node's own service calls are
acknowledged once saved locally, whatever the peers do.

One worker thread does the work (merging, saving, answering, publishing); subscription callbacks
only queue messages, so a large answer never delays frames or services.
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.duration import Duration
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from face_recog_interfaces.msg import GalleryDigest, GallerySyncRequest, GalleryUpdate

from ..core.recognizer import FaceRecognizer
from ..gallery.columns import BadColumns
from ..gallery.errors import GalleryError
from ..gallery.fleet import FleetSync, missing_from, ops_digest, split
from ..gallery.model import Gallery
from ..gallery.options import GalleryOptions
from ..gallery.replica import GalleryState
from .gallery_messages import request_digests, request_message, update_message, update_state

UPDATES_DEPTH = 32
UPDATES_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         history=HistoryPolicy.KEEP_LAST, depth=UPDATES_DEPTH)
RETIRE_WITHIN = 5.0  # seconds a writer holding a forgotten person may live on (see _retire)
NO_WAIT = Duration(seconds=0)
# Deep enough for every chunk of a large answer to be queued while readers catch up.
ANSWERS_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST, depth=1000)
# The last digest and the last request wait in their writer for readers that match late: a
# (re)started node learns its peers' digests as soon as it discovers them, not a period later,
# and a request sent before the peer's reader had matched still arrives.
LATEST_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL,
                        history=HistoryPolicy.KEEP_LAST, depth=1)
# Their readers keep more: one history serves every peer's writer, and with depth 1 a digest
# arriving with another peer's would replace it before it is taken (seen as a digest a period
# late, 1-2 s convergence tails in tools/sync_fleet.py).
LATEST_READER_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL,
                               history=HistoryPolicy.KEEP_LAST, depth=256)


def topic_prefix(group: str) -> str:
    return f"/face_recog_ros/gallery_sync/{group}"


def share_gallery(node: Node, recognizer: FaceRecognizer, node_id: str,
                  options: GalleryOptions, on_cap: Callable[[int], None]) -> GallerySync | None:
    """Log what forgets delete from the gallery's folder; with gallery.sync, start the sync
    (None without)."""
    if recognizer.store is not None:
        store, log = recognizer.store, node.get_logger()
        recognizer.listeners.append(lambda: [log.info(f"forget: {line}")
                                             for line in store.take_scrubbed()])
    if not options.sync:
        return None
    return GallerySync(node, recognizer, node_id, options.sync_group, options.sync_period,
                       on_cap)


class GallerySync:
    """The sync of one node's gallery; see the module docstring. ``on_cap`` is called (from the
    worker thread) with a sample cap that came from the group."""

    def __init__(self, node: Node, recognizer: FaceRecognizer, node_id: str, group: str,
                 period: float, on_cap: Callable[[int], None]) -> None:
        self._node, self._recognizer, self.node_id = node, recognizer, node_id
        gallery = recognizer.gallery
        self._space, self._dim = gallery.embedding_space, gallery.dim
        self.group = group
        self._fleet = FleetSync(node_id, self._space, self._dim, period)
        self._on_cap = on_cap
        self._log = node.get_logger()
        prefix = topic_prefix(group)
        self._updates_topic = f"{prefix}/updates"
        # A spare writer, discovered by the peers in advance, replaces the current one after a
        # forget (see _forget_history and _retire).
        self._updates_pub, self._spare_pub = self._updates_publisher(), self._updates_publisher()
        self._answers_pub = node.create_publisher(GalleryUpdate, f"{prefix}/answers", ANSWERS_QOS)
        self._digests_pub = node.create_publisher(GalleryDigest, f"{prefix}/digests", LATEST_QOS)
        self._requests_pub = node.create_publisher(GallerySyncRequest, f"{prefix}/requests",
                                                   LATEST_QOS)
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake, self._stop = threading.Event(), threading.Event()
        group_cb = MutuallyExclusiveCallbackGroup()
        self._subscriptions = [
            node.create_subscription(kind, f"{prefix}/{topic}", self._queue(topic), qos,
                                     callback_group=group_cb)
            for kind, topic, qos in ((GalleryUpdate, "updates", UPDATES_QOS),
                                     (GalleryUpdate, "answers", ANSWERS_QOS),
                                     (GalleryDigest, "digests", LATEST_READER_QOS),
                                     (GallerySyncRequest, "requests", LATEST_READER_QOS))]
        self._told = 0  # the gallery's change sequence already published
        self._forgets = gallery.forgets
        self._retiring: float | None = None  # the writer must go by then (after a forget)
        self._bad_senders: set[str] = set()
        self.stats = {"updates_in": 0, "updates_out": 0, "answers_out": 0, "requests_out": 0}
        recognizer.listeners.append(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="gallery_sync", daemon=True)
        self._thread.start()
        self._log.info(f"gallery sync: group {group!r} as {node_id} on {prefix}/*")

    def peers(self) -> dict[str, bool]:
        """Peers heard lately, and whether each one's gallery equals ours."""
        return self._fleet.in_sync(self._recognizer.gallery.digest(), time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self._wake.set in self._recognizer.listeners:
            self._recognizer.listeners.remove(self._wake.set)
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        for pub in (self._updates_pub, self._spare_pub, self._answers_pub, self._digests_pub,
                    self._requests_pub):
            self._node.destroy_publisher(pub)

    # --------------------------------------------------------------- worker
    def _queue(self, kind: str) -> Callable[[Any], None]:
        def enqueue(msg: Any) -> None:
            if msg.sender != self.node_id:
                self._inbox.put((kind, msg))
                self._wake.set()
        return enqueue

    def _run(self) -> None:
        next_digest = 0.0
        while not self._stop.is_set():
            wait = next_digest - time.monotonic()
            self._wake.wait(timeout=max(0.0, wait if self._retiring is None else min(wait, 0.05)))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self._take_in() | self._publish_news():
                    next_digest = 0.0  # tell the group at once
                now = time.monotonic()
                self._retire(now)
                if now >= next_digest:
                    self._publish_digest()
                    next_digest = now + self._fleet.period
                self._ask(now)
            except Exception as exc:  # a bug must not end the sync: log it and go on
                self._log.error(f"gallery sync: {exc}\n{traceback.format_exc()}")
                time.sleep(self._fleet.period)

    def _take_in(self) -> bool:
        """Handle every queued message; merge and save the updates in one step. True when the
        gallery changed."""
        updates: list[GalleryState] = []
        while True:
            try:
                kind, msg = self._inbox.get_nowait()
            except queue.Empty:
                break
            why = self._fleet.refusal(msg.sender, msg.embedding_space, msg.dim)
            if why is not None:
                if why:
                    self._log.warning(why)
                continue
            if kind == "digests":
                if msg.sender not in self._fleet.peers:
                    self._log.info(f"gallery sync: peer {msg.sender} ({msg.people} people)")
                self._fleet.heard(msg.sender, msg.digest, msg.people, msg.samples,
                                  time.monotonic())
            elif kind == "requests":
                if msg.peer == self.node_id:
                    self._answer(msg)
            elif kind == "updates" or msg.reply_to == self.node_id:
                state = self._decode(msg)
                if state is not None:
                    updates.append(state)
                if kind == "answers" and self._fleet.answered(
                        msg.sender, msg.request_id, msg.chunk, msg.chunks, time.monotonic()):
                    self._log.info(f"gallery sync: {msg.sender} answered request "
                                   f"{msg.request_id} ({msg.chunks} chunk(s))")
        return bool(updates) and self._absorb(updates)

    def _decode(self, msg: GalleryUpdate) -> GalleryState | None:
        try:
            state = update_state(msg, self._dim)
        except BadColumns as exc:
            if msg.sender not in self._bad_senders:
                self._bad_senders.add(msg.sender)
                self._log.warning(f"gallery sync: refused a malformed update from "
                                  f"{msg.sender} ({exc}); reported once per peer")
            return None
        self.stats["updates_in"] += 1
        return state

    def _absorb(self, updates: list[GalleryState]) -> bool:
        if len(updates) > 1:  # one merge and one save for everything that queued up
            scratch = Gallery(self._space, self._dim, max_samples_per_person=None)
            for state in updates:
                scratch.join(state)
            updates = [scratch.state()]
        gallery = self._recognizer.gallery
        cap = gallery.cap
        try:
            changed = self._recognizer.absorb(updates[0])
        except (GalleryError, OSError) as exc:  # the senders still hold it: it comes again
            self._log.warning(f"gallery sync: could not save the group's changes ({exc})")
            return False
        if gallery.cap != cap:
            self._on_cap(gallery.cap.value)
        return changed

    def _publish_news(self) -> bool:
        """Publish what changed here since last time; True when there was something."""
        gallery = self._recognizer.gallery
        if gallery.forgets > self._forgets:
            self._forget_history()
        news, self._told = gallery.changes_since(self._told)
        if not (news.people or news.ops or news.cap):
            return False
        chunks = split(news, self._dim)
        for i, chunk in enumerate(chunks):
            self._updates_pub.publish(update_message(chunk, self.node_id, self._space, self._dim,
                                                     chunk=i, chunks=len(chunks)))
        self.stats["updates_out"] += len(chunks)
        return True

    def _forget_history(self) -> None:
        """A forget: this node's transient-local history may hold the forgotten person's
        embeddings, which a late joiner would still receive, so its writer is retired (see
        _retire). Until then it still carries the changes, the forget first: the peers have
        matched it, while matching a new writer takes DDS discovery (0.1-2.6 s measured here)."""
        self._forgets = self._recognizer.gallery.forgets
        self._retiring = time.monotonic() + RETIRE_WITHIN

    def _retire(self, now: float) -> None:
        """Destroy the writer whose history a forget made stale once every peer has matched the
        spare and acknowledged everything the writer sent (the forget among it; a writer
        destroyed earlier takes unacknowledged samples with it, and the peers would wait for
        the digests to repair that), or after RETIRE_WITHIN, for peers that went away. The
        spare takes over and a new spare starts its discovery."""
        if self._retiring is None or (now < self._retiring and (
                self._spare_pub.get_subscription_count()
                < self._updates_pub.get_subscription_count()
                or not self._updates_pub.wait_for_all_acked(NO_WAIT))):
            return
        self._node.destroy_publisher(self._updates_pub)
        self._updates_pub, self._spare_pub = self._spare_pub, self._updates_publisher()
        self._retiring = None

    def _updates_publisher(self) -> Any:
        """Without QoS event handlers: those are waitables of the executor, and this publisher
        is replaced from the worker thread while the executor spins."""
        return self._node.create_publisher(
            GalleryUpdate, self._updates_topic, UPDATES_QOS,
            event_callbacks=PublisherEventCallbacks(use_default_callbacks=False))

    def _publish_digest(self) -> None:
        gallery = self._recognizer.gallery
        state = gallery.checkpoint().state
        self._digests_pub.publish(GalleryDigest(
            sender=self.node_id, embedding_space=self._space, dim=self._dim,
            digest=gallery.digest(), people=len(state.people), samples=state.num_samples,
            operations=state.num_ops))

    def _answer(self, msg: GallerySyncRequest) -> None:
        try:
            theirs = request_digests(msg)
        except BadColumns as exc:
            self._log.warning(f"gallery sync: malformed request from {msg.sender} ({exc})")
            return
        lack = missing_from(self._recognizer.gallery.state(), theirs, msg.ops_digest)
        chunks = split(lack, self._dim)
        for i, chunk in enumerate(chunks):
            self._answers_pub.publish(update_message(
                chunk, self.node_id, self._space, self._dim, reply_to=msg.sender,
                request_id=msg.request_id, chunk=i, chunks=len(chunks)))
        self.stats["answers_out"] += len(chunks)

    def _ask(self, now: float) -> None:
        gallery = self._recognizer.gallery
        peer = self._fleet.due(gallery.digest(), now)
        if peer is None:
            return
        state = gallery.state()
        request_id = self._fleet.ask(peer, now)
        self._log.info(f"gallery sync: asking {peer} for what this node lacks "
                       f"(request {request_id})")
        self._requests_pub.publish(request_message(
            state, ops_digest(state.ops), self.node_id, peer, request_id, self._space,
            self._dim))
        self.stats["requests_out"] += 1
