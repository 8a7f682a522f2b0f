#!/usr/bin/env bash
# face_recog_ros on aarch64 (Raspberry Pi 4/5, Jetson), checked on an x86_64 machine under qemu
# user emulation, the way a robot without ROS installs it:
#   - an arm64 Debian 12 root (Raspberry Pi OS 12's base, Python 3.11) from Debian's archive;
#   - aarch64 wheels fetched on this machine (pip in the emulated root cannot verify TLS here) and
#     installed there with pip --no-index: face_recog_ros's own wheel with its [all] extra;
#   - the ROS-free tests that matter (detection, alignment, embedding, gallery, pipeline, CLI,
#     runtime fallback), run on the emulated Cortex-A72 (Raspberry Pi 4);
#   - the real `face-recog enroll` and `identify` console scripts;
#   - embeddings against this machine's on the very same chips (int8 identical, float cosine
#     >= 0.99999) and the full pipeline, on Cortex-A72, and int8 on Cortex-A76 (Raspberry Pi 5);
#   - tflite-runtime, the fallback runtime: with numpy 2 it must fail with a clear message; with
#     numpy<2 it must agree, one chip per invoke() (a batch of 2 crashes its aarch64 build).
#
#   face_recog_ros/tools/check_aarch64.sh [--python PY]
#
# PY: this machine's Python with face_recog_ros, pip, setuptools and wheel (default: the repo's
# .venv, made by ./setup.sh install). Needs root and apt-get: installs debootstrap and qemu-user
# >= 8 (Debian 12's qemu 7.2 crashes inside ai-edge-litert 2.2+; bookworm-backports has 10.x)
# and registers qemu for aarch64 binaries (binfmt_misc) when missing.
# The root, the wheels and the root's virtual environments are cached outside the repository,
# under $FACE_RECOG_CACHE (default ~/.cache/face_recog_ros)/aarch64, each keyed by a hash of what
# makes it, so a second run only rebuilds face_recog_ros's wheel and reruns the checks.
# Exit status: 0 all checks passed; 1 a check failed; 77 this machine cannot run it (the reason
# is printed), which test_aarch64.py turns into a skip.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PKG=$(dirname "$HERE")            # face_recog_ros/ (the ROS package)
REPO=$(dirname "$PKG")
PY="$REPO/.venv/bin/python"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY=$2; shift 2 ;;
    *) echo "usage: $0 [--python PY]" >&2; exit 2 ;;
  esac
done

SUITE=bookworm                      # Debian 12: Raspberry Pi OS 12's base; Python 3.11
MIRROR=http://deb.debian.org/debian
PYVER=3.11
ROOT_PACKAGES=python3,python3-venv
# Wheel tags this root accepts (glibc 2.36); ai-edge-litert 2.x is tagged manylinux_2_27 only.
PLATFORMS=(manylinux2014_aarch64 manylinux_2_17_aarch64 manylinux_2_24_aarch64
           manylinux_2_26_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64
           manylinux_2_31_aarch64 manylinux_2_34_aarch64 manylinux_2_35_aarch64)
# tflite-runtime's last release and the last numpy 1.x (tflite-runtime is built for numpy 1.x).
TFLITE=(tflite-runtime==2.14.0)
NUMPY1=numpy==1.26.4
TESTS=(test_detection.py test_alignment.py test_embedding.py test_gallery.py test_pipeline.py
       test_cli.py test_runtime.py)
# Killing writers in a loop tests the filesystem, not the CPU; it takes minutes under emulation.
TESTS_DESELECT="not sigkill"
TEST_CPU=cortex-a72                 # Raspberry Pi 4
MORE_CPUS=(cortex-a76)              # Raspberry Pi 5

CACHE=${FACE_RECOG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/face_recog_ros}/aarch64
START=$SECONDS
say() { printf '[aarch64 %4ds] %s\n' "$((SECONDS - START))" "$*"; }
cannot() { echo "cannot run the aarch64 check here: $*" >&2; exit 77; }
fail() { echo "aarch64 check FAILED: $*" >&2; exit 1; }
hash_of() { printf '%s\n' "$@" | sha1sum | cut -c1-12; }

