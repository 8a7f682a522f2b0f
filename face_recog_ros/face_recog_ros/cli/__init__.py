"""`face-recog`: the library from the command line, no ROS needed (commands: app.py).

The console script and ``python -m face_recog_ros.cli`` start here, so the native thread limits
are set before numpy loads (environment.py).
"""
from ..environment import limit_native_threads

limit_native_threads()

try:
    from .app import main  # noqa: E402  (after the thread limits: it loads numpy)
except ModuleNotFoundError as missing:  # e.g. a pip install without the [standalone] extra
    from ..dependencies import install_hint
    raise ModuleNotFoundError(install_hint(missing.name or ""), name=missing.name) from missing

__all__ = ["main"]
