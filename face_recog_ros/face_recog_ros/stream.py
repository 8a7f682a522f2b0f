"""StreamRecognizer: recognition for a camera stream, where the same people stay in view.

Per frame: detect (every ``detect_interval`` frames), associate detections with tracks, embed
only the faces that need it (new or unresolved tracks first, settled ones every
``reembed_interval`` frames or after a big pose/size change, at most
``max_embeddings_per_frame``), and name each track from its recent evidence. On top of the
tracks: events (appeared, identified, label changed, left), live enrolment of the person in
view, and optional clustering of strangers into unknown_1, unknown_2, ...

Every public method holds the recognizer's lock, so a service thread (enrol, rename) and the
image thread never interleave inside a frame.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

import cv2
import numpy as np

from .alignment import align_face, face_pose, quality_problem
from .config import TrackingConfig
from .gallery import validate_name
from .gallery_store import GalleryNotSaved
from .pipeline import EnrollResult, FaceRecognizer
from .tracking import (EventType, FaceEvent, FaceTracker, TemporalLabel, Track, UnknownClusters,
                       is_cluster_label)
from .types import UNKNOWN, Detection, Face


@dataclass
class StreamResult:
    faces: list[Face]  # faces of confirmed tracks in view, with track_id and temporal label
    events: list[FaceEvent]
    embedded: int  # faces embedded in this frame
    detected: bool  # False when the detector was skipped (detect_interval) and tracks were predicted
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage


class EnrollState(str, Enum):
    IDLE = "idle"  # no live enrolment was started
    WAITING = "waiting"  # started; waiting for the face to enrol to be in view
    COLLECTING = "collecting"
    DONE = "done"  # samples were added to the gallery
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = (EnrollState.WAITING, EnrollState.COLLECTING)


@dataclass(frozen=True)
class EnrollmentStatus:
    state: EnrollState
    name: str = ""
    collected: int = 0
    needed: int = 0
    track_id: int = -1  # the track being enrolled (-1 while waiting)
    message: str = ""
    skipped: dict[str, int] = field(default_factory=dict)  # frames not taken, by reason
    result: EnrollResult | None = None  # set when DONE


@dataclass(eq=False)
class _Enrollment:
    name: str
    needed: int
    requested_track: int
    overwrite: bool
    state: EnrollState = EnrollState.WAITING
    track: Track | None = None
    started: float | None = None  # stamp of the first frame processed after start
    samples: list[np.ndarray] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    message: str = "waiting for the face to enrol"
    result: EnrollResult | None = None

    def status(self) -> EnrollmentStatus:
        track_id = self.track.id if self.track is not None else -1
        return EnrollmentStatus(self.state, self.name, len(self.samples), self.needed, track_id,
                                self.message, dict(self.skipped), self.result)


@dataclass(eq=False)
class _TrackInfo:
    identity: TemporalLabel
    last_embedded: int = -(10 ** 9)  # frame number
    pose: tuple[float, float] | None = None  # (eye distance, yaw) at the last embedding
    announced: str | None = None  # label of the last event; None until APPEARED
    named_once: bool = False


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the grey chip: low for blurred (motion, focus) faces."""
    return float(cv2.Laplacian(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def is_name(label: str) -> bool:
    return label != UNKNOWN and not is_cluster_label(label)


class StreamRecognizer:
    """`StreamRecognizer(recognizer).process(rgb, stamp) -> StreamResult`, frame after frame.

    ``stamp`` is the frame time in seconds (the camera's, so replays behave like live runs);
    a stamp earlier than the previous one (a looped bag, a new camera) drops every track.
    """

    def __init__(self, recognizer: FaceRecognizer, config: TrackingConfig | None = None) -> None:
        self.recognizer = recognizer
        self.config = config or recognizer.config.tracking
        if self.config.min_evidence > self.config.evidence_window:
            raise ValueError(f"tracking.min_evidence ({self.config.min_evidence}) cannot exceed "
                             f"tracking.evidence_window ({self.config.evidence_window})")
        self.tracker = FaceTracker(self.config)
        self.clusters = UnknownClusters(self._cluster_threshold(), self.config.max_unknown_clusters)
        self._infos: dict[Track, _TrackInfo] = {}
        self._lock = recognizer.lock  # one lock for models, gallery and tracks
        self._enrollment_changed = threading.Condition(self._lock)
        self._enrollment: _Enrollment | None = None
        self._frame = 0
        self._last_stamp: float | None = None

    def _cluster_threshold(self) -> float:
        configured = self.config.cluster_threshold
        return self.recognizer.threshold if configured < 0 else configured

    # --- frames ---------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp: float) -> StreamResult:
        """Faces in this frame with track ids and temporal labels, plus the events it caused."""
        with self._lock:
            if not self.config.enabled:
                return self._process_untracked(rgb)
            t0 = time.perf_counter()
            events: list[FaceEvent] = []
            if self._last_stamp is not None and stamp < self._last_stamp:
                events += self._left(self.tracker.reset(), stamp)
            self._last_stamp = stamp
            detected = self._frame % self.config.detect_interval == 0
            confirmed: list[Track] = []
            embedded: dict[Track, np.ndarray] = {}
            t_detect = t_embed = 0.0
            if detected:
                detections = self.recognizer.detect(rgb)
                t_detect = time.perf_counter() - t0
                update = self.tracker.update(detections, stamp)
                pairs = list(zip(update.tracks, detections))
                confirmed = update.confirmed
                events += self._left(update.removed, stamp)
                self._infos = {t: self._infos.get(t) or self._new_info() for t in self.tracker.tracks}
                self._update_enrollment_target(pairs, stamp)
                t1 = time.perf_counter()
                embedded = self._embed(rgb, pairs)
                t_embed = time.perf_counter() - t1
                self._collect_enrollment_samples(rgb, pairs, embedded)
            else:
                pairs = [(t, t.predicted_detection(stamp)) for t in self.tracker.visible()]
            self._update_identities(embedded, stamp)
            events += self._label_events(stamp)
            faces = [self._face(track, det, track in confirmed, embedded.get(track))
                     for track, det in pairs if track.confirmed]
            self._frame += 1
            total = time.perf_counter() - t0
            return StreamResult(faces, events, len(embedded), detected, {
                "detect": t_detect * 1e3, "embed": t_embed * 1e3,
                "track": (total - t_detect - t_embed) * 1e3, "total": total * 1e3})

    def reset(self, stamp: float) -> list[FaceEvent]:
        """Forget every track (e.g. the camera moved to another scene); LEFT for each confirmed one."""
        with self._lock:
            events = self._left(self.tracker.reset(), stamp)
            self._infos.clear()
            return events

    def _process_untracked(self, rgb: np.ndarray) -> StreamResult:
        faces = self.recognizer.process(rgb)
        timings = dict(self.recognizer.timings)
        return StreamResult(faces, [], int(timings.get("embedded", 0)), True, timings)

    def _new_info(self) -> _TrackInfo:
        c = self.config
        return _TrackInfo(TemporalLabel(c.evidence_window, c.min_evidence, c.label_margin))

    def _embed(self, rgb: np.ndarray, pairs: list[tuple[Track, Detection]]) -> dict[Track, np.ndarray]:
        """Embed the faces that need it most, within the per-frame budget."""
        c = self.config
        quality = self.recognizer.quality
        target = self._enrollment.track if self._active() else None
        wanted = []
        for track, detection in pairs:
            if quality_problem(detection, quality):
                continue
            info = self._infos[track]
            if track is target:
                priority = 0
            elif not info.identity.decided:
                priority = 1
            elif (self._frame - info.last_embedded >= c.reembed_interval
                  or self._pose_changed(info, detection)):
                priority = 2
            else:
                continue
            wanted.append((priority, info.last_embedded, len(wanted), track, detection))
        wanted.sort(key=lambda w: w[:3])
        chosen = wanted[:c.max_embeddings_per_frame]
        if not chosen:
            return {}
        embeddings, reasons = self.recognizer.embed(rgb, [w[4] for w in chosen])
        out, rows = {}, iter(embeddings)
        for (_, _, _, track, detection), reason in zip(chosen, reasons):
            if reason:
                continue
            out[track] = next(rows)
            info = self._infos[track]
            info.last_embedded, info.pose = self._frame, face_pose(detection)
        return out

    def _pose_changed(self, info: _TrackInfo, detection: Detection) -> bool:
        if info.pose is None:
            return True
        eye, yaw = face_pose(detection)
        last_eye, last_yaw = info.pose
        return (abs(yaw - last_yaw) > self.config.reembed_yaw_change
                or abs(eye / max(last_eye, 1e-6) - 1.0) > self.config.reembed_scale_change)

    def _update_identities(self, embedded: dict[Track, np.ndarray], stamp: float) -> None:
        snapshot = self.recognizer.gallery.snapshot()
        threshold = self.recognizer.threshold
        for track, info in self._infos.items():
            identity = info.identity
            embedding = embedded.get(track)
            if embedding is not None:
                identity.add(embedding)
                if identity.cluster and identity.label == identity.cluster:
                    self.clusters.add(identity.cluster, embedding, stamp)
            identity.update(snapshot, threshold)
            if (self.config.cluster_unknowns and track.confirmed and identity.decided
                    and identity.label == UNKNOWN and not identity.cluster):
                samples = np.stack(identity.evidence)
                identity.file_under(self.clusters.assign(identity.mean_embedding(), samples, stamp))

    def _label_events(self, stamp: float) -> list[FaceEvent]:
        events = []
        for track, info in self._infos.items():
            if not track.confirmed:
                continue
            label, similarity = info.identity.label, info.identity.similarity
            if info.announced is None:
                events.append(FaceEvent(EventType.APPEARED, track.id, label, "", similarity, stamp))
                previous = UNKNOWN
            elif label != info.announced:
                previous = info.announced
            else:
                continue
            if label != previous:
                first_name = is_name(label) and not info.named_once
                kind = EventType.IDENTIFIED if first_name else EventType.LABEL_CHANGED
                events.append(FaceEvent(kind, track.id, label, previous, similarity, stamp))
            info.named_once |= is_name(label)
            info.announced = label
        return events

    def _left(self, tracks: list[Track], stamp: float) -> list[FaceEvent]:
        events = []
        for track in tracks:
            info = self._infos.pop(track, None)
            if info is not None and info.announced is not None:
                events.append(FaceEvent(EventType.LEFT, track.id, info.identity.label, "",
                                        info.identity.similarity, stamp))
            enrollment = self._enrollment
            if enrollment is not None and enrollment.track is track and enrollment.state in ACTIVE_STATES:
                self._finish_enrollment(EnrollState.FAILED, f"the face being enrolled left the view after "
                                        f"{len(enrollment.samples)} of {enrollment.needed} samples")
        return events

    def _face(self, track: Track, detection: Detection, is_new: bool, embedding: np.ndarray | None) -> Face:
        identity = self._infos[track].identity
        return Face(detection=detection, label=identity.label, similarity=identity.similarity,
                    candidate=identity.candidate, margin=identity.candidate_margin, track_id=track.id,
                    is_new_track=is_new, rejected=quality_problem(detection, self.recognizer.quality),
                    embedding=embedding)

    # --- live enrolment -------------------------------------------------------------------
    def start_enrollment(self, name: str, num_samples: int, track_id: int = -1,
                         overwrite: bool = False) -> EnrollmentStatus:
        """Enrol `name` from the coming frames: collect `num_samples` diverse samples of one face.

        track_id -1 takes the largest face in the next frame. Samples that are near-duplicates
        of ones already taken, blurred, or turned away are skipped. Progress:
        :meth:`enrollment_status`; the samples go to the gallery when all are in.
        """
        with self._lock:
            if not self.config.enabled:
                raise ValueError("live enrolment follows a face track; set tracking.enabled to true")
            if self._active():
                raise ValueError(f"an enrolment of {self._enrollment.name!r} is in progress; cancel it first")
            name = validate_name(name)
            cap = self.recognizer.config.gallery.max_samples_per_person
            if not 1 <= num_samples <= cap:
                raise ValueError(f"num_samples must be between 1 and {cap} (gallery.max_samples_per_person)")
            if track_id >= 0 and not any(t.id == track_id for t in self.tracker.tracks):
                raise ValueError(f"no face track {track_id} in view")
            self._enrollment = _Enrollment(name, num_samples, track_id, overwrite)
            return self._enrollment.status()

    def enrollment_status(self) -> EnrollmentStatus:
        with self._lock:
            return self._enrollment.status() if self._enrollment else EnrollmentStatus(EnrollState.IDLE)

    def cancel_enrollment(self) -> EnrollmentStatus:
        with self._lock:
            if self._active():
                self._finish_enrollment(EnrollState.CANCELLED, "cancelled; nothing was enrolled")
            return self.enrollment_status()

    def wait_for_enrollment(self, timeout: float | None = None) -> EnrollmentStatus:
        """Block until the live enrolment finishes (frames must keep coming from another thread)."""
        with self._lock:
            self._enrollment_changed.wait_for(lambda: not self._active(), timeout)
            return self.enrollment_status()

    def _active(self) -> bool:
        return self._enrollment is not None and self._enrollment.state in ACTIVE_STATES

    def _update_enrollment_target(self, pairs: list[tuple[Track, Detection]], stamp: float) -> None:
        if not self._active():
            return
        enrollment = self._enrollment
        if enrollment.started is None:
            enrollment.started = stamp
        if stamp - enrollment.started > self.config.enroll_timeout:
            self._finish_enrollment(EnrollState.FAILED, f"timed out after {self.config.enroll_timeout:g} s "
                                    f"with {len(enrollment.samples)} of {enrollment.needed} samples")
            return
        if enrollment.track is not None and enrollment.track not in self._infos:
            self._finish_enrollment(EnrollState.FAILED, "the face being enrolled was lost after "
                                    f"{len(enrollment.samples)} of {enrollment.needed} samples")
            return
        if enrollment.track is not None or not pairs:
            return
        if enrollment.requested_track < 0:
            enrollment.track = max(pairs, key=lambda p: p[1].width * p[1].height)[0]
        else:
            enrollment.track = next((t for t, _ in pairs if t.id == enrollment.requested_track), None)
        if enrollment.track is not None:
            enrollment.state, enrollment.message = EnrollState.COLLECTING, "collecting samples"

    def _collect_enrollment_samples(self, rgb: np.ndarray, pairs: list[tuple[Track, Detection]],
                                    embedded: dict[Track, np.ndarray]) -> None:
        if not self._active() or self._enrollment.track is None:
            return
        enrollment, c = self._enrollment, self.config
        track = enrollment.track
        detection = next((d for t, d in pairs if t is track), None)
        if detection is None:
            return  # not seen in this frame
        embedding = embedded.get(track)
        if embedding is None:
            enrollment.skipped[quality_problem(detection, self.recognizer.quality).split(":")[0]
                               or "over the frame's embedding budget"] += 1
            return
        yaw = face_pose(detection)[1]
        if abs(yaw) > c.enroll_max_yaw:
            enrollment.skipped["turned away"] += 1
        elif sharpness(align_face(rgb, detection, self.recognizer.template)) < c.enroll_min_sharpness:
            enrollment.skipped["blurred"] += 1
        elif (enrollment.samples
              and float(np.max(np.stack(enrollment.samples) @ embedding)) > c.enroll_max_similarity):
            enrollment.skipped["near duplicate"] += 1
        else:
            enrollment.samples.append(embedding)
            enrollment.message = f"collected {len(enrollment.samples)} of {enrollment.needed} samples"
        if len(enrollment.samples) >= enrollment.needed:
            self._commit_enrollment()

    def _commit_enrollment(self) -> None:
        enrollment = self._enrollment
        try:
            enrollment.result = self.recognizer.add_samples(enrollment.name, np.stack(enrollment.samples),
                                                            overwrite=enrollment.overwrite)
        except ValueError as exc:
            self._finish_enrollment(EnrollState.FAILED, f"could not add the samples: {exc}")
            return
        except GalleryNotSaved as exc:
            self._finish_enrollment(EnrollState.FAILED, f"nothing was enrolled: {exc}")
            return
        info = self._infos.get(enrollment.track)
        if info is not None:
            if info.identity.cluster:
                self._dissolve_cluster(info.identity.cluster)
            info.identity.reconsider()
        self._finish_enrollment(EnrollState.DONE, f"enrolled {enrollment.name}: {enrollment.result.added} "
                                f"samples, {enrollment.result.total} in total")

    def _finish_enrollment(self, state: EnrollState, message: str) -> None:
        self._enrollment.state, self._enrollment.message = state, message
        self._enrollment_changed.notify_all()

    # --- unknown people -------------------------------------------------------------------
    def unknown_clusters(self) -> list[str]:
        with self._lock:
            return self.clusters.labels()

    def promote_unknown(self, cluster_label: str, name: str) -> EnrollResult:
        """Enrol a stranger cluster (unknown_k) as `name`; its tracks are named from the next frame.

        Onto an enrolled name the samples are added to that person's.
        """
        with self._lock:
            name = validate_name(name)
            samples = self.clusters.pop(cluster_label)
            try:
                result = self.recognizer.add_samples(name, samples)
            except (ValueError, GalleryNotSaved):  # the gallery did not change
                self.clusters.restore(cluster_label, samples)
                raise
            finally:
                if cluster_label not in self.clusters.labels():  # now in the gallery
                    self._dissolve_cluster(cluster_label)
            return result

    def _dissolve_cluster(self, label: str) -> None:
        """Tracks filed under this cluster decide their label afresh (the gallery changed)."""
        self.clusters.discard(label)
        for info in self._infos.values():
            if info.identity.cluster == label:
                info.identity.cluster = ""
                info.identity.reconsider()
