#!/usr/bin/env bash
# All set-up, then the whole test suite on every core. This is the README's test command, and CI
# runs exactly it. Any pytest failure, including exit code 5 (no tests collected), fails this script.
#   bash scripts/test.sh                  # everything, one pytest-xdist worker per CPU
#   bash scripts/test.sh --quick          # the unit-level tests only (about a minute)
#   bash scripts/test.sh [--quick] ARGS   # ARGS go to pytest: -k NAME, tests/test_config.py, -n 0, -x ...
#
# --quick is -m "not slow": it leaves out the tests marked `slow`, which train end to end, launch
# `cyclestyle`, torchrun or accelerate in subprocesses, or export and check ONNX files: 98% of
# the suite's time (serial, on main) for 187 of its 404 tests. A module of them says so in one line at its top
# (`pytestmark = pytest.mark.slow`), a lone one in a module of unit tests has `@pytest.mark.slow`,
# and tests/conftest.py marks every test that asks for a training fixture (tiny_config,
# tiny_overrides) wherever it lives. What is left (config, losses, models, registries, metrics,
# tiling, data, the official weights' conversion ...) checks each piece alone, in about half a minute
# on 2 CPUs; the whole suite, which checks how the pieces work together, is what CI and a finished
# change run. A new module is quick until marked: put an end-to-end test in a slow module or mark it.
#
# Workers: -n auto is one per CPU of this process's affinity (PYTEST_XDIST_AUTO_NUM_WORKERS
# overrides it); tests/conftest.py gives each worker's torch, and the runs it launches, its share of
# the CPUs (1 thread each on 2 CPUs), so the workers do not oversubscribe them. --dist loadfile
# keeps each module on one worker: the module-scoped fixtures (a demo, a trained run) are built once,
# not once per worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
args=(-n auto --dist loadfile)
if [ "${1:-}" = "--quick" ]; then
  shift
  args+=(-m "not slow")
fi
exec .venv/bin/python -m pytest -q "${args[@]}" "$@"
