"""FaceRecognizer: detection -> alignment -> embedding -> matching, timed stage by stage.

This is the whole ROS-independent product in one object; the CLI and the ROS node are thin
layers over it, and all of them build it the same way: ``FaceRecognizer(config)``, with a
``config.RecognizerConfig``. Models are not thread-safe, so one lock serialises every use of
them and of the gallery: a service call that enrols waits for the frame in flight, never races it.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import cv2
import numpy as np

from ..gallery.model import Gallery, PersonInfo
from ..gallery.options import GalleryOptions
from ..gallery.replica import GalleryState
from ..gallery.store import GalleryStore
from ..types import Detection, Face
from .aligner import AlignmentOptions, FaceAligner, FaceGeometry, quality_problem
from .detection import DetectorOptions, create_detector
from .embedding import Embedder, EmbedderOptions, EmbedderSpec
from .landmarks import LandmarkSpec
from .matching import Match, RecognitionOptions, match
from .model_integrity import verify_model_file
from .runtime import models_dir


T = TypeVar("T")


class RecognizerSettings(Protocol):
    """The option groups FaceRecognizer reads; ``config.RecognizerConfig`` is the one to pass
    (it also carries the tracking group, which the stream reads)."""

    detector: DetectorOptions
    embedder: EmbedderOptions
    alignment: AlignmentOptions
    recognition: RecognitionOptions
    gallery: GalleryOptions


@dataclass(frozen=True)
class Recognition:
    """What :meth:`FaceRecognizer.recognize` found in one frame, and what each stage cost."""

    faces: list[Face]
    timings: dict[str, float]  # ms per stage: detect, landmarks, align, embed, match, total
    embedded: int  # faces embedded (the rest were refused by the quality checks)


class EnrollError(ValueError):
    """Enrolment added nothing; the message says why for every image."""


@dataclass
class EnrollResult:
    name: str
    added: int
    total: int
    skipped: list[str] = field(default_factory=list)  # one message per image that gave no sample


def resolve_spec_path(model: str) -> Path:
    """A model id names models/<id>.yaml in the package; anything else is a path to a spec YAML."""
    path = Path(model).expanduser()
    if path.suffix in (".yaml", ".yml"):
        return path
    return models_dir() / f"{model}.yaml"


def main_face(detections: list[Detection], score_slack: float = 0.15) -> Detection:
    """The photo's subject: the largest face among those scored close to the most confident one.

    Plain "largest" picks a big low-score false positive over a clear face; plain "best score"
    picks a sharp face in the background over the subject.
    """
    top = max(d.score for d in detections)
    return max(
        (d for d in detections if d.score >= top - score_slack), key=lambda d: d.width * d.height
    )


PORTRAIT_MARGIN = 0.25  # margin added around cropped portraits, as a fraction of the long side


def fills_frame(detection: Detection, shape: tuple[int, ...], fraction: float = 0.6) -> bool:
    return detection.width > fraction * shape[1] or detection.height > fraction * shape[0]


def shift_detection(detection: Detection, offset: float) -> Detection:
    return Detection(box=detection.box + offset, score=detection.score,
                     keypoints=detection.keypoints + offset)


class FaceRecognizer:
    """`FaceRecognizer(config).process(rgb) -> list[Face]`; `enroll(name, images)` teaches it.

    ``config`` is a ``RecognizerConfig`` (``RecognizerConfig()`` for the defaults); its option
    groups are used as they are, so changing an option there applies from the next frame (the
    read-only ones, models and threads and the gallery file, are used here once).
    """

    def __init__(self, config: RecognizerSettings, gallery: Gallery | None = None, *,
                 node_id: str | None = None) -> None:
        self.config = config
        self.node_id = node_id  # who makes this process's gallery changes (None: host/pid)
        self.detector = create_detector(config.detector)
        self.spec = EmbedderSpec.from_yaml(resolve_spec_path(config.embedder.model))
        self.model_warnings = self._verify_models(config.embedder.allow_unverified_model)
        self.aligner = FaceAligner(config.alignment.method, self.spec)
        self.embedder = Embedder(self.spec, num_threads=config.embedder.num_threads)
        self._other_range_detector = None
        self.gallery_warning: str | None = None
        self.store = GalleryStore(self.gallery_path) if self.gallery_path is not None else None
        if gallery is None:
            gallery = self._open_gallery()
        self.gallery = gallery
        # Called after every change of the gallery (made here, read from the file, or merged
        # from another robot), from the thread that made it: the fleet sync listens.
        self.listeners: list[Callable[[], None]] = []
        self.lock = (
            threading.RLock()
        )  # models and gallery: one user at a time (the stream shares it)

    def _verify_models(self, allow_unverified: bool) -> list[str]:
        """The embedder's file and, for landmark alignment, the landmark model's, against the
        sha256 their specs record (before either is loaded); the warnings when allowed."""
        specs = [self.spec]
        if self.config.alignment.method == "landmarks" and self.spec.face_chip is not None:
            path = FaceAligner.landmark_spec_path(self.spec)
            if path.is_file():  # a missing one is the aligner's error to give
                specs.append(LandmarkSpec.from_yaml(path))
        warnings = [verify_model_file(s.file, s.sha256, s.path, allow_unverified) for s in specs]
        return [w for w in warnings if w]

    # --- configuration ------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        configured = self.config.recognition.threshold
        return self.spec.threshold if configured < 0 else configured

    @property
    def alignment_notice(self) -> str | None:
        """Advice when gallery samples were aligned otherwise than faces are now (still
        usable)."""
        names = self.gallery.aligned_otherwise(self.aligner.method)
        if not names:
            return None
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return (f"{len(names)} enrolled {'person was' if len(names) == 1 else 'people were'} "
                f"aligned another way than alignment.method '{self.aligner.method}' ({shown}); "
                "they are still recognised, but re-enrolling them (enrol again with overwrite) "
                "improves accuracy")

    @property
    def gallery_path(self) -> Path | None:
        path = self.config.gallery.path
        return Path(path).expanduser() if path else None

    def _open_gallery(self) -> Gallery:
        """The gallery file (or an empty gallery in memory). A cap configured differently from
        the last time this file was opened is applied (and saved) now: the cap is the
        gallery's, shared with every copy, so an unchanged configuration leaves it alone."""
        space, dim = self.spec.embedding_space, self.spec.output_dim
        cap = self.config.gallery.max_samples_per_person
        if self.store is None:
            return Gallery(space, dim, max_samples_per_person=cap, node_id=self.node_id)
        gallery, self.gallery_warning = self.store.open(
            space, dim, max_samples_per_person=cap, node_id=self.node_id)
        if gallery.configured_cap != cap:
            self.store.commit(gallery, lambda: gallery.configure_cap(cap))
        return gallery

    # --- recognition --------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        with self.lock:
            return self.detector.detect(rgb)

    def detect_photo(self, rgb: np.ndarray) -> list[Detection]:
        """Detection for a still photo, where a miss or a sloppy keypoint costs more than a second
        model run. When the configured BlazeFace range finds nothing, the other range gets a try
        (short range misses small faces, full range misses tight crops). When the face fills most
        of the photo (a cropped portrait), detection is repeated with a black margin around it:
        BlazeFace places keypoints better when it sees the whole head."""
        with self.lock:
            detections = self.detector.detect(rgb)
            if not detections:
                options = self.config.detector
                other = "full" if options.model_range == "short" else "short"
                if self._other_range_detector is None:
                    self._other_range_detector = create_detector(
                        dataclasses.replace(options, model_range=other))
                # The configured thresholds, as they are now, for the other range too.
                self._other_range_detector.options = dataclasses.replace(
                    options, model_range=other
                )
                detections = self._other_range_detector.detect(rgb)
            if detections and fills_frame(main_face(detections), rgb.shape):
                pad = int(PORTRAIT_MARGIN * max(rgb.shape[:2]))
                padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
                redone = self.detector.detect(padded)
                if redone:
                    return [shift_detection(d, -pad) for d in redone]
            return detections

    def geometry(self, rgb: np.ndarray, detections: list[Detection]) -> list[FaceGeometry]:
        """Landmarks, eye distance and head pose of each face (all faces in one landmark
        pass)."""
        with self.lock:
            return self.aligner.geometry(rgb, detections)

    def quality_problems(self, geometries: list[FaceGeometry]) -> list[str]:
        """Why each face should not be embedded ('' = usable), by the recognition options."""
        return [quality_problem(g, self.config.recognition) for g in geometries]

    def _chips(self, rgb: np.ndarray, detections: list[Detection], geometries: list[FaceGeometry],
               reasons: list[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
        """Aligned chips of the faces that pass the quality checks (``reasons`` when the caller
        has judged them already), and a reason ('' = fine) per face."""
        if reasons is None:
            reasons = self.quality_problems(geometries)
        chips = [self.aligner.chip(rgb, d, g)
                 for d, g, r in zip(detections, geometries, reasons) if not r]
        return chips, reasons

    def chip(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """The chip the embedder sees for one face (its landmarks found again), e.g. to show it."""
        with self.lock:
            return self.aligner.chip(rgb, detection, self.aligner.geometry(rgb, [detection])[0])

    def _embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(chips)
        if not self.config.alignment.flip:
            return self.embedder.embed(batch)
        both = self.embedder.embed(np.concatenate([batch, batch[:, :, ::-1]]))
        mean = both[:len(batch)] + both[len(batch):]
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

    def embed(self, rgb: np.ndarray, detections: list[Detection],
              geometries: list[FaceGeometry] | None = None,
              reasons: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Embeddings of the faces that pass the quality checks, and a reason ('' = embedded) per
        face. Pass ``geometries`` (from :meth:`geometry`, same order) to save the landmark step,
        and ``reasons`` (from :meth:`quality_problems`) to skip judging the faces again."""
        with self.lock:
            if geometries is None:
                geometries = self.aligner.geometry(rgb, detections)
            chips, reasons = self._chips(rgb, detections, geometries, reasons)
            if not chips:
                return np.zeros((0, self.spec.output_dim), np.float32), reasons
            return self._embed_chips(chips), reasons

    def identify(self, embeddings: np.ndarray) -> list[Match]:
        with self.lock:
            return match(embeddings, self.gallery, self.threshold,
                         each_once=self.config.recognition.each_once)

    def process(self, rgb: np.ndarray) -> list[Face]:
        """Detect, align, embed and name every face in an RGB uint8 frame."""
        return self.recognize(rgb).faces

    def recognize(self, rgb: np.ndarray) -> Recognition:
        """:meth:`process`, with what each stage cost."""
        with self.lock:
            t0 = time.perf_counter()
            detections = self.detector.detect(rgb)
            t1 = time.perf_counter()
            geometries = self.aligner.geometry(rgb, detections)
            t_landmarks = time.perf_counter()
            chips, reasons = self._chips(rgb, detections, geometries)
            t2 = time.perf_counter()
            embeddings = self._embed_chips(chips) if chips else None
            t3 = time.perf_counter()
            matches = self.identify(embeddings) if embeddings is not None else []
            t4 = time.perf_counter()
            faces = [Face(detection=d, rejected=r) for d, r in zip(detections, reasons)]
            for face, m, emb in zip((f for f in faces if not f.rejected), matches,
                                    embeddings if embeddings is not None else []):
                face.label, face.similarity, face.candidate, face.margin = (
                    m.label, m.similarity, m.candidate, m.margin)
                face.embedding = emb
            timings = {
                "detect": (t1 - t0) * 1e3,
                "landmarks": (t_landmarks - t1) * 1e3,
                "align": (t2 - t_landmarks) * 1e3,
                "embed": (t3 - t2) * 1e3,
                "match": (t4 - t3) * 1e3,
                "total": (t4 - t0) * 1e3,
            }
            return Recognition(faces, timings, len(chips))

    # --- enrolment and gallery management -------------------------------------------------
    def embed_for_enrollment(self, rgb: np.ndarray, *, require_single: bool = False) -> np.ndarray:
        """The embedding of the one (or largest) face in a photo; ValueError says what is wrong."""
        with self.lock:
            detections = self.detect_photo(rgb)
            if not detections:
                raise ValueError("no face found")
            if require_single and len(detections) > 1:
                raise ValueError(f"{len(detections)} faces found; the image must show exactly one")
            face = main_face(detections)
            embeddings, reasons = self.embed(rgb, [face])
            if reasons[0]:
                raise ValueError(f"face not usable: {reasons[0]}")
            return embeddings[0]

    def enroll(self, name: str, images: list[np.ndarray], *, overwrite: bool = False,
               require_single: bool = False, labels: list[str] | None = None) -> EnrollResult:
        """Add one sample per usable image to `name` (largest face), then save the gallery."""
        labels = labels or [f"image {i + 1}" for i in range(len(images))]
        samples, skipped = [], []
        for label, rgb in zip(labels, images):
            try:
                samples.append(self.embed_for_enrollment(rgb, require_single=require_single))
            except ValueError as exc:
                skipped.append(f"{label}: {exc}")
        if not samples:
            raise EnrollError(
                f"nothing enrolled for '{name}': " + "; ".join(skipped or ["no images"])
            )
        return self.add_samples(name, np.stack(samples), overwrite=overwrite, skipped=skipped)

    def add_samples(self, name: str, embeddings: np.ndarray, *, overwrite: bool = False,
                    skipped: list[str] | None = None) -> EnrollResult:
        total = self._change(lambda: self.gallery.add(name, embeddings, overwrite=overwrite,
                                                      alignment=self.aligner.method))
        return EnrollResult(name=name, added=len(embeddings), total=total, skipped=skipped or [])

    def forget(self, name: str) -> None:
        self._change(lambda: self.gallery.remove(name))

    def rename(self, old: str, new: str, *, merge: bool = False) -> None:
        self._change(lambda: self.gallery.rename(old, new, merge=merge))

    def set_sample_cap(self, value: int) -> bool:
        """Change the gallery's sample cap (for every copy of it); saved like any change.
        True when it changed."""
        if value == self.gallery.cap.value:
            return False
        return self._change(lambda: self.gallery.set_cap(value))

    def people(self) -> list[PersonInfo]:
        return self.gallery.people()

    def reload_gallery(self) -> bool:
        """Take in changes another process (a second node, the CLI) saved to the gallery file;
        True when the gallery changed. Raises GalleryError once for an unusable new file."""
        return self.store is not None and self._notify(self.store.reload(self.gallery))

    def absorb(self, theirs: GalleryState) -> bool:
        """Merge another copy's change (another robot's) and save it; True when the gallery
        changed. GalleryNotSaved: it was undone (the sender still has it)."""
        if self.store is None:
            return self._notify(self.gallery.join(theirs, announce=False))
        return self._notify(self.store.absorb(self.gallery, theirs))

    def _notify(self, changed: bool) -> bool:
        if changed:
            for listener in list(self.listeners):
                listener()
        return changed

    def _change(self, change: Callable[[], T]) -> T:
        """Apply a gallery change and, with a file, save it in the same step: on return it is on
        disk, and GalleryNotSaved means it was undone. The recognizer lock is not held, so a slow
        disk (an SD card's fsync) never stalls frames; the gallery and store lock themselves."""
        result = change() if self.store is None else self.store.commit(self.gallery, change)
        self._notify(True)
        return result