[ "$(uname -s)" = Linux ] || cannot "not Linux"
HOST_ARCH=$(uname -m)
case "$HOST_ARCH" in x86_64|aarch64) ;; *) cannot "host is $HOST_ARCH (needs x86_64 or aarch64)" ;; esac
[ "$(id -u)" -eq 0 ] || cannot "not root (debootstrap, chroot and binfmt_misc need root)"
command -v apt-get >/dev/null || cannot "no apt-get to install debootstrap and qemu-user"
command -v unshare >/dev/null && command -v chroot >/dev/null || cannot "no unshare/chroot"
[ -x "$PY" ] || cannot "no Python at $PY: run ./setup.sh install, or pass --python"
"$PY" -c 'import face_recog_ros' 2>/dev/null && "$PY" -c 'import setuptools, wheel' \
  && "$PY" -m pip --version >/dev/null \
  || cannot "$PY lacks face_recog_ros, pip, setuptools or wheel"

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9  # one check at a time per cache (worktrees share it)

# --- host tools -----------------------------------------------------------------------------
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -q >/dev/null; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
major_version() { "$1" --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\).*/\1/p'; }
qemu_binary() {
  local b
  for b in /usr/bin/qemu-aarch64 /usr/bin/qemu-aarch64-static; do
    if [ -x "$b" ] && [ "$(major_version "$b")" -ge 8 ] 2>/dev/null; then echo "$b"; return; fi
  done
}

ensure_qemu() {
  [ -n "$(qemu_binary)" ] && return
  say "installing qemu-user >= 8"
  [ -n "$apt_updated" ] || { apt-get update -q >/dev/null; apt_updated=1; }
  local candidate
  candidate=$(apt-cache policy qemu-user | sed -n 's/^ *Candidate: \(1:\)\{0,1\}\([0-9]*\).*/\2/p')
  if [ "${candidate:-0}" -ge 8 ] 2>/dev/null; then
    apt_install qemu-user qemu-user-binfmt
  else
    . /etc/os-release
    [ "${VERSION_CODENAME:-}" = bookworm ] \
      || cannot "this distribution's qemu-user is ${candidate:-missing}; qemu-user >= 8 is needed"
    # Debian 12's qemu 7.2 segfaults inside ai-edge-litert 2.2+; its backports carry 10.x.
    cat >/etc/apt/sources.list.d/face_recog_ros-bookworm-backports.sources <<EOF
# Added by face_recog_ros/tools/check_aarch64.sh for qemu-user >= 8 (priority 100: nothing else
# is taken from backports unless asked for).
Types: deb
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update -q >/dev/null
    apt_install -t bookworm-backports qemu-user qemu-user-binfmt
  fi
  [ -n "$(qemu_binary)" ] || fail "qemu-user >= 8 did not install"
}

# The kernel runs aarch64 ELF files through qemu (flag F: the interpreter is opened now, so the
# chroot needs no copy of it). An entry left by an older qemu is replaced. qemu-user-binfmt
# ships the entry for systemd-binfmt, which does not run in a container: it is written here.
ensure_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc entry qemu interp conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" \
    || cannot "binfmt_misc cannot be mounted (a container without that privilege?)"
  qemu=$(qemu_binary)
  entry="$dir/qemu-aarch64"
  if [ -e "$entry" ]; then
    interp=$(sed -n 's/^interpreter //p' "$entry")
    if grep -qx enabled "$entry" && grep -q '^flags:.*F' "$entry" \
       && [ "$(major_version "$(readlink -f "$interp")")" -ge 8 ] 2>/dev/null; then
      return
    fi
    echo -1 >"$entry"
  fi
  if [ -e "$conf" ] && grep -q ":[A-Z]*F[A-Z]*$" "$conf"; then
    cat "$conf" >"$dir/register"
  else
    local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$qemu:F" >"$dir/register"
  fi
  say "registered $(sed -n 's/^interpreter //p' "$entry") ($("$qemu" --version | head -n1)) for aarch64"
}

