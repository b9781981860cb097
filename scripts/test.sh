#!/usr/bin/env bash
# All set-up, then the whole test suite on every core. This is the README's test command, and CI
# runs exactly it. Any pytest failure, including exit code 5 (no tests collected), fails this script.
#   bash scripts/test.sh                  # everything, one pytest-xdist worker per CPU
#   bash scripts/test.sh ARGS             # ARGS go to pytest: -k NAME, tests/test_config.py, -n 0, -x ...
#
# Workers: -n auto is one per CPU of this process's affinity (PYTEST_XDIST_AUTO_NUM_WORKERS
# overrides it); tests/conftest.py gives each worker's torch, and the runs it launches, its share of
# the CPUs (1 thread each on 2 CPUs), so the workers do not oversubscribe them. --dist loadfile
# keeps each module on one worker: the module-scoped fixtures (a demo, a trained run) are built once,
# not once per worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -q -n auto --dist loadfile "$@"
