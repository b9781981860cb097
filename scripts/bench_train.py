"""Training speed and memory of the real training loop, on synthetic data built on the fly.

    python scripts/bench_train.py --size 128              # the paper's model (ngf 64, 9 blocks), batch 1
    python scripts/bench_train.py --size 256 --steps 5
    python scripts/bench_train.py --size 64 --set model.ngf=8 --set model.n_blocks=3

Prints seconds per iteration (median over the timed steps, after warm-up), images per second
(A and B images per step), and peak memory: the process's peak resident set on CPU, peak
allocated CUDA memory on a GPU. One configuration per process, so the peak is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.config import load_config  # noqa: E402
from cyclestyle.demo.toy import make_toy_dataset  # noqa: E402
from cyclestyle.training.loop import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels (images are built at this size)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = make_toy_dataset(Path(tmp) / "data", n_train=16, n_test=1, size=args.size)
        cfg = load_config(None, [
            f"data.root={root}", f"output_dir={Path(tmp) / 'run'}", "data.preprocess=crop",
            f"data.crop_size={args.size}", f"data.load_size={args.size}", "data.num_workers=1",
            f"train.batch_size={args.batch_size}", f"train.max_steps={args.warmup + args.steps}",
            "train.log_every=1", f"train.checkpoint_every={10**9}", *args.overrides])
        run = train(cfg)
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    timed = [1.0 / r["it_per_s"] for r in records[args.warmup:]]
    sec = statistics.median(timed)
    if torch.cuda.is_available():
        peak, where = torch.cuda.max_memory_allocated() / 2**30, "CUDA allocated"
    else:
        peak, where = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "resident"
    m = cfg.model
    print(f"size {args.size}px  batch {args.batch_size}  ngf {m.ngf}  blocks {m.n_blocks}  "
          f"threads {torch.get_num_threads()}  device {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"  {sec:.3f} s/iteration (median of {len(timed)}, min {min(timed):.3f}, max {max(timed):.3f})")
    print(f"  {2 * args.batch_size / sec:.2f} images/s (A and B)")
    print(f"  peak memory {peak:.2f} GiB ({where})")


if __name__ == "__main__":
    main()
