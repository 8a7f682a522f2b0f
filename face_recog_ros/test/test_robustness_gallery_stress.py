"""Nothing acknowledged is lost: back-to-back enrol/forget/rename against the real node process
with a large gallery and its reload timer polling fast, alone and with the face-recog CLI
editing the same file from another process (tools/stress_gallery.py, bounded in time).

The node once lost acknowledged changes with no fault at all: its reload timer read its own
just-replaced file as an outside change and swapped that older state in over newer changes.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_tool

stress_gallery = load_tool("stress_gallery")


@pytest.mark.parametrize("with_cli", [False, True], ids=["node_alone", "with_cli_writer"])
def test_back_to_back_changes_are_all_kept(tmp_path: Path, with_cli: bool) -> None:
    report = stress_gallery.stress(tmp_path, people=1500, seconds=12.0, with_cli=with_cli)
    print(report.table())
    assert report.node_calls > 30 and (report.cli_calls > 0 or not with_cli), report.table()
    assert not report.refused, report.table()
    assert not report.lost and not report.undone, report.table()
    assert report.listed_matches_file and report.node_alive, report.table()
