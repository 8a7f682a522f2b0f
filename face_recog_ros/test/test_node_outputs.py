"""The standard outputs against a known frame: ~/detections (vision_msgs) and the REP-155 face
topics (hri_msgs), field by field against the node's own ~/faces for the same image.

vision_msgs and hri_msgs are the test-only copies that setup.sh builds (test/interfaces/); on a
robot the released packages are used, and without them these tests skip.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from face_recog_interfaces.msg import FaceArray
from face_recog_interfaces.srv import Enroll
from face_recog_ros.io import samples
from face_recog_ros.ros.conversion import rgb_to_image
from test_node_lifecycle import EILEEN, NODE, Graph, wait_until

vision_msgs = pytest.importorskip("vision_msgs.msg", reason="vision_msgs is not installed")
hri_msgs = pytest.importorskip("hri_msgs.msg", reason="hri_msgs is not installed")
PHOTO = samples.photo("astronaut")  # 512x512, one face


@pytest.fixture(scope="module")
def graph() -> Iterator[Graph]:
    g = Graph(Parameter("publish_rep155", value=True))
    response = g.call(Enroll, f"{NODE}/enroll",
                      Enroll.Request(name=EILEEN, image=rgb_to_image(PHOTO)))
    assert response.success, response.message
    yield g
    g.close()


def named(faces: list[FaceArray]) -> FaceArray | None:
    return next((m for m in reversed(faces) if any(f.label == EILEEN for f in m.faces)), None)


def test_detections_carry_track_label_similarity_and_box(graph):
    faces = graph.collect(FaceArray, f"{NODE}/faces")
    detections = graph.collect(vision_msgs.Detection2DArray, f"{NODE}/detections")
    msg = graph.feed(PHOTO, lambda: named(faces), "Eileen named on ~/faces")
    stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
    array = wait_until(lambda: next((d for d in detections if (d.header.stamp.sec,
                                                               d.header.stamp.nanosec) == stamp),
                                    None), what="~/detections for the same image")
    assert array.header == msg.header and len(array.detections) == len(msg.faces) == 1
    face, detection = msg.faces[0], array.detections[0]
    assert detection.header == msg.header
    assert detection.id == str(face.track_id)
    assert [r.hypothesis.class_id for r in detection.results] == [EILEEN]
    assert detection.results[0].hypothesis.score == pytest.approx(face.similarity, abs=1e-6)
    assert detection.bbox.center.position.x == pytest.approx(face.x_min + face.width / 2, 1e-5)
    assert detection.bbox.center.position.y == pytest.approx(face.y_min + face.height / 2, 1e-5)
    assert (detection.bbox.size_x, detection.bbox.size_y) == pytest.approx(
        (face.width, face.height), 1e-5)


def test_rep155_topics_for_a_tracked_face(graph):
    faces = graph.collect(FaceArray, f"{NODE}/faces")
    tracked = graph.collect(hri_msgs.IdsList, "/humans/faces/tracked")
    matches = graph.collect(hri_msgs.IdsMatch, "/humans/candidate_matches")
    msg = graph.feed(PHOTO, lambda: named(faces) and tracked and tracked[-1].ids,
                     "a tracked face id")
    msg = named(faces)
    face = msg.faces[0]
    face_id = tracked[-1].ids[0]
    assert list(tracked[-1].ids) == [face_id] and face_id.endswith(str(face.track_id))
    ns = f"/humans/faces/{face_id}"
    rois = graph.collect(hri_msgs.NormalizedRegionOfInterest2D, ns + "/roi")
    aligned = graph.collect(Image, ns + "/aligned")
    cropped = graph.collect(Image, ns + "/cropped")
    graph.feed(PHOTO, lambda: rois and aligned and cropped, "roi, aligned and cropped")
    # Same face, same place: the box moves by at most a pixel between frames of one photo.
    roi = rois[-1]
    assert (roi.xmin, roi.ymin) == pytest.approx((face.x_min / 512, face.y_min / 512), abs=3e-3)
    assert (roi.xmax, roi.ymax) == pytest.approx(((face.x_min + face.width) / 512,
                                                  (face.y_min + face.height) / 512), abs=3e-3)
    assert 0.5 < roi.c <= 1.0
    chip = aligned[-1]
    assert (chip.width, chip.height, chip.encoding) == (150, 150, "rgb8")  # the embedder's chip
    assert chip.header.frame_id == "camera_optical"
    assert cropped[-1].encoding == "rgb8" and abs(cropped[-1].width - face.width) <= 3
    pixels = np.frombuffer(bytes(cropped[-1].data), np.uint8)
    assert pixels.size == cropped[-1].height * cropped[-1].step and pixels.std() > 10  # a face
    # Published when the face is named, then refreshed each second for late subscribers.
    match = graph.feed(PHOTO, lambda: next((m for m in matches if m.id1 == face_id), None),
                       "a candidate match")
    assert (match.id1_type, match.id2, match.id2_type) == (
        hri_msgs.IdsMatch.FACE, EILEEN, hri_msgs.IdsMatch.PERSON)
    assert match.confidence == pytest.approx(face.similarity, abs=0.05)


def test_a_face_that_leaves_is_withdrawn(graph):
    tracked = graph.collect(hri_msgs.IdsList, "/humans/faces/tracked")
    matches = graph.collect(hri_msgs.IdsMatch, "/humans/candidate_matches")
    graph.feed(PHOTO, lambda: tracked and tracked[-1].ids, "a tracked face")
    face_id = tracked[-1].ids[0]
    empty = samples.background((640, 480))
    graph.feed(empty, lambda: any(m.id1 == face_id and m.confidence == 0.0 for m in matches),
               "the match withdrawn (confidence 0) when the face left")
    assert list(tracked[-1].ids) == []
    wait_until(lambda: graph.probe.count_publishers(f"/humans/faces/{face_id}/roi") == 0,
               what="the face's topics removed")


def test_without_the_message_packages_the_outputs_are_off_and_the_node_runs(monkeypatch):
    from face_recog_ros.ros import rep155, standard_outputs, vision_output
    monkeypatch.setattr(vision_output, "Detection2DArray", None)
    monkeypatch.setattr(vision_output, "IMPORT_ERROR", "No module named 'vision_msgs'")
    monkeypatch.setattr(rep155, "IdsList", None)
    monkeypatch.setattr(standard_outputs, "_said", set())
    g = Graph(Parameter("publish_rep155", value=True))
    try:
        assert g.node.state_label == "active"
        said = {output for _, output in standard_outputs._said}
        assert said == {"~/detections", "REP-155 output"}  # each logged once
        # This node's own publishers: the domain (the worktree's, shared by the whole suite)
        # may hold another test's node of the same name.
        assert f"{NODE}/detections" not in {p.topic_name for p in g.node.publishers}
        faces = g.collect(FaceArray, f"{NODE}/faces")
        g.feed(PHOTO, lambda: faces, "~/faces still published")
    finally:
        g.close()
