"""Training speed, memory and loss traces of the real training loop, one row per speed mode.

    python scripts/bench_train.py --size 128                      # CPU: fp32, and bf16 where the CPU has it
    python scripts/bench_train.py --size 128 --compile            # ... and each compiled
    python scripts/bench_train.py --device cuda --size 256 --batch-sizes 1 4 16 --trace-steps 200
    python scripts/bench_train.py --size 64 --set model.ngf=8 --set model.n_blocks=3 --modes fp32
    python scripts/bench_train.py --size 128 --set method=cut     # another training method

Modes (``--modes``; the default is every mode the device can run):

fp32         the reference step: fp32, eager, NCHW (PyTorch's defaults, TF32 convolutions on a GPU)
bf16         bf16 autocast (train.mixed_precision=bf16)
bf16+cl      bf16 and channels_last (CUDA only)
bf16+cl+compile   and torch.compile (train.compile=default)
bf16+cl+graphs    and CUDA graphs (train.compile=reduce-overhead)
fp32+compile, bf16+compile   on a CPU, with --compile

For each mode and batch size, in a process of its own (so the peak memory is its own), the
real loop trains ``--warmup`` + ``--steps`` steps on synthetic data built on the fly: seconds
per step (median of the timed steps), images per second (A and B images), peak memory (CUDA
allocated on a GPU, the process's resident set on a CPU) and the first step's extra seconds
(compilation). With ``--trace-steps N`` each mode then trains N steps at batch 1 on a fixed seed,
and the loss trace is compared with fp32's: the mean of each loss term over the last quarter,
and the largest gap between the 20-step moving averages of the summed generator loss. fp32 on
another seed is traced too: the gap between two fp32 runs is the spread a mode's gap is read against.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.training.configure import load_config  # noqa: E402
from cyclestyle.demo.toy import make_toy_dataset  # noqa: E402
from cyclestyle.training.loop import train  # noqa: E402
from cyclestyle.training.speed import bf16_in_hardware  # noqa: E402

MODES = {
    "fp32": ["train.mixed_precision=no"],
    "bf16": ["train.mixed_precision=bf16"],
    "bf16+cl": ["train.mixed_precision=bf16", "train.channels_last=true"],
    "bf16+cl+compile": ["train.mixed_precision=bf16", "train.channels_last=true", "train.compile=default"],
    "bf16+cl+graphs": ["train.mixed_precision=bf16", "train.channels_last=true", "train.compile=reduce-overhead"],
    "fp32+compile": ["train.mixed_precision=no", "train.compile=default"],
    "bf16+compile": ["train.mixed_precision=bf16", "train.compile=default"],
}


def default_modes(device: str, compile_too: bool) -> list[str]:
    if device == "cuda":
        return ["fp32", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+graphs"]
    modes = ["fp32"] + (["bf16"] if bf16_in_hardware("cpu") else [])
    return modes + ([f"{m}+compile" for m in modes] if compile_too else [])


def run_one(args: argparse.Namespace, mode: str, batch: int, steps: int, seed: int = 0) -> dict:
    """Train in this process; the figures of one row and the per-step losses."""
    with tempfile.TemporaryDirectory() as tmp:
        root = make_toy_dataset(Path(tmp) / "data", n_train=16, n_test=1, size=args.size)
        cfg = load_config(None, [
            f"data.root={root}", f"output_dir={Path(tmp) / 'run'}", "data.preprocess=crop",
            f"data.crop_size={args.size}", f"data.load_size={args.size}", "data.num_workers=1",
            f"train.batch_size={batch}", f"train.max_steps={steps}", f"seed={seed}",
            "train.log_every=1", "log.with=none", f"train.checkpoint_every={10**9}", *MODES[mode], *args.overrides])
        run = train(cfg)
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    records = [r for r in records if "it_per_s" in r]
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"seconds": [1.0 / r["it_per_s"] for r in records], "peak_gib": peak,
            "losses": [{k: v for k, v in r.items() if k not in ("step", "epoch", "lr", "it_per_s")} for r in records]}


def in_child(args: argparse.Namespace, mode: str, batch: int, steps: int, seed: int = 0) -> dict:
    """``run_one`` in a fresh process: each row's peak memory is its own."""
    command = [sys.executable, __file__, "--child", mode, str(batch), str(steps), "--size", str(args.size),
               "--seed", str(seed), *sum([["--set", o] for o in args.overrides], [])]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed_row(args: argparse.Namespace, mode: str, batch: int) -> str:
    result = in_child(args, mode, batch, args.warmup + args.steps)
    if "error" in result:
        return f"{mode:17s} {batch:5d}  failed: {result['error']}"
    timed = result["seconds"][args.warmup:]
    sec = statistics.median(timed)
    first_extra = result["seconds"][0] - sec
    return (f"{mode:17s} {batch:5d} {sec:9.3f} {2 * batch / sec:9.2f} {result['peak_gib']:9.2f} "
            f"{first_extra:10.1f}")


