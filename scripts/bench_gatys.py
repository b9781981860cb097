"""Gatys style transfer: seconds to the same loss, multi-scale against single-scale, and seconds
per L-BFGS iteration.

    python scripts/bench_gatys.py                                  # 512 px, synthetic images
    python scripts/bench_gatys.py --size 256 --steps 120 --init noise
    python scripts/bench_gatys.py --content photo.jpg --style painting.jpg --vgg-weights vgg19.pth

Method. Both runs minimise the same loss at the target size: the same content and style images
resized the same way, the same VGG19, L-BFGS from the same kind of start (--init).
  single-scale  --steps loss evaluations at the target size (``--no-multiscale``), by default the
                500 of ``cyclestyle gatys``;
  multi-scale   coarse to fine from a long side of about --min-size, as ``cyclestyle gatys`` does
                by default, with up to --steps evaluations at the target size, stopped as soon
                as its loss there reaches the single-scale run's final loss.
Each evaluation is timed (from the start of the run, so multi-scale's coarse scales and the
targets of every scale are counted) and the loss curves are taken best-so-far. The common level
L* is the higher of the two final losses, which both runs reach; the figures are the seconds each
needed to reach L* and their ratio, and the same in work: evaluations weighted by their pixel
count, in evaluations at the target size. Seconds are what a user waits; work is what they would
be on an idle machine, where an evaluation's time is about proportional to its pixels (on a
shared CPU whose load changes between the two runs, the seconds are skewed, the work is not).

Without --vgg-weights, torchvision's ImageNet weights are used if they are in the torch hub
cache and a random-weight VGG19 otherwise; the output says which.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.devices import default_device  # noqa: E402
from cyclestyle.style import gatys  # noqa: E402


def synthetic_pair(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 4:3 "photo" (smooth shaded shapes on a gradient) and a square "painting" (coloured
    strokes at several scales), both 3×H×W in [0, 1] and deterministic."""
    g = torch.Generator().manual_seed(0)
    h, w = round(size * 3 / 4), size
    y, x = torch.meshgrid(torch.linspace(0, 0.75, h), torch.linspace(0, 1, w), indexing="ij")
    photo = torch.stack([0.3 + 0.5 * y, 0.5 + 0.2 * x, 0.9 - 0.5 * y])
    for _ in range(6):
        cy, cx, r = torch.rand(3, generator=g).tolist()
        cy *= 0.75
        disc = ((y - cy) ** 2 + (x - cx) ** 2 < (0.1 + 0.2 * r) ** 2).float()
        shade = 0.6 + 0.4 * (y - cy)
        photo = torch.where(disc.bool(), shade * torch.rand(3, 1, 1, generator=g), photo)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    painting = torch.zeros(3, size, size)
    for k, freq in enumerate((6, 15, 40)):
        angle = torch.rand(1, generator=g).item() * math.pi
        wave = torch.sin(2 * math.pi * freq * (x * math.cos(angle) + y * math.sin(angle)))
        painting += (0.5 / (k + 1)) * wave * torch.rand(3, 1, 1, generator=g)
    painting = painting + 0.05 * F.avg_pool2d(torch.rand(1, 3, size, size, generator=g), 3, 1, 1)[0]
    return photo.clamp(0, 1), (painting - painting.amin() + 0.1).div(painting.amax() - painting.amin() + 0.2)


def best_so_far(result: gatys.GatysResult) -> list[tuple[float, float, float]]:
    """(seconds, work, lowest loss yet) at each evaluation at the target size, where work counts
    evaluations weighted by their pixels, in evaluations at the target size."""
    last = len(result.sizes) - 1
    full = result.sizes[-1][0] * result.sizes[-1][1]
    curve, best, work = [], math.inf, 0.0
    for record in result.history:
        work += record["size"][0] * record["size"][1] / full
        if record["scale"] == last:
            best = min(best, record["total"])
            curve.append((record["seconds"], work, best))
    return curve


