"""The node's gallery services: ~/enroll, ~/forget, ~/rename and ~/list_faces.

Bad requests answer success=false with the reason; a bug or an I/O failure answers
"internal error: ..." and is logged with its traceback, and the services keep serving. ~/enroll
with an image enrols the one face in it; with an empty image it collects samples of the face in
view of the first camera (the stream's live enrolment) and answers when they are in. ~/rename of
unknown_<n> enrols that cluster of a returning stranger (the stream's promotion).

The services exist in every lifecycle state and say when they cannot serve: ~/enroll needs the
models running (the node active); ~/forget, ~/rename and ~/list_faces need the gallery loaded
(the node configured: inactive or active).
"""
from __future__ import annotations

import functools
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from face_recog_interfaces.srv import Enroll, Forget, ListFaces, Rename

from ..core.recognizer import EnrollError, FaceRecognizer
from ..gallery.model import NameTaken, UnknownPerson
from ..gallery.names import InvalidName, validate_name
from ..gallery.store import GalleryNotSaved
from ..io.image_messages import ImageConversionError, image_to_rgb
from ..tracking.enrolment import EnrollState
from ..tracking.stream import StreamRecognizer
from ..tracking.strangers import UnknownCluster, is_cluster_label
from .messages import iso_to_time
from .service_qos import SERVICE_QOS

DEFAULT_LIVE_SAMPLES = 5


def service(func: Callable) -> Callable:
    """A service callback that answers success=false with the reason instead of raising, and
    counts every answer (per service: succeeded / refused) for /diagnostics."""
    kind = func.__name__.lstrip("_")

    @functools.wraps(func)
    def wrapper(self: GalleryServices, request: Any, response: Any) -> Any:
        try:
            response = func(self, request, response)
        except Unavailable as exc:
            response.success, response.message = False, str(exc)
        except Exception as exc:  # a bug or an I/O failure: answer, log, keep serving
            self._node.get_logger().error(
                f"{func.__name__} failed: {exc}\n{traceback.format_exc()}"
            )
            response.success, response.message = False, f"internal error: {exc}"
        with self._counts_lock:
            self._counts[f"{kind}_{'succeeded' if response.success else 'refused'}"] += 1
        return response
    return wrapper


class Unavailable(Exception):
    """The node's lifecycle state does not allow this request; the message says what would."""


