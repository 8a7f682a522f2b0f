"""`face-recog`: the library from the command line, no ROS needed (commands: app.py).

The console script and ``python -m face_recog_ros.cli`` start here, so the native thread limits
are set before numpy loads (environment.py).
"""
from ..environment import limit_native_threads

limit_native_threads()

from .app import main  # noqa: E402  (after the thread limits: it loads numpy)

__all__ = ["main"]
