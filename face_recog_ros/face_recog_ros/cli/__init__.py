"""`face-recog`: the library from the command line, no ROS needed (commands: app.py)."""
from .app import main

__all__ = ["main"]
