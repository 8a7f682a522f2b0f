"""face_recog_ros: real-time face recognition for robots, usable with or without ROS.

    from face_recog_ros import FaceRecognizer, RecognizerConfig, load_image

    config = RecognizerConfig()            # or RecognizerConfig.from_yaml("config/face_recognition.yaml")
    config.gallery.path = "gallery.npz"   # "" keeps the gallery in memory
    recognizer = FaceRecognizer(config)
    recognizer.enroll("alice", [load_image("alice1.jpg"), load_image("alice2.jpg")])
    for face in recognizer.process(load_image("group.jpg")):
        print(face.label, round(face.similarity, 2), face.detection.box)

For video, `StreamRecognizer(recognizer).process(frame, stamp)` adds face tracks, labels
voted over time and appeared/identified/left events. Images are RGB uint8 arrays.
"""
try:
    from .config import RecognizerConfig
    from .evaluation import load_rgb as load_image
    from .pipeline import EnrollError, EnrollResult, FaceRecognizer
    from .stream import StreamRecognizer
    from .types import UNKNOWN, Detection, Face
except ModuleNotFoundError as missing:  # e.g. a plain `pip install` without the [standalone] extra
    from .dependencies import install_hint
    raise ModuleNotFoundError(install_hint(missing.name or ""), name=missing.name) from missing

__all__ = ["Detection", "EnrollError", "EnrollResult", "Face", "FaceRecognizer", "RecognizerConfig",
           "StreamRecognizer", "UNKNOWN", "load_image"]
