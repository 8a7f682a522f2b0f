"""Thin ROS 2 layer: nodes and message conversion around the ROS-independent core."""