def reached(curve: list[tuple[float, float, float]], level: float) -> tuple[float, float]:
    """(seconds, work) when the curve first reaches ``level``."""
    return next((seconds, work) for seconds, work, loss in curve if loss <= level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="long side of the output (default 512)")
    parser.add_argument("--steps", type=int, default=500,
                        help="evaluations at the target size, per run (default 500, as `cyclestyle gatys`)")
    parser.add_argument("--min-size", type=int, default=128, help="long side of the coarsest scale (default 128)")
    parser.add_argument("--coarse-steps", type=float, default=gatys.GatysConfig.coarse_steps,
                        help="steps of a coarser scale per step of the next finer one")
    parser.add_argument("--content", type=Path, help="content image (default: synthetic)")
    parser.add_argument("--style", type=Path, help="style image (default: synthetic)")
    parser.add_argument("--vgg-weights", help="PATH or random (default: ImageNet from the cache, else random)")
    parser.add_argument("--pooling", choices=gatys.POOLINGS, default="max")
    parser.add_argument("--init", choices=gatys.INITS, default="content", help="starting image (default content)")
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    args.device = str(default_device(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)

    weights = args.vgg_weights
    if weights is None and not gatys.imagenet_weights_path().is_file():
        weights = "random"
    vgg = gatys.load_vgg19(weights, args.pooling, args.device)
    if args.content and args.style:
        content, style = (gatys.load_uint8(p, None) for p in (args.content, args.style))
    else:
        content, style = synthetic_pair(args.size)
    cfg = gatys.GatysConfig(size=args.size, steps=args.steps, pooling=args.pooling, min_size=args.min_size,
                            coarse_steps=args.coarse_steps, init=args.init)
    # Warm-up: the first optimiser step imports torch._dynamo, the first passes allocate.
    gatys.stylize(content, [style], dataclasses.replace(cfg, size=64, steps=2, multiscale=False), vgg, progress=False)

    what = "ImageNet" if vgg.source == "imagenet" else vgg.source
    print(f"VGG19 weights: {what}" + ("  (RANDOM weights: the losses are a stand-in for real ones)"
                                       if vgg.is_random else ""))
    print(f"device {args.device}, {torch.get_num_threads()} threads, content {tuple(content.shape[-2:])} -> "
          f"{gatys.output_size(content.shape[-2], content.shape[-1], args.size)}, L-BFGS, {args.pooling} pooling, init {args.init}, "
          f"coarse steps x{args.coarse_steps} per scale")

    single = gatys.stylize(content, [style], dataclasses.replace(cfg, multiscale=False), vgg)
    single_curve = best_so_far(single)
    target = single_curve[-1][2]
    last = len(gatys.scale_sizes(content.shape[-2], content.shape[-1], cfg)) - 1
    multi = gatys.stylize(content, [style], cfg, vgg, callback=lambda r: r["scale"] == last and r["total"] <= target)
    multi_curve = best_so_far(multi)

    times = [r["seconds"] for r in single.history]
    per_eval = statistics.median(b - a for a, b in zip(times, times[1:]))
    per_iter = (times[-1] - times[0]) / max(1, single.iterations[-1] - 1)
    level = max(target, multi_curve[-1][2])
    (t_single, w_single), (t_multi, w_multi) = reached(single_curve, level), reached(multi_curve, level)

    print(f"\nsingle-scale {single.sizes[-1][1]}x{single.sizes[-1][0]}: {len(single.history)} evaluations, {single.iterations[-1]} "
          f"L-BFGS iterations, {single.seconds:.1f} s, final loss {target:.5g}")
    print(f"  {per_eval:.3f} s per evaluation (median), {per_iter:.3f} s per L-BFGS iteration")
    scales = [(size, sum(1 for r in multi.history if r["scale"] == k)) for k, size in enumerate(multi.sizes)]
    print(f"multi-scale: {' -> '.join(f'{w}x{h}:{n}' for (h, w), n in scales)} evaluations, {multi.seconds:.1f} s, "
          f"final loss {multi_curve[-1][2]:.5g}" + ("  (stopped on reaching the single-scale loss)"
                                                  if multi_curve[-1][2] <= target else ""))
    h, w = single.sizes[-1]
    print(f"\nseconds to reach loss {level:.5g} at {w}x{h}:")
    print(f"  single-scale {t_single:.1f} s   multi-scale {t_multi:.1f} s   ratio {t_single / t_multi:.2f}x")
    print(f"  the same in work (evaluations weighted by pixels, in evaluations at {w}x{h}), which a busy machine "
          f"does not skew:\n  single-scale {w_single:.1f}   multi-scale {w_multi:.1f}   ratio {w_single / w_multi:.2f}x")
    if level > target:
        print(f"  (multi-scale did not reach the single-scale final loss {target:.5g} within --steps "
              f"{args.steps} at the target size)")


if __name__ == "__main__":
    main()