class GalleryServices:
    """The services of ``node``, over what its current lifecycle state provides: the node's
    ``recognizer`` (None until configured), ``live_stream`` (the first camera's stream: live
    enrolment and promotion) and ``state_label``. ``settings`` is the node's dict of node-level
    parameters."""

    def __init__(self, node: Node, settings: dict[str, Any]) -> None:
        self._node = node
        self._settings = settings
        self._enroll_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        group = ReentrantCallbackGroup()
        for srv_type, name, handler in ((Enroll, "~/enroll", self._enroll),
                                        (Forget, "~/forget", self._forget),
                                        (Rename, "~/rename", self._rename),
                                        (ListFaces, "~/list_faces", self._list_faces)):
            node.create_service(
                srv_type, name, handler, qos_profile=SERVICE_QOS, callback_group=group
            )

    def answers(self) -> dict[str, float]:
        """Requests answered since start, per service and outcome: services_<name>_<outcome>."""
        with self._counts_lock:
            return {f"services_{key}": float(n) for key, n in sorted(self._counts.items())}

    @property
    def recognizer(self) -> FaceRecognizer:
        """The recognizer, when the gallery is loaded (configured); Unavailable otherwise."""
        recognizer = self._node.recognizer
        if recognizer is None:
            raise Unavailable(f"the gallery is not loaded: the node is {self._node.state_label}; "
                              "configure it (ros2 lifecycle set <node> configure)")
        return recognizer

    @property
    def _stream(self) -> StreamRecognizer:
        _ = self.recognizer  # raises Unavailable when unconfigured
        return self._node.live_stream

    def _saved(self) -> str:
        """What an acknowledgement means: saved in this node's own gallery file; with
        gallery.sync the group takes it from there."""
        if self._node.recognizer is None or self._node.recognizer.store is None:
            return " (kept in memory: gallery.path is empty)"
        sync = self._node.gallery_sync
        shared = f"; sync group {sync.group!r} gets it from this node" if sync else ""
        return f" (saved in this node's gallery file{shared})"

    @service
    def _enroll(self, request: Enroll.Request, response: Enroll.Response) -> Enroll.Response:
        if self._node.state_label != "active":
            raise Unavailable(f"cannot enrol: the node is {self._node.state_label}, and enrolment "
                              "needs the models running; activate it (ros2 lifecycle set <node> "
                              "activate)")
        if not self._enroll_lock.acquire(blocking=False):
            response.success, response.message = False, (
                "another enrolment is in progress; try again when it has finished"
            )
            return response
        try:
            name = validate_name(request.name)
            if request.image.width == 0 and request.image.height == 0:
                return self._enroll_live(name, request, response)
            return self._enroll_image(name, request, response)
        except InvalidName as exc:
            response.success, response.message = False, f"invalid name: {exc}"
            return response
        finally:
            self._enroll_lock.release()

    def _enroll_image(self, name: str, request: Enroll.Request,
                      response: Enroll.Response) -> Enroll.Response:
        try:
            rgb = image_to_rgb(request.image, self._settings["max_input_pixels"])
            result = self.recognizer.enroll(
                name, [rgb], overwrite=request.overwrite, require_single=True, labels=["the image"]
            )
        except ImageConversionError as exc:
            response.success, response.message = False, f"cannot read the image: {exc}"
            return response
        except EnrollError as exc:
            response.success, response.message = False, str(exc)
            return response
        except GalleryNotSaved as exc:
            response.success, response.message = False, f"nothing was enrolled: {exc}"
            return response
        response.success, response.samples_added, response.total_samples = (
            True,
            result.added,
            result.total,
        )
        response.message = (f"enrolled {name!r} from the image; {name!r} now has {result.total} "
                            f"sample(s){self._saved()}")
        return response

    def _enroll_live(self, name: str, request: Enroll.Request,
                     response: Enroll.Response) -> Enroll.Response:
        """Collect samples of the face in view of the first camera; wait for the outcome."""
        wanted = request.num_samples or DEFAULT_LIVE_SAMPLES
        # Track ids start at 1, so 0 (the field's default when a caller leaves it out) = largest
        # face.
        track_id = request.track_id if request.track_id > 0 else -1
        try:
            status = self._stream.enroll_live(name, wanted, track_id, request.overwrite,
                                              timeout=self._settings["enroll_timeout"])
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success = status.state == EnrollState.DONE
        response.message = status.text() + (self._saved() if response.success else "")
        if status.result is not None:
            response.samples_added, response.total_samples = (
                status.result.added,
                status.result.total,
            )
        return response

    @service
    def _forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        try:
            name = validate_name(request.name)
            self.recognizer.forget(name)
        except (InvalidName, UnknownPerson, GalleryNotSaved) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, f"forgot {name!r}{self._saved()}"
        return response

    @service
    def _rename(self, request: Rename.Request, response: Rename.Response) -> Rename.Response:
        old = request.old_name.strip()
        try:
            new = validate_name(request.new_name)
            if is_cluster_label(
                old
            ):  # a returning stranger (tracking.cluster_unknowns) gets a name
                result = self._stream.promote_unknown(old, new, merge=request.merge)
                message = (f"enrolled {old} as {new!r}: {result.added} sample(s) added, "
                           f"{result.total} in total")
            else:
                self.recognizer.rename(validate_name(old), new, merge=request.merge)
                message = f"renamed {old!r} to {new!r}"
        except (InvalidName, UnknownPerson, UnknownCluster, NameTaken, GalleryNotSaved) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, message + self._saved()
        return response

    @service
    def _list_faces(
        self, request: ListFaces.Request, response: ListFaces.Response
    ) -> ListFaces.Response:
        recognizer = self.recognizer
        people = sorted(recognizer.people(), key=lambda p: p.name)
        response.names = [p.name for p in people]
        response.sample_counts = [p.samples for p in people]
        response.enrolled_at = [iso_to_time(p.enrolled_at) for p in people]
        response.enrolled_by = [p.enrolled_by for p in people]
        response.updated_by = [p.updated_by for p in people]
        response.updated_at = [iso_to_time(p.updated_at) for p in people]
        response.node_id = self._node.node_id
        response.gallery_digest = recognizer.gallery.digest()
        sync = self._node.gallery_sync
        peers = sync.peers() if sync is not None else {}
        response.peers, response.peers_in_sync = list(peers), list(peers.values())
        response.success = True
        response.message = f"{len(people)} people, {sum(p.samples for p in people)} samples"
        if sync is not None:
            response.message += (f"; sync group {sync.group!r}: {sum(peers.values())} of "
                                 f"{len(peers)} peer(s) hold the same gallery")
        return response
