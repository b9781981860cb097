"""Fast feed-forward style transfer against Gatys's optimisation, and the style network's training speed.

    python scripts/bench_style.py                          # everything, 512 px, each part in its own process
    python scripts/bench_style.py --part forward           # the style network alone: eager and torch.compile
    python scripts/bench_style.py --part gatys --gatys-evals 20   # fewer evaluations, scaled to 300
    python scripts/bench_style.py --part train --train-steps 8

Parts (figures printed, nothing asserted):
  forward  seconds per 512×512 image through Johnson et al.'s network as ``style-train`` builds it
           (ngf 32, five residual blocks), eager and under ``torch.compile`` (the compile time is
           printed apart); median over --repeats runs after a warm-up, inference mode.
  gatys    seconds per 512×512 image of ``cyclestyle gatys`` with 300 L-BFGS loss evaluations
           (single scale, the same VGG weights source as the style network's losses: random unless
           the ImageNet files are cached), measured over --gatys-evals evaluations and scaled to
           300 per evaluation when fewer are run (the output says so); then the ratio to the
           network's eager and compiled times.
  train    the real training loop (``cyclestyle style-train``'s config, the paper's 256 px crops,
           batch 4) on synthetic photos: seconds per step (median after --warmup steps), images per
           second, and the process's peak resident memory (peak CUDA allocation on a GPU).
Each part runs in a process of its own under ``--part all``, so each peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.training.configure import load_config  # noqa: E402
from cyclestyle.devices import default_device  # noqa: E402
from cyclestyle.models import GENERATORS  # noqa: E402
from cyclestyle.style import gatys  # noqa: E402
from cyclestyle.style.vgg import imagenet_weights_path  # noqa: E402

GATYS_EVALS = 300  # what the comparison is stated for


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def vgg_weights(name: str) -> str:
    """The ImageNet weights when cached, else random (said in the output)."""
    return "imagenet" if imagenet_weights_path(name).is_file() else "random"


def bench_forward(args, device: torch.device) -> dict:
    net = GENERATORS.get("johnson").build(3, 3, {"ngf": 32, "n_blocks": 5}).to(device).eval()
    x = torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1
    result = {}
    with torch.inference_mode():
        for name, model in (("eager", net), ("compiled", None)):
            if model is None:
                model = torch.compile(net)
                result["compile_s"] = timed(lambda: model(x), device)  # the first call compiles
            model(x)  # warm-up
            times = [timed(lambda: model(x), device) for _ in range(args.repeats)]
            result[f"{name}_s_per_image"] = statistics.median(times)
    result["peak_mib"] = peak_mib(device)
    return result


def bench_gatys(args, device: torch.device) -> dict:
    evals = min(args.gatys_evals, GATYS_EVALS)
    weights = vgg_weights("vgg19")
    cfg = gatys.GatysConfig(size=args.size, steps=evals, multiscale=False)
    vgg = gatys.load_vgg19(weights, cfg.pooling, device, cfg.layers)
    g = torch.Generator().manual_seed(0)
    content = torch.rand(3, args.size, args.size, generator=g)
    style = torch.rand(3, args.size, args.size, generator=g)
    result = gatys.stylize(content, [style], cfg, vgg, progress=False)
    n = len(result.history)
    per_eval = result.seconds / n
    return {"vgg19_weights": weights, "evaluations_run": n, "seconds_run": result.seconds,
            "s_per_evaluation": per_eval, "s_per_image_300": per_eval * GATYS_EVALS, "scaled": n < GATYS_EVALS,
            "peak_mib": peak_mib(device)}


def bench_train(args, device: torch.device) -> dict:
    from cyclestyle.demo.toy import make_toy_dataset
    from cyclestyle.training.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        root = make_toy_dataset(Path(tmp) / "data", n_train=4 * (args.train_steps + args.warmup), n_test=4,
                                size=256, seed=0)
        style = Path(tmp) / "style.png"
        gatys.save_result(torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)), style, "-",
                          gatys.GatysConfig())
        weights = vgg_weights("vgg16")
        cfg = load_config(REPO / "configs" / "fast_style.yaml", [
            f"data.root={root}", "data.format=folder", f"output_dir={Path(tmp) / 'run'}", f"style.images=[{style}]",
            f"style.vgg_weights={weights}", f"train.max_steps={args.train_steps + args.warmup}",
            "train.log_every=1", "train.checkpoint_every=100000", "data.num_workers=0", "log.with=none"])
        run = train(cfg)
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    s_per_step = statistics.median(1 / r["it_per_s"] for r in records[args.warmup:])
    return {"vgg16_weights": weights, "crop": cfg.data.crop_size, "batch_size": cfg.train.batch_size,
            "s_per_step": s_per_step, "images_per_s": cfg.train.batch_size / s_per_step,
            "steps_timed": len(records) - args.warmup, "peak_mib": peak_mib(device)}


PARTS = {"forward": bench_forward, "gatys": bench_gatys, "train": bench_train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", *PARTS], default="all")
    parser.add_argument("--size", type=int, default=512, help="image side for forward and gatys (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per mode (default 5)")
    parser.add_argument("--gatys-evals", type=int, default=GATYS_EVALS,
                        help=f"L-BFGS evaluations actually run (default {GATYS_EVALS}; fewer are scaled to it)")
    parser.add_argument("--train-steps", type=int, default=4, help="timed training steps (default 4)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first training steps (default 2)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object (used by --part all)")
    args = parser.parse_args()
    device = default_device(args.device)

    if args.part != "all":
        result = PARTS[args.part](args, device)
        print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
        return
    results = {}
    for part in PARTS:
        command = [sys.executable, __file__, *sys.argv[1:], "--part", part, "--json"]  # the last --part wins
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[part] = json.loads(out.strip().splitlines()[-1])
    report(results, args, device)


def report(r: dict, args, device: torch.device) -> None:
    f, g, t = r["forward"], r["gatys"], r["train"]
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"style network (ngf 32, 5 blocks) at {args.size}x{args.size}: eager {f['eager_s_per_image']:.3f} s/image, "
          f"torch.compile {f['compiled_s_per_image']:.3f} s/image (compiling took {f['compile_s']:.1f} s); "
          f"peak {f['peak_mib']:.0f} MiB")
    scaled = (f" (measured over {g['evaluations_run']} evaluations, {g['s_per_evaluation']:.3f} s each, scaled to "
              f"{GATYS_EVALS})") if g["scaled"] else ""
    print(f"gatys at {args.size}x{args.size}, {GATYS_EVALS} L-BFGS evaluations, VGG19 {g['vgg19_weights']}: "
          f"{g['s_per_image_300']:.1f} s/image{scaled}; peak {g['peak_mib']:.0f} MiB")
    print(f"speed-up: {g['s_per_image_300'] / f['eager_s_per_image']:.0f}x eager, "
          f"{g['s_per_image_300'] / f['compiled_s_per_image']:.0f}x compiled")
    print(f"training at {t['crop']} px, batch {t['batch_size']}, VGG16 {t['vgg16_weights']}: "
          f"{t['s_per_step']:.2f} s/step, {t['images_per_s']:.2f} images/s (median of {t['steps_timed']} steps); "
          f"peak {t['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
