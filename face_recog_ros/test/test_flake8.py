"""Lint: the whole package at ament_flake8's limits, as `colcon test` would run it.

The settings are setup.cfg's [flake8] section (ament_flake8's defaults: max line length 99 and
its ignore list), so `flake8` run by hand in this folder reports the same.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flake8", reason="flake8 is installed by ./setup.sh (or: pip install flake8)")

PACKAGE = Path(__file__).resolve().parents[1]


def test_flake8_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "flake8", "--no-show-source", "."], cwd=PACKAGE,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"flake8 found problems:\n{done.stdout}{done.stderr}"
