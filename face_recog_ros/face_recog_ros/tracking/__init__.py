"""Faces followed across frames: tracks, names voted over time, strangers, live enrolment.

`stream.StreamRecognizer` puts them together on top of the core's FaceRecognizer.
"""
