"""A short soak of the real node (subprocess): 600 frames at 30 Hz while another thread enrols
(with an image), lists and forgets through the services. tools/soak_node.py runs the long one.
"""
from __future__ import annotations

import pytest
from conftest import load_tool

FRAMES, RATE_HZ = 600, 30.0
# p99 must stay under a second; single calls may exceed it (never time out) while raw frames flood
# DDS on its default transports (docs/robustness.md).
MAX_LATENCY_S, WORST_LATENCY_S = 1.0, 5.0


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    soak_node = load_tool("soak_node")
    result = soak_node.soak(
        tmp_path_factory.mktemp("soak"), FRAMES, RATE_HZ, max_latency=WORST_LATENCY_S, warmup_s=3.0
    )
    print(result.table())
    return result


def test_node_survives_and_stops_cleanly(report) -> None:
    assert report.frames == FRAMES
    assert report.node_alive and report.exit_code == 0
    assert report.answered > 0 and report.labelled > 0  # it kept recognising during the load


def test_every_call_answered(report) -> None:
    assert report.failures == []  # no timeout, no unexpected refusal, nothing over WORST_LATENCY_S
    assert min(report.calls.values()) > 10
    for kind, (_, p99, _) in report.latency_ms.items():
        assert p99 < MAX_LATENCY_S * 1e3, f"{kind} p99 {p99:.0f} ms"


def test_gallery_consistent(report) -> None:
    assert report.gallery_listed == report.gallery_file == report.gallery_expected
    assert report.gallery_file  # the load left people enrolled
