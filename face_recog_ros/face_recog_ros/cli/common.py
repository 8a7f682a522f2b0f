"""What every `face-recog` command shares: the configuration options and building the
recognizer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2

from ..config import RecognizerConfig, set_option
from ..core.aligner import ALIGNMENT_METHODS
from ..core.recognizer import FaceRecognizer

# app.build_parser's helper that adds a subcommand: (name, function, help) -> its parser.
Command = Callable[[str, Callable, str], argparse.ArgumentParser]


def build_config(args: argparse.Namespace) -> RecognizerConfig:
    """--config (default: the package's YAML, as the node reads it) with the other options on
    top."""
    config = (
        RecognizerConfig.from_yaml(args.config) if args.config else RecognizerConfig.from_package()
    )
    overrides = {"gallery.path": args.gallery, "embedder.model": args.model,
                 "recognition.threshold": args.threshold, "detector.model_range": args.range,
                 "detector.num_threads": args.threads, "embedder.num_threads": args.threads,
                 "alignment.method": args.alignment}
    for name, value in overrides.items():
        if value is not None:
            set_option(config, name, value)
    config.validate()
    return config


def make_recognizer(args: argparse.Namespace, *, gallery: bool = True) -> FaceRecognizer:
    config = build_config(args)
    if not gallery:
        config.gallery.path = ""
    recognizer = FaceRecognizer(config)
    for message in (recognizer.gallery_warning, recognizer.alignment_notice):
        if message:
            print(f"warning: {message}", file=sys.stderr)
    return recognizer


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="YAML config (default: the package's config/face_recognition.yaml)"
    )
    parser.add_argument("--gallery", help="gallery file (overrides gallery.path)")
    parser.add_argument("--model", help="embedder id or spec YAML (overrides embedder.model)")
    parser.add_argument("--threshold", type=float, help="cosine similarity needed to name a face")
    parser.add_argument("--range", choices=("short", "full"), help="BlazeFace model range")
    parser.add_argument("--threads", type=int, help="CPU threads for each model")
    parser.add_argument("--alignment", choices=ALIGNMENT_METHODS,
                        help="alignment method (overrides alignment.method)")


def write_rgb(path: str, rgb) -> None:
    try:
        written = cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:  # an extension OpenCV has no writer for
        written = False
    if not written:
        raise ValueError(
            f"cannot write image {path} (folder missing, or not a .png/.jpg/... name)"
        )


def check_writable(path: str | None) -> None:
    """Fail before a long run, not after it, when an output file cannot be created."""
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {Path(path).parent} does not exist")
