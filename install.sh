#!/usr/bin/env bash
# Installs corrigible on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.11).
#   bash install.sh          the package, its CPU-only dependencies and headless rendering
#   bash install.sh --test   the same plus the test tools and the extras the tests exercise
#                            (`.[test]`: pytest, hypothesis, ruff, events, speech, console,
#                            bridge, ray, learned; Chromium and espeak-ng from apt; lerobot
#                            for the LeRobotDataset check)
# System packages (Mesa EGL for MuJoCo's offscreen CPU rendering) are installed with apt-get
# when missing and when apt-get can run; torch is pinned to the CPU build 2.13.0 first so
# that nothing pulls CUDA packages.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# With --test also Debian's Chromium (the web console's browser tests, driven by Playwright at
# /usr/bin/chromium; no browser is ever downloaded) and espeak-ng (synthesised test speech).
test_pkgs=""
[ "${1:-}" = "--test" ] && test_pkgs="chromium espeak-ng"
need_pkgs=""
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 $test_pkgs; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs="$need_pkgs $pkg"
done
if [ -n "$need_pkgs" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install.sh: installing system packages:$need_pkgs"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need_pkgs
fi

"$PYTHON" -m pip install --quiet --upgrade pip setuptools wheel
# CPU build of torch first; with it installed, later requirements resolve to it.
"$PYTHON" -m pip install --quiet "torch==2.13.0"
"$PYTHON" -m pip install --quiet -e ".${extras}"
if [ "${1:-}" = "--test" ]; then
  # LeRobot's own LeRobotDataset checks that recorded datasets load. lerobot 0.4.4 pins
  # torch<2.11, so it goes in without its dependencies (its dataset loader runs on torch 2.13);
  # that loader imports torchvision, whose only PyPI build for torch 2.13 is a CUDA build that
  # breaks torch imports once installed, so its wheel is unpacked into .cache/ and put on the
  # path of the test's child process only (tests/policies/learned/test_recording.py).
  "$PYTHON" -m pip install --quiet --no-deps "lerobot==0.4.4"
  tv=".cache/lerobot-torchvision"
  if [ ! -d "$tv/torchvision" ]; then
    tmp="$(mktemp -d)"
    if "$PYTHON" -m pip download --quiet --no-deps "torchvision==0.28.0" -d "$tmp"; then
      "$PYTHON" -m zipfile -e "$tmp"/torchvision-*.whl "$tv"
    else
      echo "install.sh: torchvision 0.28.0 wheel not available; the LeRobotDataset test will skip"
    fi
    rm -rf "$tmp"
  fi
fi
echo "install.sh: corrigible installed ($("$PYTHON" -c 'import corrigible; print(corrigible.__version__)'))"
