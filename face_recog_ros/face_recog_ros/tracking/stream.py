"""StreamRecognizer: recognition for a camera stream, where the same people stay in view.

Per frame: detect (every ``detect_interval`` frames), associate detections with tracks, embed
only the faces that need it (new or unresolved tracks first, settled ones every
``reembed_interval`` frames or after a big pose/size change, at most
``max_embeddings_per_frame``), and name each track from its recent evidence. On top of the
tracks: events (appeared, identified, label changed, left), live enrolment of the person in
view (enrolment.py), and optional clustering of strangers into unknown_1, unknown_2, ...
(strangers.py), which can be enrolled under a name.

Every public method holds the recognizer's lock, so a service thread (enrol, rename) and the
image thread never interleave inside a frame. The node and the CLI use the same methods.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..core.aligner import FaceGeometry
from ..core.recognizer import EnrollResult, FaceRecognizer
from ..gallery.model import NameTaken
from ..gallery.names import validate_name
from ..gallery.store import GalleryNotSaved
from ..types import UNKNOWN, Detection, Face
from .enrolment import ACTIVE_STATES, EnrollmentStatus, EnrollState, LiveEnrolment
from .identity import FaceEvent, TemporalLabel
from .options import TrackingOptions
from .strangers import UnknownClusters
from .tracker import FaceTracker, Track


@dataclass
class StreamResult:
    faces: list[Face]  # faces of confirmed tracks in view, with track_id and temporal label
    events: list[FaceEvent]
    embedded: int  # faces embedded in this frame
    detected: bool  # False when the detector was skipped (detect_interval): tracks predicted
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage


@dataclass(eq=False)
class _TrackInfo:
    identity: TemporalLabel
    last_embedded: int = -(10 ** 9)  # frame number
    geometry: FaceGeometry | None = None  # landmarks and pose at the last detection
    embedded_pose: tuple[float, float] | None = None  # (eye distance, yaw) at the last embedding


class StreamRecognizer:
    """`StreamRecognizer(recognizer).process(rgb, stamp) -> StreamResult`, frame after frame.

    ``stamp`` is the frame time in seconds (the camera's, so replays behave like live runs);
    a stamp earlier than the previous one (a looped bag, a new camera) drops every track.
    ``options`` defaults to the recognizer's config's tracking group (read live, like the
    recognizer's). Streams of several cameras that see the same people share one
    ``strangers``, so a stranger seen by two cameras is one unknown_<n>.
    """

    def __init__(self, recognizer: FaceRecognizer, options: TrackingOptions | None = None, *,
                 strangers: UnknownClusters | None = None) -> None:
        self.recognizer = recognizer
        # A RecognizerConfig (config.py) carries the tracking group next to the recognizer's.
        self.options: TrackingOptions = options or recognizer.config.tracking
        self.tracker = FaceTracker(self.options)
        self.strangers = strangers or UnknownClusters(self._cluster_threshold(),
                                                      self.options.max_unknown_clusters)
        self._infos: dict[Track, _TrackInfo] = {}
        self._lock = recognizer.lock  # one lock for models, gallery and tracks
        self._enrollment_changed = threading.Condition(self._lock)
        self._enrollment: LiveEnrolment | None = None
        self._frame = 0
        self._last_stamp: float | None = None

    def _cluster_threshold(self) -> float:
        return self.options.cluster_threshold_or(self.recognizer.threshold)

    # --- frames ---------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp: float) -> StreamResult:
        """Faces in this frame with track ids and temporal labels, plus the events it caused."""
        with self._lock:
            if not self.options.enabled:
                return self._process_untracked(rgb)
            t0 = time.perf_counter()
            events: list[FaceEvent] = []
            if self._last_stamp is not None and stamp < self._last_stamp:
                events += self._left(self.tracker.reset(), stamp)
            self._last_stamp = stamp
            detected = self._frame % self.options.detect_interval == 0
            confirmed: list[Track] = []
            embedded: dict[Track, np.ndarray] = {}
            t_detect = t_landmarks = t_embed = 0.0
            if detected:
                detections = self.recognizer.detect(rgb)
                t_detect = time.perf_counter() - t0
                update = self.tracker.update(detections, stamp)
                pairs = list(zip(update.tracks, detections))
                confirmed = update.confirmed
                events += self._left(update.removed, stamp)
                self._infos = {
                    t: self._infos.get(t) or self._new_info() for t in self.tracker.tracks
                }
                t1 = time.perf_counter()
                # Landmarks of every face on detection frames: their quality is published every
                # frame, and predicted frames keep the last one (a shift does not change a pose).
                for (track, _), geometry in zip(pairs, self.recognizer.geometry(rgb, detections)):
                    self._infos[track].geometry = geometry
                t_landmarks = time.perf_counter() - t1
            else:
                pairs = [(t, t.predicted_detection(stamp)) for t in self.tracker.visible()]
            # Why each face cannot be embedded ('' = it can): judged once per face and frame.
            geometries = [self._infos[t].geometry for t, _ in pairs]
            refused = dict(zip((t for t, _ in pairs),
                               self.recognizer.quality_problems(geometries)))
            if detected:
                self._follow_enrollment(pairs, stamp)
                t1 = time.perf_counter()
                embedded = self._embed(rgb, pairs, refused)
                t_embed = time.perf_counter() - t1
                self._collect_enrollment_sample(rgb, pairs, embedded, refused)
            self._update_identities(embedded, stamp)
            events += self._label_events(stamp)
            faces = [
                self._face(track, det, track in confirmed, embedded.get(track), refused[track])
                for track, det in pairs
                if track.confirmed
            ]
            self._frame += 1
            total = time.perf_counter() - t0
            return StreamResult(faces, events, len(embedded), detected, {
                "detect": t_detect * 1e3, "landmarks": t_landmarks * 1e3, "embed": t_embed * 1e3,
                "track": (total - t_detect - t_landmarks - t_embed) * 1e3, "total": total * 1e3})

    def reset(self, stamp: float) -> list[FaceEvent]:
        """Forget every track (e.g. the camera moved to another scene); LEFT for each confirmed
        one."""
        with self._lock:
            events = self._left(self.tracker.reset(), stamp)
            self._infos.clear()
            return events

    def _process_untracked(self, rgb: np.ndarray) -> StreamResult:
        recognition = self.recognizer.recognize(rgb)
        return StreamResult(recognition.faces, [], recognition.embedded, True, recognition.timings)

    def _new_info(self) -> _TrackInfo:
        o = self.options
        return _TrackInfo(TemporalLabel(o.evidence_window, o.min_evidence, o.label_margin))

    def _embed(self, rgb: np.ndarray, pairs: list[tuple[Track, Detection]],
               refused: dict[Track, str]) -> dict[Track, np.ndarray]:
        """Embed the faces that need it most, within the per-frame budget."""
        o = self.options
        target = self._enrollment.track if self._active() else None
        wanted = []
        for track, detection in pairs:
            if refused[track]:
                continue
            info = self._infos[track]
            if track is target:
                priority = 0
            elif not info.identity.decided:
                priority = 1
            elif (self._frame - info.last_embedded >= o.reembed_interval
                  or self._pose_changed(info)):
                priority = 2
            else:
                continue
            wanted.append((priority, info.last_embedded, len(wanted), track, detection))
        wanted.sort(key=lambda w: w[:3])
        chosen = wanted[:o.max_embeddings_per_frame]
        if not chosen:
            return {}
        embeddings, _ = self.recognizer.embed(
            rgb, [w[4] for w in chosen], [self._infos[w[3]].geometry for w in chosen],
            reasons=[""] * len(chosen))
        out = {}
        for (_, _, _, track, _), embedding in zip(chosen, embeddings):
            out[track] = embedding
            info = self._infos[track]
            info.last_embedded = self._frame
            info.embedded_pose = (info.geometry.eye_distance, info.geometry.pose.yaw)
        return out

    def _pose_changed(self, info: _TrackInfo) -> bool:
        if info.embedded_pose is None:
            return True
        last_eye, last_yaw = info.embedded_pose
        return (abs(info.geometry.pose.yaw - last_yaw) > self.options.reembed_yaw_change_deg
                or abs(info.geometry.eye_distance / max(last_eye, 1e-6) - 1.0)
                > self.options.reembed_scale_change)

    def _update_identities(self, embedded: dict[Track, np.ndarray], stamp: float) -> None:
        snapshot = self.recognizer.gallery.snapshot()
        threshold = self.recognizer.threshold
        for track, info in self._infos.items():
            identity = info.identity
            embedding = embedded.get(track)
            if embedding is not None:
                identity.add(embedding)
                if identity.cluster and identity.label == identity.cluster:
                    self.strangers.add(identity.cluster, embedding, stamp)
            identity.update(snapshot, threshold)
            if (self.options.cluster_unknowns and track.confirmed and identity.decided
                    and identity.label == UNKNOWN and not identity.cluster):
                identity.file_under(self._file_stranger(identity, stamp))

    def _file_stranger(self, identity: TemporalLabel, stamp: float) -> str:
        """The unknown_<n> of a track that settled as unknown, by the options in effect now."""
        self.strangers.threshold = self._cluster_threshold()
        self.strangers.max_clusters = self.options.max_unknown_clusters
        return self.strangers.assign(identity.mean_embedding(), np.stack(identity.evidence), stamp)

    def _label_events(self, stamp: float) -> list[FaceEvent]:
        return [event for track, info in self._infos.items() if track.confirmed
                for event in info.identity.announce(track.id, stamp)]

    def _left(self, tracks: list[Track], stamp: float) -> list[FaceEvent]:
        events = []
        for track in tracks:
            info = self._infos.pop(track, None)
            if info is not None:
                events += info.identity.farewell(track.id, stamp)
            enrollment = self._enrollment
            if self._active() and enrollment.track is track:
                enrollment.finish(
                    EnrollState.FAILED,
                    f"the face being enrolled left the view after {enrollment.progress()}",
                )
        return events

    def _face(self, track: Track, detection: Detection, is_new: bool, embedding: np.ndarray | None,
              refused: str) -> Face:
        identity = self._infos[track].identity
        return Face(detection=detection, label=identity.label, similarity=identity.similarity,
                    candidate=identity.candidate, margin=identity.candidate_margin,
                    track_id=track.id, is_new_track=is_new, rejected=refused, embedding=embedding)

    # --- live enrolment -------------------------------------------------------------------
    def start_enrollment(self, name: str, num_samples: int, track_id: int = -1,
                         overwrite: bool = False) -> EnrollmentStatus:
        """Enrol `name` from the coming frames: collect `num_samples` diverse samples of one face.

        track_id -1 takes the largest face in the next frame. Samples that are near-duplicates
        of ones already taken, blurred, or turned away are skipped. Progress:
        :meth:`enrollment_status`; the samples go to the gallery when all are in.
        """
        with self._lock:
            if not self.options.enabled:
                raise ValueError(
                    "live enrolment follows a face track; set tracking.enabled to true"
                )
            if self._active():
                raise ValueError(
                    f"an enrolment of {self._enrollment.name!r} is in progress; cancel it first"
                )
            name = validate_name(name)
            cap = self.recognizer.gallery.max_samples_per_person or num_samples
            if not 1 <= num_samples <= cap:
                raise ValueError(
                    f"num_samples must be between 1 and {cap} (gallery.max_samples_per_person)"
                )
            if track_id >= 0 and not any(t.id == track_id for t in self.tracker.tracks):
                raise ValueError(f"no face track {track_id} in view")
            self._enrollment = LiveEnrolment(
                name, num_samples, track_id, overwrite, self._enrollment_changed
            )
            return self._enrollment.status()

    def enrollment_status(self) -> EnrollmentStatus:
        with self._lock:
            return self._enrollment.status() if self._enrollment else EnrollmentStatus(
                EnrollState.IDLE)

    def cancel_enrollment(
        self, message: str = "cancelled; nothing was enrolled"
    ) -> EnrollmentStatus:
        """Stop a live enrolment in progress; nothing of it is enrolled."""
        with self._lock:
            if self._active():
                self._enrollment.finish(EnrollState.CANCELLED, message)
            return self.enrollment_status()

    def wait_for_enrollment(self, timeout: float | None = None) -> EnrollmentStatus:
        """Block until the live enrolment finishes (frames must keep coming from another
        thread)."""
        with self._lock:
            self._enrollment_changed.wait_for(lambda: not self._active(), timeout)
            return self.enrollment_status()

    def enroll_live(self, name: str, num_samples: int, track_id: int = -1, overwrite: bool = False,
                    timeout: float | None = None) -> EnrollmentStatus:
        """Start a live enrolment and wait for its outcome, cancelling it after ``timeout``
        seconds; frames must keep coming from another thread. ValueError for a bad request."""
        self.start_enrollment(name, num_samples, track_id, overwrite)
        status = self.wait_for_enrollment(timeout)
        if status.state in ACTIVE_STATES:
            status = self.cancel_enrollment(f"gave up after {timeout:g} s: nothing was enrolled")
        return status

    def _active(self) -> bool:
        return self._enrollment is not None and self._enrollment.active

    def _follow_enrollment(self, pairs: list[tuple[Track, Detection]], stamp: float) -> None:
        if self._active():
            self._enrollment.follow(pairs, set(self._infos), stamp, self.options.enroll_timeout)

    def _collect_enrollment_sample(
        self,
        rgb: np.ndarray,
        pairs: list[tuple[Track, Detection]],
        embedded: dict[Track, np.ndarray],
        refused: dict[Track, str],
    ) -> None:
        if not self._active() or self._enrollment.track is None:
            return
        track = self._enrollment.track
        detection = next((d for t, d in pairs if t is track), None)
        if detection is None:
            return  # not seen in this frame
        geometry = self._infos[track].geometry
        complete = self._enrollment.consider(
            geometry, embedded.get(track), refused[track],
            lambda: self.recognizer.aligner.chip(rgb, detection, geometry), self.options)
        if complete:
            self._commit_enrollment()

    def _commit_enrollment(self) -> None:
        enrollment = self._enrollment
        try:
            enrollment.result = self.recognizer.add_samples(
                enrollment.name, np.stack(enrollment.samples), overwrite=enrollment.overwrite
            )
        except ValueError as exc:
            enrollment.finish(EnrollState.FAILED, f"could not add the samples: {exc}")
            return
        except GalleryNotSaved as exc:
            enrollment.finish(EnrollState.FAILED, f"nothing was enrolled: {exc}")
            return
        info = self._infos.get(enrollment.track)
        if info is not None:
            if info.identity.cluster:
                self._dissolve_cluster(info.identity.cluster)
            info.identity.reconsider()
        enrollment.finish(
            EnrollState.DONE,
            f"enrolled {enrollment.name}: {enrollment.result.added} "
            f"samples, {enrollment.result.total} in total",
        )

    # --- unknown people -------------------------------------------------------------------
    def unknown_clusters(self) -> list[str]:
        with self._lock:
            return self.strangers.labels()

    def promote_unknown(
        self, cluster_label: str, name: str, *, merge: bool = False
    ) -> EnrollResult:
        """Enrol a stranger cluster (unknown_k) as `name`; its tracks are named from the next
        frame.

        Onto an enrolled name only with ``merge`` (the samples are added to that person's);
        else NameTaken. UnknownCluster when there is no such cluster (any more).
        """
        with self._lock:
            name = validate_name(name)
            self.strangers.require(cluster_label)
            if name in self.recognizer.gallery and not merge:
                raise NameTaken(
                    f"{name!r} is already enrolled; set merge to add {cluster_label}'s "
                    "samples to it"
                )
            samples = self.strangers.pop(cluster_label)
            try:
                result = self.recognizer.add_samples(name, samples)
            except (ValueError, GalleryNotSaved):  # the gallery did not change
                self.strangers.restore(cluster_label, samples)
                raise
            finally:
                if cluster_label not in self.strangers.labels():  # now in the gallery
                    self._dissolve_cluster(cluster_label)
            return result

    def _dissolve_cluster(self, label: str) -> None:
        """Tracks filed under this cluster decide their label afresh (the gallery changed)."""
        self.strangers.discard(label)
        for info in self._infos.values():
            if info.identity.cluster == label:
                info.identity.cluster = ""
                info.identity.reconsider()
