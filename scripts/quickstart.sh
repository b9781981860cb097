#!/usr/bin/env bash
# All set-up, then the main job: `cyclestyle demo` on data the project builds itself. It trains a
# photo→painting CycleGAN, evaluates it against the true paintings, compares it with Gatys and
# writes runs/demo/report.html (about 10 minutes on a 2-core CPU, offline). Extra arguments go to
# the demo, e.g. `bash scripts/quickstart.sh --overwrite` to replace an earlier one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cyclestyle demo "$@"
