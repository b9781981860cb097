#!/usr/bin/env bash
# All set-up, then the main job on data the project builds itself: write the synthetic toy
# dataset and train the tiny CycleGAN on it (about a minute on a 2-core CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/cyclestyle toy-data --output data/toy
.venv/bin/cyclestyle train --config configs/tiny.yaml --resume latest
