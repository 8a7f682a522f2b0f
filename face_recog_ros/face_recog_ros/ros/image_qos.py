"""Which reliability the image subscription asks for, from what the publishers offer.

The choice follows rosbag2's: a subscription can only be reliable when every publisher offers
reliable (a reliable request does not match a best-effort offer), and it should be reliable then,
because a best-effort subscriber gets best-effort delivery even from a reliable publisher, and
raw frames too large for one datagram are then mostly lost between processes (measured: 6 of 300
640x480 frames at 30 Hz with Fast DDS's defaults, against 300 of 300 with a reliable subscription).
Depth stays 1 either way: an old frame is worth nothing once a newer one exists.

Plain strings and no rclpy here, so the rule is tested without a ROS graph; the node maps the
publishers' QoS profiles to RELIABLE / BEST_EFFORT and back.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

AUTO, BEST_EFFORT, RELIABLE = "auto", "best_effort", "reliable"
MODES = (AUTO, BEST_EFFORT, RELIABLE)


@dataclass(frozen=True)
class ReliabilityChoice:
    """The reliability to subscribe with, and a sentence for the log saying why."""

    reliability: str  # RELIABLE or BEST_EFFORT
    reason: str
    warning: bool = False  # some publishers cannot be matched (log it as a warning)


def offered_counts(offered: Iterable[str]) -> tuple[int, int]:
    """(reliable, best-effort) publishers among the offered reliabilities; others are ignored."""
    offers = list(offered)
    return offers.count(RELIABLE), offers.count(BEST_EFFORT)


def _publishers(count: int, kind: str) -> str:
    return f"{count} {kind} publisher{'s' if count != 1 else ''}"


def _offer(count: int, kind: str) -> str:
    if count == 1:
        return f"the publisher offers {kind}"
    return f"all {count} publishers offer {kind}"


def choose_reliability(mode: str, offered: Iterable[str]) -> ReliabilityChoice:
    """The reliability for `mode` (one of MODES) given each publisher's offered reliability.

    auto: reliable when there are publishers and all offer reliable; otherwise best-effort, which
    matches every publisher (with none yet it is re-decided when one appears).
    best_effort / reliable: as asked; a reliable request that some publisher cannot serve says so.
    """
    if mode not in MODES:
        raise ValueError(f"image_reliability must be one of {', '.join(MODES)}, got {mode!r}")
    offers = list(offered)
    reliable, best_effort = offered_counts(offers)
    if mode == BEST_EFFORT:
        return ReliabilityChoice(BEST_EFFORT, "best-effort, as image_reliability asks")
    if mode == RELIABLE:
        if best_effort:
            return ReliabilityChoice(RELIABLE, (
                f"reliable, as image_reliability asks; {_publishers(best_effort, 'best-effort')} "
                "cannot deliver to it (set image_reliability to auto or best_effort)"),
                warning=True)
        return ReliabilityChoice(RELIABLE, "reliable, as image_reliability asks")
    if best_effort and reliable:
        return ReliabilityChoice(BEST_EFFORT, (
            f"best-effort: {_publishers(best_effort, 'best-effort')} and "
            f"{_publishers(reliable, 'reliable')}; a reliable subscription would miss the "
            "best-effort ones"), warning=True)
    if best_effort:
        return ReliabilityChoice(BEST_EFFORT,
                                 f"best-effort: {_offer(best_effort, 'best-effort')}")
    if reliable:
        return ReliabilityChoice(RELIABLE, f"reliable: {_offer(reliable, 'reliable')}")
    if offers:
        return ReliabilityChoice(BEST_EFFORT,
                                 "best-effort: the publishers' reliability is unknown")
    return ReliabilityChoice(BEST_EFFORT,
                             "best-effort until a publisher appears (no publisher yet)")
