"""Model files checked against the sha256 their spec records, before they are used.

Why: a model damaged in a copy, a download or on a failing SD card can still load and run, and
give wrong answers quietly. 20 KB of flipped weights in the embedder made different people more
similar (0.890 -> 0.913 against a 0.92 threshold), with no error anywhere. A digest mismatch is a
ModelError. Users' own models (a spec without a digest, or a file changed on purpose) load with
``embedder.allow_unverified_model`` (``--allow-unverified-model``), with a warning.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .runtime import ModelError

ALLOW_OPTION = "embedder.allow_unverified_model"
_CHUNK = 1 << 20


def spec_digest(value: Any, where: Path) -> str | None:
    """A spec's `sha256` value (64 hex digits) or None; ModelError for anything else."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ModelError(f"{where}: 'sha256' must be 64 hex digits, got {value!r}")
    return text


def file_sha256(path: Path) -> str:
    """The file's sha256, hex; ModelError when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"model file not readable: {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def verify_model_file(path: Path, expected: str | None, spec: Path | str,
                      allow_unverified: bool) -> str | None:
    """None when ``path`` has the sha256 ``spec`` records. Otherwise a ModelError saying what
    to do, or, with ``allow_unverified``, a warning to show. A missing file is left to the
    loader, whose error names it."""
    if not path.is_file():
        return None
    actual = file_sha256(path)
    if expected is not None and actual == expected.lower():
        return None
    if expected is None:
        problem = f"{spec} records no sha256 for {path}"
        fix = f"add 'sha256: {actual}' to the spec"
    else:
        problem = (f"{path} does not match the sha256 in {spec} (file {actual[:16]}..., spec "
                   f"{expected[:16]}...): the file is damaged or not the model the spec describes")
        fix = (f"restore the file; or, for a model of your own, put 'sha256: {actual}' in the "
               "spec")
    if allow_unverified:
        return f"{problem}; loaded anyway ({ALLOW_OPTION} is set)"
    raise ModelError(f"{problem}. Fix: {fix}, or set {ALLOW_OPTION} "
                     "(--allow-unverified-model) to load it unverified")
