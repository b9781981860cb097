#!/usr/bin/env bash
# What a CUDA machine checks of the speed paths, run from the repository root, one stage a call:
#   bash scripts/gpu_check.sh tests    # tests/test_cuda.py (skipped without a GPU): about 3 min
#   bash scripts/gpu_check.sh bench    # bench_train.py's table, 256 px, batch 1/4/16, every mode
#   bash scripts/gpu_check.sh trace    # ... and each mode's 200-step loss trace against fp32's
#   bash scripts/gpu_check.sh recipe   # bench_recipe.py: batch 1 against batch 16 with lr_scaling sqrt
# It needs torch, accelerate, pyyaml, safetensors, pillow, tqdm and pytest, and imports nothing
# else (wandb, datasets and the FID packages are imported only where they are used: not here), so
# it runs from a checkout without installing cyclestyle. Output goes to the terminal and to
# ${OUT:-runs/gpu_check}/STAGE.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
stage=${1:?"which stage: tests, bench, trace or recipe"}
out=${OUT:-runs/gpu_check}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} WANDB_MODE=disabled
python=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$python" -c "import torch, accelerate; print('torch', torch.__version__, 'accelerate', accelerate.__version__)"
  case "$stage" in
    tests) "$python" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py ;;
    bench) "$python" scripts/bench_train.py --device cuda --size 256 --batch-sizes 1 4 16 --steps 20 --warmup 5 ;;
    trace) "$python" scripts/bench_train.py --device cuda --size 256 --batch-sizes 1 --steps 20 --warmup 5 \
             --trace-steps 200 ;;
    recipe) "$python" scripts/bench_recipe.py --batch-sizes 1 16 --out "$out/recipe" \
              --set train.mixed_precision=bf16 --set train.channels_last=true ;;
    *) echo "unknown stage $stage: tests, bench, trace or recipe" >&2; exit 2 ;;
  esac
} 2>&1 | tee "$out/$stage.txt"
exit "${PIPESTATUS[0]}"