command -v debootstrap >/dev/null || { say "installing debootstrap"; apt_install debootstrap; }
if [ "$HOST_ARCH" = x86_64 ]; then
  ensure_qemu
  ensure_binfmt
fi

# --- the arm64 root (cached) ----------------------------------------------------------------
ROOT="$CACHE/root-$(hash_of root-v1 "$SUITE" "$MIRROR" "$ROOT_PACKAGES")"
if [ ! -e "$ROOT/.complete" ]; then
  say "debootstrap: arm64 $SUITE root (a few minutes, once) -> $ROOT"
  rm -rf "$ROOT.partial"
  debootstrap --arch=arm64 --variant=minbase --include="$ROOT_PACKAGES" \
    "$SUITE" "$ROOT.partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  touch "$ROOT.partial/.complete"
  mv "$ROOT.partial" "$ROOT"
fi

# --- aarch64 wheels, fetched on this machine (cached) ---------------------------------------
WORK="$CACHE/work"
rm -rf "$WORK"
mkdir -p "$WORK/dist"
# The same versions as this machine's environment, so both sides run the same code; names
# without a version here (not installed on this machine) are left to pip. requirements.txt: the
# [all] extra and pytest; standalone.txt: the [standalone] extra.
"$PY" - "$WORK" <<'EOF'
import sys
from importlib import metadata
from face_recog_ros.dependencies import ALL, STANDALONE, pip_extras

def pinned(name):
    try:
        return f"{name}=={metadata.version(name)}\n"
    except metadata.PackageNotFoundError:
        return f"{name}\n"

extras = pip_extras()
with open(f"{sys.argv[1]}/requirements.txt", "w") as f:
    f.writelines(pinned(n) for n in extras[ALL] + ["pytest"])
with open(f"{sys.argv[1]}/standalone.txt", "w") as f:
    f.writelines(pinned(n) for n in extras[STANDALONE])
EOF
WHEELS="$CACHE/wheels-$(hash_of wheels-v1 "$PYVER" "${PLATFORMS[*]}" "$(cat "$WORK/requirements.txt")" "${TFLITE[*]}" "$NUMPY1")"
if [ ! -e "$WHEELS/.complete" ]; then
  say "downloading aarch64 wheels for Python $PYVER -> $WHEELS"
  rm -rf "$WHEELS.partial"
  platform_args=()
  for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
  for reqs in "-r $WORK/requirements.txt" "${TFLITE[*]} $NUMPY1"; do
    # shellcheck disable=SC2086  # $reqs holds several arguments
    "$PY" -m pip download -q --disable-pip-version-check --dest "$WHEELS.partial" \
      --only-binary=:all: --python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" \
      "${platform_args[@]}" $reqs 2>&1 | grep -v "^WARNING: Location" >&2 \
      || true
  done
  for req in $(sed 's/==.*//' "$WORK/requirements.txt") tflite_runtime numpy; do
    ls "$WHEELS.partial" | grep -qi "^${req//-/_}-" \
      || fail "no aarch64 wheel for $req on PyPI (pip download above)"
  done
  touch "$WHEELS.partial/.complete"
  mv "$WHEELS.partial" "$WHEELS"
fi
# Caches other checkouts may still use are kept a week after their last use.
touch "$ROOT" "$WHEELS"
find "$CACHE" -maxdepth 1 \( -name 'root-*' -o -name 'wheels-*' \) -mtime +7 -exec rm -rf {} +

# --- this checkout: face_recog_ros's wheel, its tests, the reference figures ----------------
say "building face_recog_ros's wheel (from a copy, so the checkout gets no build/)"
mkdir -p "$WORK/src"
tar -C "$REPO" --exclude=__pycache__ --exclude=build --exclude='*.egg-info' \
  -cf - face_recog_ros | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
  -w "$WORK/dist" "$WORK/src/face_recog_ros" >/dev/null
