"""`face-recog benchmark-tracking`: the same synthetic walk-through with tracking off and on.

One run replays samples.sequence() (two public-domain people moving, scaling and changing
light; an occlusion, a person leaving and coming back, dropped frames) through
StreamRecognizer twice: tracking off (every face detected, embedded and matched every frame)
and on. CPU is time.process_time() per frame (all threads of this process), so a busy machine
inflates both modes alike; the ratios are what the goals are about.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

from ..io import samples
from ..config import RecognizerConfig
from ..core.recognizer import FaceRecognizer
from ..tracking.stream import StreamRecognizer

# Frames after a person comes into full view before their label counts as steady.
SETTLE_FRAMES = 10
GOALS = {"embedder calls (off / on)": 3.0, "mean CPU per frame (off / on)": 2.0}
MAX_FRAMES_TO_LABEL = 5


@dataclass
class ModeResult:
    cpu_ms: list[float]  # per frame
    embedded: list[int]  # per frame
    labels: list[dict[str, str]]  # per frame: person key -> label given to their face


@dataclass
class Visit:
    person: str
    frames: list[int]  # positions in the replayed sequence where the person is fully in view


def visits(sequence: list[samples.SequenceFrame]) -> list[Visit]:
    """Runs of consecutive delivered frames in which a person is fully in view."""
    out: list[Visit] = []
    open_visits: dict[str, Visit] = {}
    for pos, frame in enumerate(sequence):
        for person in frame.visible:
            visit = open_visits.get(person)
            if visit is None or visit.frames[-1] != pos - 1:
                visit = open_visits[person] = Visit(person, [])
                out.append(visit)
            visit.frames.append(pos)
    return out


def replay(stream: StreamRecognizer, sequence: list[samples.SequenceFrame]) -> ModeResult:
    result = ModeResult([], [], [])
    for frame in sequence:
        start = time.process_time()
        out = stream.process(frame.rgb, frame.stamp)
        result.cpu_ms.append((time.process_time() - start) * 1e3)
        result.embedded.append(out.embedded)
        labels = {}
        for face in out.faces:
            person = samples.truth_for(face.detection.box, frame)
            if person is not None:
                labels[person] = face.label
        result.labels.append(labels)
    return result


def label_metrics(result: ModeResult, all_visits: list[Visit], fps: float) -> dict[str, float]:
    """Steady-segment flips per person-visit per minute, and frames to the first correct label."""
    flips, steady_frames, to_label, wrong = 0, 0, [], 0
    for visit in all_visits:
        truth = samples.PEOPLE[visit.person]
        given = [result.labels[pos].get(visit.person, "") for pos in visit.frames]
        wrong += sum(label != truth for label in given)
        to_label.append(next((k for k, label in enumerate(given) if label == truth), len(given)))
        steady = [label for label in given[SETTLE_FRAMES:] if label]
        steady_frames += len(given[SETTLE_FRAMES:])
        flips += sum(a != b for a, b in zip(steady, steady[1:]))
    minutes = steady_frames / fps / 60.0
    return {"flips": float(flips), "flips_per_minute": flips / minutes if minutes else 0.0,
            "max_frames_to_label": float(max(to_label, default=0)),
            "mean_frames_to_label": statistics.fmean(to_label) if to_label else 0.0,
            "wrong_rate": wrong / max(sum(len(v.frames) for v in all_visits), 1)}


def run_tracking_benchmark(config: RecognizerConfig, frames: int = 240, fps: float = 30.0) -> int:
    """Print tracking off vs on; exit status 1 when a goal is missed."""
    if frames < 30:
        raise ValueError("the sequence needs at least 30 frames")
    config = dataclasses.replace(config, gallery=dataclasses.replace(config.gallery, path=""))
    recognizer = FaceRecognizer(config)
    for key, name in samples.PEOPLE.items():
        recognizer.enroll(name, [samples.photo(key)])
    sequence = list(samples.sequence(frames, fps))
    all_visits = visits(sequence)
    for _ in range(3):  # warm up both models
        recognizer.process(sequence[0].rgb)
    modes = {"off": dataclasses.replace(config.tracking, enabled=False),
             "on": dataclasses.replace(config.tracking, enabled=True)}
    if config.tracking.detect_interval > 1:  # what the detector interval alone contributes
        modes["on, detect every frame"] = dataclasses.replace(modes["on"], detect_interval=1)
    results = {mode: replay(StreamRecognizer(recognizer, tracking), sequence)
               for mode, tracking in modes.items()}
    metrics = {mode: label_metrics(r, all_visits, fps) for mode, r in results.items()}

    t = config.tracking
    print(
        f"embedder {recognizer.spec.id}, detector {config.detector.model_range} range, "
        f"{config.detector.num_threads}/{config.embedder.num_threads} threads; {len(sequence)} "
        "frames "
        f"at {fps:g} fps, {len(all_visits)} person-visits"
    )
    print(f"tracking: detect_interval {t.detect_interval}, reembed_interval {t.reembed_interval}, "
          f"max_embeddings_per_frame {t.max_embeddings_per_frame}, min_evidence {t.min_evidence}, "
          f"min_hits {t.min_hits}")
    header = (f"{'tracking':<24}{'CPU ms/frame':>13}{'median':>8}{'embeds/frame':>13}"
              f"{'steady flips/min':>17}{'frames to label':>16}{'wrong':>8}")
    print(header)
    print("-" * len(header))
    for mode, r in results.items():
        m = metrics[mode]
        print(f"{mode:<24}{statistics.fmean(r.cpu_ms):>13.2f}{statistics.median(r.cpu_ms):>8.2f}"
              f"{statistics.fmean(r.embedded):>13.2f}{m['flips_per_minute']:>17.2f}"
              f"{m['max_frames_to_label']:>9.0f} max{m['mean_frames_to_label']:>4.1f}"
              f"{m['wrong_rate']:>8.1%}")
    on, off = results["on"], results["off"]
    checks = [
        ("embedder calls (off / on)", sum(off.embedded) / max(sum(on.embedded), 1)),
        (
            "mean CPU per frame (off / on)",
            statistics.fmean(off.cpu_ms) / statistics.fmean(on.cpu_ms),
        ),
    ]
    ok = True
    for name, ratio in checks:
        met = ratio >= GOALS[name]
        ok &= met
        print(f"goal {name} >= {GOALS[name]:g}x: {ratio:.1f}x {'met' if met else 'NOT met'}")
    flips = metrics["on"]["flips"]
    ok &= flips == 0
    print(f"goal zero label flips on steady segments (tracking on): {flips:.0f} "
          f"{'met' if flips == 0 else 'NOT met'}")
    slowest = metrics["on"]["max_frames_to_label"]
    met = slowest <= MAX_FRAMES_TO_LABEL
    ok &= met
    print(
        f"goal first correct label within {MAX_FRAMES_TO_LABEL} frames (tracking on): slowest "
        "visit "
        f"{slowest:.0f} {'met' if met else 'NOT met'}"
    )
    return 0 if ok else 1
