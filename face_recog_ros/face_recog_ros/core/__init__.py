"""The recognition core, one module per stage: detection -> alignment -> embedding -> matching.

Alignment is `aligner.FaceAligner` (its options, the quality checks): dlib's 5 landmarks
(`landmarks`), the head pose from them (`head_pose`) and dlib's face chip (`face_chip`), or
BlazeFace's keypoints onto a template (`alignment`). `recognizer.FaceRecognizer` runs the stages
on a frame or a photo and enrols faces into the gallery. Nothing here knows about tracking,
files of recorded media, the command line or ROS.
"""
