#!/usr/bin/env bash
# All set-up, then the whole test suite. This is the README's test command, and CI runs exactly it.
# Any pytest failure, including exit code 5 (no tests collected), fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -q "$@"