WHEEL=$(cd "$WORK/dist" && ls face_recog_ros-*.whl)
# The tests read some package files (config/, models/) beside them, as in the source tree; the
# Python package itself is left out so that they import the installed wheel.
mkdir -p "$WORK/pkg"
cp -r "$PKG/test" "$PKG/config" "$PKG/models" "$WORK/pkg/"
cp "$HERE/arch_agreement.py" "$WORK/"
say "reference figures on $HOST_ARCH"
"$PY" "$HERE/arch_agreement.py" reference "$WORK/agree" 2>"$WORK/reference.log" \
  || { tail -n 20 "$WORK/reference.log" >&2; fail "the x86 reference figures failed"; }

# --- running things in the root -------------------------------------------------------------
# A private mount namespace per call: /proc, /dev, /sys, the wheels and the work folder are
# mounted for that call only and vanish with it, whatever happens.
in_root() {  # in_root CPU COMMAND...
  local cpu=$1; shift
  unshare --mount --propagation private -- /bin/sh -c '
    root=$1 wheels=$2 work=$3; shift 3
    mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" \
      && mount --rbind /sys "$root/sys" \
      && mkdir -p "$root/opt/wheels" "$root/opt/work" \
      && mount --bind "$wheels" "$root/opt/wheels" && mount -o remount,bind,ro "$root/opt/wheels" \
      && mount --bind "$work" "$root/opt/work" || exit 125
    exec chroot "$root" "$@"' sh "$ROOT" "$WHEELS" "$WORK" \
    /usr/bin/env -i QEMU_CPU="$cpu" HOME=/tmp PATH=/usr/bin:/bin LANG=C.UTF-8 \
    OPENBLAS_NUM_THREADS=1 "$@"
}

# make_venv NAME PIP_ARGS...: sets VENV to a virtual environment in the root holding PIP_ARGS
# (made once per set of wheels and kept) and this checkout's face_recog_ros wheel.
make_venv() {
  local name=$1; shift
  VENV="/opt/venv-$name-$(hash_of "$WHEELS" "$*")"
  if [ ! -e "$ROOT$VENV/.complete" ]; then
    say "root: virtual environment $name (once per set of wheels)"
    rm -rf "${ROOT:?}$VENV"
    in_root "$TEST_CPU" /usr/bin/python3 -m venv "$VENV"
    # --no-compile: byte-compiling every module of SciPy & co. under emulation takes minutes;
    # Python compiles the few it imports on first use (and keeps them).
    in_root "$TEST_CPU" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      --no-compile --no-index --find-links /opt/wheels "$@"
    touch "$ROOT$VENV/.complete"
  fi
  touch "$ROOT$VENV"
  find "$ROOT/opt" -maxdepth 1 -name 'venv-*' -mtime +7 -exec rm -rf {} +
  in_root "$TEST_CPU" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --no-index --no-deps --force-reinstall "/opt/work/dist/$WHEEL"
}

say "root: face_recog_ros[all] with ai-edge-litert"
make_venv litert -r /opt/work/requirements.txt
LITERT=$VENV
# The wheel's own metadata must resolve from aarch64 wheels alone.
in_root "$TEST_CPU" "$LITERT/bin/python" -m pip install -q --disable-pip-version-check \
  --no-index --find-links /opt/wheels "/opt/work/dist/$WHEEL[all]" \
  || fail "face_recog_ros[all] does not install from aarch64 wheels"
