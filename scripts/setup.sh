#!/usr/bin/env bash
# Create ./.venv (Python 3.11) and install cyclestyle into it, with the test tools when asked:
#   bash scripts/setup.sh          # the toolkit
#   bash scripts/setup.sh test     # the toolkit and what the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
