"""Video files in and out for the offline tools: frames with timestamps, annotated output, audio.

OpenCV reads and writes the pictures (its wheels bundle FFmpeg's codecs); it cannot carry an
audio track, so when an `ffmpeg` executable is on PATH the original audio is copied into the
written video afterwards. Without one the output is silent and :meth:`VideoSink.close` says so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Containers OpenCV's FFmpeg backend writes, and the codec used for each.
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


@dataclass(frozen=True)
class Frame:
    """One picture of a video or a bag topic."""

    index: int  # position in the source, from 0
    stamp: float  # seconds from the start of the source
    rgb: np.ndarray


class VideoSource:
    """The frames of a video file, RGB, with their presentation times.

    Times come from the container (CAP_PROP_POS_MSEC) so variable-frame-rate files keep their
    real timing; where the container gives none, index / fps stands in.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"cannot open video {self.path}: no such file")
        capture = cv2.VideoCapture(str(self.path))
        try:
            ok, first = capture.read() if capture.isOpened() else (False, None)
            fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            capture.release()
        if not ok:
            raise ValueError(f"cannot read video {self.path}: not a video OpenCV can decode")
        self.size = (first.shape[1], first.shape[0])  # width, height
        self.fps = fps if 0 < fps < 1000 else 30.0
        self.frame_count = count if count > 0 else None  # an estimate from the container header

    @property
    def frame_period(self) -> float:
        return 1.0 / self.fps

    def __iter__(self) -> Iterator[Frame]:
        capture = cv2.VideoCapture(str(self.path))
        last = -1.0
        index = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if not stamp > last:  # missing or non-monotonic container times
                    stamp = max(index / self.fps, last + 1e-6)
                last = stamp
                yield Frame(index, stamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()


def find_ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


class VideoSink:
    """Writes RGB frames to a video file; on close, copies the audio of ``audio_from`` into it.

    Frames go to a temporary file next to the output first, so a failed run never leaves a
    half-written file under the requested name.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *,
                 audio_from: str | Path | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise ValueError(f"cannot write {self.path}: choose one of {', '.join(FOURCC)}")
        if not self.path.parent.is_dir():
            raise ValueError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.size = size
        self.audio_from = Path(audio_from) if audio_from else None
        self._temp = self._scratch("video")
        self._writer = cv2.VideoWriter(str(self._temp), cv2.VideoWriter_fourcc(*FOURCC[suffix]),
                                       fps, size)
        if not self._writer.isOpened():
            raise ValueError(f"OpenCV cannot write {suffix} video to {self.path}")
        self.frames = 0

    def _scratch(self, role: str) -> Path:
        return self.path.with_name(f".{self.path.stem}.{os.getpid()}.{role}{self.path.suffix}")

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> str:
        """Finish the file; returns a note on the audio track (kept, none, or why not)."""
        self._writer.release()
        note = "no audio source" if self.audio_from is None else self._mux_audio()
        if self._temp.exists():
            os.replace(self._temp, self.path)
        return note

    def abort(self) -> None:
        self._writer.release()
        self._temp.unlink(missing_ok=True)

    def _mux_audio(self) -> str:
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            return ("ffmpeg is not on PATH: the output video is SILENT (install ffmpeg to keep "
                    "the audio)")
        muxed = self._scratch("muxed")
        base = [ffmpeg, "-v", "error", "-y", "-i", str(self._temp), "-i", str(self.audio_from),
                "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy", "-shortest"]
        # Copy the audio as is; re-encode to AAC where the container cannot hold the original
        # codec.
        for audio in (["-c:a", "copy"], ["-c:a", "aac"]):
            done = subprocess.run(base + audio + [str(muxed)], capture_output=True, text=True)
            if done.returncode == 0:
                os.replace(muxed, self._temp)
                if has_audio(ffmpeg, self._temp):
                    return "audio copied from the input"
                return "the input has no audio"
        muxed.unlink(missing_ok=True)
        return (
            f"ffmpeg could not copy the audio, the output is SILENT: {done.stderr.strip()[-300:]}"
        )


def has_audio(ffmpeg: str, path: Path) -> bool:
    """Whether ffmpeg sees an audio stream in the file (ffprobe is not always installed)."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    return "Audio:" in done.stderr


class Progress:
    """A progress bar with ETA on stderr: tqdm when it is installed, else a plain one-line bar."""

    def __init__(self, total: int | None, description: str, *, enabled: bool = True) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.done = 0
        self._start = self._last = time.monotonic()
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self._bar = tqdm(total=total, desc=description, unit="frame", file=sys.stderr,
                                 dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= 0.5:
            self._last = time.monotonic()
            self._print()

    def _print(self, end: str = "") -> None:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            text = (f"{self.done}/{self.total} ({self.done / self.total:.0%}) {rate:.1f} frame/s, "
                    f"ETA {left:.0f} s")
        else:
            text = f"{self.done} frames, {rate:.1f} frame/s"
        print(f"\r{self.description}: {text}   ", end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._print(end="\n")
