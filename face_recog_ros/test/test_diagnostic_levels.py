"""OK / WARN / ERROR rules of the node's /diagnostics statuses (no ROS graph needed)."""
from __future__ import annotations

import pytest

from face_recog_ros.ros.diagnostic_levels import (CameraWindow, Level, RecognizerState, Thresholds,
                                                  camera_verdict, recognizer_verdict)

LIMITS = Thresholds(image_timeout=5.0, min_processed_ratio=0.8, min_frames=5)


def window(**fields) -> CameraWindow:
    """A healthy 30 Hz camera, every frame processed, unless fields say otherwise."""
    values = dict(topic="/camera/image_raw", active=True, received=30, processed=30, span=1.0,
                  image_age=0.03, any_image=True, mean_latency_ms=4.2)
    values.update(fields)
    return CameraWindow(**values)


def test_a_healthy_camera_is_ok_with_its_rates():
    verdict = camera_verdict(window(), LIMITS)
    assert verdict.level == Level.OK
    assert verdict.message == "30.0 of 30.0 Hz processed, 4.2 ms per frame"


@pytest.mark.parametrize("age,level", [(4.9, Level.OK), (5.1, Level.ERROR),
                                       (60.0, Level.ERROR)])
def test_a_stalled_camera_is_an_error_after_the_timeout(age, level):
    verdict = camera_verdict(window(received=0, processed=0, image_age=age), LIMITS)
    assert verdict.level == level
    if level == Level.ERROR:
        assert verdict.message.startswith(f"no image for {age:.1f} s on /camera/image_raw")


def test_no_first_image_is_waited_for_then_an_error():
    silent = dict(received=0, processed=0, any_image=False)
    waiting = camera_verdict(window(image_age=2.0, **silent), LIMITS)
    assert waiting.level == Level.OK and "waiting for the first image" in waiting.message
    stalled = camera_verdict(window(image_age=6.0, **silent), LIMITS)
    assert stalled.level == Level.ERROR and "no image since activation" in stalled.message


@pytest.mark.parametrize("processed,level", [(30, Level.OK), (24, Level.OK), (23, Level.WARN),
                                             (3, Level.WARN)])
def test_falling_behind_the_input_rate_warns_below_the_ratio(processed, level):
    verdict = camera_verdict(window(processed=processed), LIMITS)
    assert verdict.level == level
    if level == Level.WARN:
        assert verdict.message.startswith(f"falling behind: {processed:.1f} of 30.0 Hz")


def test_frames_skipped_on_purpose_are_not_falling_behind():
    # process_every_n=3: 10 of 30 frames is all that should be processed.
    assert camera_verdict(window(processed=10, process_every_n=3), LIMITS).level == Level.OK
    assert camera_verdict(window(processed=7, process_every_n=3), LIMITS).level == Level.WARN


def test_too_few_frames_to_judge_the_ratio():
    # A 3 Hz camera, one frame processed in a 1 s window: noise, not a verdict.
    assert camera_verdict(window(received=3, processed=1), LIMITS).level == Level.OK


def test_refused_frames_warn_and_name_the_causes():
    verdict = camera_verdict(window(refused={"odd_size": 2, "corrupt_compressed": 1}), LIMITS)
    assert verdict.level == Level.WARN
    assert verdict.message == "refused frames: corrupt_compressed x1, odd_size x2"


def test_an_inactive_node_is_ok_whatever_its_camera_does():
    verdict = camera_verdict(window(active=False, image_age=1e3, received=0, processed=0), LIMITS)
    assert verdict.level == Level.OK and verdict.message.startswith("inactive")


def test_thresholds_are_parameters():
    strict = Thresholds(image_timeout=1.0, min_processed_ratio=0.95)
    assert camera_verdict(window(image_age=1.5), strict).level == Level.ERROR
    assert camera_verdict(window(processed=28), strict).level == Level.WARN
    assert camera_verdict(window(processed=28), LIMITS).level == Level.OK


@pytest.mark.parametrize("state,level,text", [
    (RecognizerState("active", gallery_loaded=True, people=2, samples=7), Level.OK,
     "active: 2 people, 7 samples"),
    (RecognizerState("active", gallery_loaded=True), Level.WARN, "the gallery is empty"),
    (RecognizerState("unconfigured"), Level.OK, "unconfigured: models and gallery not loaded"),
    (RecognizerState("unconfigured", model_error="model file not found: x.tflite"), Level.ERROR,
     "models failed: model file not found: x.tflite"),
    (RecognizerState("active", pipeline_errors=3, gallery_loaded=True, people=1), Level.ERROR,
     "the pipeline failed on 3 frame(s)"),
])
def test_recognizer_levels(state, level, text):
    verdict = recognizer_verdict(state)
    assert verdict.level == level
    assert text in verdict.message
