"""The recognition core, one module per stage: detection -> alignment -> embedding -> matching.

`recognizer.FaceRecognizer` runs the stages on a frame or a photo and enrols faces into the
gallery. Nothing here knows about tracking, files of recorded media, the command line or ROS.
"""
