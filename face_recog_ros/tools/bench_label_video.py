#!/usr/bin/env python3
"""Throughput of `face-recog label-video` against a plain frame-by-frame face_recognition loop.

One run, one clip: the synthetic walk-through (samples.sequence: two public-domain people
moving, an occlusion, one leaving and coming back) is written to an .mp4 in a temp folder,
then decoded by both. label-video does all of its work (decode, track, recognise, annotate,
encode the output video); the reference only decodes and runs face_locations (HOG) +
face_encodings + compare_faces on every frame, writing nothing. Both are also scored on the
ground truth: the share of (frame, visible person) pairs where that person's face is named.

    python tools/bench_label_video.py [--frames 240] [--goal 10]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from face_recog_ros.offline import reference
from face_recog_ros.io import samples
from face_recog_ros.config import RecognizerConfig
from face_recog_ros.offline.labelling import label_to_files
from face_recog_ros.core.recognizer import FaceRecognizer
from face_recog_ros.tracking.stream import StreamRecognizer
from face_recog_ros.io.video import VideoSink, VideoSource


def named_share(
    truth: list[samples.SequenceFrame], named: list[list[tuple[np.ndarray, str]]]
) -> float:
    """Share of (frame, visible person) pairs with a face of that person labelled with their
    name."""
    hits = total = 0
    for frame, faces in zip(truth, named):
        for person in frame.visible:
            total += 1
            hits += any(label == samples.PEOPLE[person] and samples.truth_for(box, frame) == person
                        for box, label in faces)
    return hits / total if total else float("nan")


def run_label_video(clip: Path, out: Path, detections: Path) -> tuple[float, float, list]:
    config = RecognizerConfig()
    config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    for key, name in samples.PEOPLE.items():
        recognizer.enroll(name, [samples.photo(key)])
    source = VideoSource(clip)
    stream = StreamRecognizer(recognizer)
    wall, cpu = time.perf_counter(), time.process_time()
    summary, _ = label_to_files(
        stream, source, VideoSink(out, source.fps, source.size), detections, None
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    named: list[list] = [[] for _ in range(summary.frames)]
    for row in csv.DictReader(detections.open()):
        box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
        named[int(row["frame"])].append((box, row["label"]))
    return summary.frames / wall, summary.frames / cpu, named


def run_reference(clip: Path) -> tuple[float, float, list]:
    import face_recognition
    ref = reference.FaceRecognitionReference()
    names = list(samples.PEOPLE.values())
    known = [ref.embed_largest(samples.photo(key)) for key in samples.PEOPLE]
    named, frames = [], 0
    wall, cpu = time.perf_counter(), time.process_time()
    for frame in VideoSource(clip):
        locations = face_recognition.face_locations(frame.rgb)
        encodings = face_recognition.face_encodings(frame.rgb, locations)
        faces = []
        for (top, right, bottom, left), encoding in zip(locations, encodings):
            matches = face_recognition.compare_faces(known, encoding)
            label = names[matches.index(True)] if True in matches else "unknown"
            faces.append((np.array([left, top, right, bottom], float), label))
        named.append(faces)
        frames += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return frames / wall, frames / cpu, named


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--frames", type=int, default=240, help="clip length at 30 fps (default 240)"
    )
    parser.add_argument("--goal", type=float, default=10.0, help="required speed-up (default 10)")
    args = parser.parse_args()
    if not reference.available():
        print("face_recognition is not installed: nothing to compare with", file=sys.stderr)
        return 1
    truth = list(samples.sequence(args.frames, dropped=range(0)))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "walk.mp4"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
        for frame in truth:
            writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        writer.release()
        ours = run_label_video(clip, Path(tmp) / "out.mp4", Path(tmp) / "faces.csv")
        theirs = run_reference(clip)
    print(f"clip: {len(truth)} frames, 640x480, 30 fps (samples.sequence walk-through)")
    print(f"{'':<36}{'frames/s':>10}{'frames/CPU-s':>14}{'people named':>14}")
    rows = (("face-recog label-video", ours), ("face_recognition per frame", theirs))
    for name, (fps, cpu_fps, named) in rows:
        print(f"{name:<36}{fps:>10.1f}{cpu_fps:>14.1f}{named_share(truth, named):>14.1%}")
    speedup = ours[0] / theirs[0]
    print(f"speed-up (wall): {speedup:.1f}x, per CPU second: {ours[1] / theirs[1]:.1f}x; "
          f"goal >= {args.goal:g}x: {'met' if speedup >= args.goal else 'NOT met'}")
    return 0 if speedup >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