def moving_average(values: list[float], window: int = 20) -> list[float]:
    return [statistics.fmean(values[max(0, i - window + 1):i + 1]) for i in range(len(values))]


def trace_rows(args: argparse.Namespace, modes: list[str]) -> None:
    """Each mode's loss trace on the same seed against fp32's."""
    print(f"\nloss traces: {args.trace_steps} steps at batch 1, seed 0 "
          f"(mean of each term over the last {args.trace_steps // 4} steps; gap: largest |difference| of the "
          "20-step moving averages of the summed generator loss, relative to fp32's mean)")
    traces = {m: in_child(args, m, 1, args.trace_steps) for m in dict.fromkeys(["fp32", *modes])}
    traces["fp32, seed 1"] = in_child(args, "fp32", 1, args.trace_steps, seed=1)  # the run-to-run spread
    reference = traces["fp32"]
    if "error" in reference:
        print(f"  fp32 failed: {reference['error']}")
        return
    generator_terms = [k for k in reference["losses"][0] if not k.startswith("D_")]

    def summed(trace: dict) -> list[float]:
        return [sum(step[k] for k in generator_terms) for step in trace["losses"]]

    ref_avg, quarter = moving_average(summed(reference)), args.trace_steps // 4
    for mode, trace in traces.items():
        if "error" in trace:
            print(f"  {mode:17s} failed: {trace['error']}")
            continue
        means = {k: statistics.fmean(step[k] for step in trace["losses"][-quarter:]) for k in trace["losses"][0]}
        gap = max(abs(a - b) for a, b in zip(moving_average(summed(trace)), ref_avg)) / statistics.fmean(ref_avg)
        terms = "  ".join(f"{k} {v:.3f}" for k, v in means.items())
        print(f"  {mode:17s} gap {gap:6.1%}   {terms}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels (images are built at this size)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation happens here)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), help="default: every mode the device runs")
    parser.add_argument("--compile", action="store_true", help="on a CPU, add the compiled modes")
    parser.add_argument("--trace-steps", type=int, default=0, help="then a loss trace of this many steps per mode")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "BATCH", "STEPS"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        mode, batch, steps = args.child
        print(json.dumps(run_one(args, mode, int(batch), int(steps), args.seed)))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    modes = args.modes or default_modes(args.device, args.compile)
    print(f"device {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}  size {args.size}px  "
          f"threads {torch.get_num_threads()}  torch {torch.__version__}  {' '.join(args.overrides)}")
    print(f"{'mode':17s} {'batch':>5s} {'s/step':>9s} {'images/s':>9s} {'peak GiB':>9s} {'1st step +s':>10s}")
    for mode in modes:
        for batch in args.batch_sizes:
            print(speed_row(args, mode, batch), flush=True)
    if args.trace_steps:
        trace_rows(args, modes)


if __name__ == "__main__":
    main()
