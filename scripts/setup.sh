#!/usr/bin/env bash
# Create ./.venv (Python 3.11) and install cyclestyle into it, with the test tools when asked:
#   bash scripts/setup.sh          # the toolkit
#   bash scripts/setup.sh test     # the toolkit, the web app's extra, and what the tests need
#
# `test` also installs the system's Chromium and its WebDriver (Debian's chromium and
# chromium-driver) when they are missing, for tests/test_app_browser.py: apt-get, as root as CI
# runs it (or through sudo). The tests never download a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  # A fresh environment takes about 6.5 GB (torch 2.14.1's x86_64 wheels bring CUDA libraries): say
  # so up front rather than leave pip to stop half-way with "No space left on device".
  free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
  if [ "${free_kb:-0}" -lt $((8 * 1024 * 1024)) ]; then
    echo "setup: $(pwd) has $((free_kb / 1024)) MB free; a new .venv needs about 6.5 GB, so 8 GB free. Free some space and run this again." >&2
    exit 1
  fi
  "$PYTHON" -m venv .venv
fi
extra=""
if [ "${1:-}" = "test" ]; then
  extra="[test,app]"
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"  # CI runs as root; a developer's machine may ask for a password
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
