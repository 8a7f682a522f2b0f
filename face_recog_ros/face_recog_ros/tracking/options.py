"""The tracking stage's options: one declaration, checked in one place."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..options import Options, option


@dataclass
class TrackingOptions(Options):
    """The `tracking.*` group: follow faces across frames (stable ids, labels from several
    frames, fewer embeddings), tell strangers apart, enrol the face in view."""

    enabled: bool = option(
        True,
        "Track faces across frames (stable track ids, temporal labels, events, "
        "embedding budget); false recognises every face from scratch every frame",
    )
    max_age: int = option(
        15,
        "Detection rounds a track survives unseen (occlusion, missed detections) "
        "before it is dropped and LEFT is reported",
        low=0,
        high=1000,
    )
    min_hits: int = option(2, "Detections in a row before a track is confirmed (gets an id and "
                           "APPEARED); filters one-frame false detections", low=1, high=100)
    max_keypoint_distance: float = option(0.6, "Largest mean keypoint distance from the track's "
                                          "predicted position, in face widths, for a detection to "
                                          "continue that track", low=0.01, high=10.0)
    detect_interval: int = option(2, "Run the detector every N frames; in between, tracks move by "
                                  "their predicted motion", low=1, high=30)
    reembed_interval: int = option(10, "Frames between re-embeddings of a face whose identity is "
                                   "settled", low=1, high=1000)
    max_embeddings_per_frame: int = option(2, "Most faces embedded per frame; new and unresolved "
                                           "faces first", low=1, high=100)
    reembed_yaw_change_deg: float = option(20.0, "Re-embed early when the face turned this many "
                                           "degrees since its last embedding", low=0.0, high=180.0)
    reembed_scale_change: float = option(
        0.3,
        "Re-embed early when the eye distance changed by this "
        "fraction since the last embedding",
        low=0.0,
        high=10.0,
    )
    evidence_window: int = option(
        8,
        "Recent embeddings per track whose mean similarity decides its label",
        low=1,
        high=100,
    )
    min_evidence: int = option(2, "Embeddings a track needs before it is named (until then: "
                               "unknown)", low=1, high=100)
    label_margin: float = option(
        0.05,
        "A track's label changes only when the new candidate's mean "
        "similarity beats the current one by this much (hysteresis)",
        low=0.0,
        high=2.0,
    )
    cluster_unknowns: bool = option(
        False,
        "Group unrecognised people into unknown_1, unknown_2, ... "
        "(in memory only) so they keep their label when they come back",
    )
    cluster_threshold: float = option(
        -1.0,
        "Cosine similarity for an unknown track to join an "
        "existing unknown cluster; -1 uses the recognition threshold",
        low=-1.0,
        high=1.0,
    )
    max_unknown_clusters: int = option(
        50, "Most unknown clusters kept (least recently seen dropped)", low=1, high=10000
    )
    enroll_max_similarity: float = option(
        0.95,
        "Live enrolment skips a sample this similar (cosine) "
        "to one already collected (near-duplicate)",
        low=-1.0,
        high=1.0,
    )
    enroll_min_sharpness: float = option(25.0, "Live enrolment skips chips blurrier than this "
                                         "(variance of the Laplacian of the aligned grey chip)",
                                         low=0.0, high=100000.0)
    enroll_max_yaw_deg: float = option(30.0, "Live enrolment skips faces turned further than this "
                                       "many degrees (stricter than recognition.max_yaw_deg)",
                                       low=0.0, high=90.0)
    enroll_timeout: float = option(30.0, "Seconds a live enrolment may take before it fails",
                                   low=1.0, high=3600.0)

    renamed: ClassVar[dict[str, str]] = {
        "reembed_yaw_change": "reembed_yaw_change_deg (degrees; 0.25 was about 20)",
        "enroll_max_yaw": "enroll_max_yaw_deg (degrees; 0.35 was about 30)",
    }

    def check(self) -> None:
        check_evidence(self.evidence_window, self.min_evidence, prefix="tracking.")

    def cluster_threshold_or(self, recognition_threshold: float) -> float:
        """The similarity for joining a stranger cluster: cluster_threshold, or when that is -1
        the recognition threshold in effect."""
        return recognition_threshold if self.cluster_threshold < 0 else self.cluster_threshold


def check_evidence(window: int, min_evidence: int, *, prefix: str = "") -> None:
    """A track is named from at most ``window`` embeddings, so it cannot need more than that."""
    if min_evidence > window:
        raise ValueError(f"{prefix}min_evidence ({min_evidence}) cannot exceed "
                         f"{prefix}evidence_window ({window})")