in_root "$TEST_CPU" "$LITERT/bin/python" -m pip check >/dev/null || fail "pip check"
versions=$(in_root "$TEST_CPU" "$LITERT/bin/python" -c '
import platform, numpy, cv2; from importlib.metadata import version as v
print(platform.machine(), "Python", platform.python_version(), "numpy", numpy.__version__,
      "opencv", cv2.__version__, "ai-edge-litert", v("ai-edge-litert"))')
say "root: $versions"

say "root: tests (${TESTS[*]}) on an emulated $TEST_CPU"
in_root "$TEST_CPU" /bin/sh -c "cd /opt/work/pkg/test && exec $LITERT/bin/python -m pytest -q \
  -p no:cacheprovider -rs -k '$TESTS_DESELECT' ${TESTS[*]}" 2>&1 | tail -n 25 \
  || fail "tests failed on aarch64"

say "root: face-recog enroll and identify (the console script)"
out=$(in_root "$TEST_CPU" /bin/sh -c "set -e; cd /tmp; g=/tmp/cli-gallery.npz; rm -f \$g
  $LITERT/bin/face-recog enroll eileen_collins /opt/work/agree/astronaut.png --gallery \$g
  $LITERT/bin/face-recog enroll grace_hopper /opt/work/agree/grace_hopper.png --gallery \$g
  $LITERT/bin/face-recog identify /opt/work/agree/scene3.png --gallery \$g --json" 2>&1) \
  || { echo "$out" >&2; fail "face-recog failed"; }
for name in eileen_collins grace_hopper; do
  grep -q "\"label\": \"$name\"" <<<"$out" || { echo "$out" >&2; fail "identify did not name $name"; }
done

# The runtimes' banner ("INFO: Created TensorFlow Lite XNNPACK delegate") is noise; errors are not.
no_banner() { grep -v '^INFO: Created TensorFlow Lite' >&2 || true; }

say "root: agreement with $HOST_ARCH on an emulated $TEST_CPU (ai-edge-litert)"
in_root "$TEST_CPU" "$LITERT/bin/python" /opt/work/arch_agreement.py compare /opt/work/agree \
  2> >(no_banner) || fail "embeddings disagree on $TEST_CPU (figures above)"
for cpu in "${MORE_CPUS[@]}"; do  # other kernels (dot-product instructions): int8 is enough
  say "root: agreement with $HOST_ARCH on an emulated $cpu (ai-edge-litert, int8)"
  in_root "$cpu" "$LITERT/bin/python" /opt/work/arch_agreement.py compare /opt/work/agree \
    --int8-only 2> >(no_banner) || fail "embeddings disagree on $cpu (figures above)"
done

say "root: tflite-runtime with numpy 2 must fail with a clear message"
# The [standalone] extra with tflite-runtime in place of ai-edge-litert (--no-deps: the OpenCV
# wheel asks for numpy>=2 but runs with 1.26; tflite-runtime needs numpy<2).
mapfile -t runtime_free < <(grep -Ev '^ai-edge-litert([=<>]|$)' "$WORK/standalone.txt")
make_venv tflite-numpy2 --no-deps "${runtime_free[@]}" "${TFLITE[@]}"
NP2=$VENV
out=$(in_root "$TEST_CPU" "$NP2/bin/face-recog" identify /opt/work/agree/scene1.png 2>&1) \
  && fail "face-recog ran with tflite-runtime under numpy 2"
echo "  $out" | tail -n 1 | cut -c1-300
grep -q 'tflite-runtime is installed but does not import.*numpy<2' <<<"$out" \
  || fail "no clear tflite-runtime/numpy message"

say "root: tflite-runtime with numpy<2"
mapfile -t runtime_free < <(grep -Ev '^(numpy|ai-edge-litert)([=<>]|$)' "$WORK/standalone.txt")
make_venv tflite --no-deps "$NUMPY1" "${runtime_free[@]}" "${TFLITE[@]}"
NP1=$VENV
in_root "$TEST_CPU" "$NP1/bin/python" /opt/work/arch_agreement.py compare /opt/work/agree \
  --int8-min-cosine 0.999 --int8-only 2> >(no_banner) \
  || fail "tflite-runtime disagrees (figures above)"
for n in 1 2; do
  if out=$(in_root "$TEST_CPU" "$NP1/bin/python" /opt/work/arch_agreement.py probe-batch "$n" 2>/dev/null); then
    say "  tflite-runtime, $n chip(s) in one invoke(): $out"
  else
    say "  tflite-runtime, $n chips in one invoke(): exit $? (why runtime.py gives it one chip per invoke())"
  fi
done

say "aarch64 check passed in $((SECONDS - START)) s"
