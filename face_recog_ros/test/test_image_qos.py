"""The image subscription's reliability from the publishers' offered QoS (rosbag2's rule)."""
from __future__ import annotations

import pytest

from face_recog_ros.ros.image_qos import AUTO, BEST_EFFORT, MODES, RELIABLE, choose_reliability


@pytest.mark.parametrize("offered,expected,warning", [
    ([], BEST_EFFORT, False),  # nobody yet: best-effort matches whoever comes
    ([RELIABLE], RELIABLE, False),  # most camera drivers: frames are then delivered reliably
    ([RELIABLE, RELIABLE], RELIABLE, False),
    ([BEST_EFFORT], BEST_EFFORT, False),  # sensor-data cameras: reliable would not match
    ([BEST_EFFORT, RELIABLE], BEST_EFFORT, True),  # mixed: only best-effort matches both
    (["system_default"], BEST_EFFORT, False),
])
def test_auto_follows_the_publishers(offered, expected, warning):
    choice = choose_reliability(AUTO, offered)
    assert (choice.reliability, choice.warning) == (expected, warning)
    assert choice.reason


def test_auto_reasons_name_the_publishers():
    assert "no publisher yet" in choose_reliability(AUTO, []).reason
    both = choose_reliability(AUTO, [RELIABLE, RELIABLE]).reason
    assert "all 2 publishers offer reliable" in both
    mixed = choose_reliability(AUTO, [RELIABLE, BEST_EFFORT, BEST_EFFORT]).reason
    assert "2 best-effort publishers and 1 reliable publisher" in mixed


@pytest.mark.parametrize("offered", [[], [RELIABLE], [BEST_EFFORT], [RELIABLE, BEST_EFFORT]])
def test_fixed_modes_are_honoured(offered):
    assert choose_reliability(BEST_EFFORT, offered).reliability == BEST_EFFORT
    assert not choose_reliability(BEST_EFFORT, offered).warning
    reliable = choose_reliability(RELIABLE, offered)
    assert reliable.reliability == RELIABLE
    # A best-effort publisher cannot serve a reliable subscription: said, not silently lost.
    assert reliable.warning == (BEST_EFFORT in offered)
    if reliable.warning:
        assert "cannot deliver" in reliable.reason


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="must be one of auto, best_effort, reliable"):
        choose_reliability("sometimes", [])
    assert MODES == ("auto", "best_effort", "reliable")
