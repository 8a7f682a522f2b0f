"""Thin ROS 2 layer: nodes and message conversion around the ROS-independent core.

Every ROS process of this package (the nodes, the demo, ``python -m``) starts here, so the
native thread limits are set before numpy loads (environment.py).
"""
from ..environment import limit_native_threads

limit_native_threads()
