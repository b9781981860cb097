"""Translation speed, tiled-translation exactness and cost, and peak memory of tiled vs full frame.

    python scripts/bench_translate.py                                   # the paper's generator: slow on a CPU
    python scripts/bench_translate.py --ngf 16 --n-blocks 3 --speed-sizes 256 1024 --batch 4 \\
        --check-size 768 --mem-full 512 --mem-tiled 4096 --tile 512    # a reduced model, a few minutes on 2 cores
    python scripts/bench_translate.py --only memory --mem-tiled 2048    # one part, other sizes
    python scripts/bench_translate.py --only speed --engines eager onnxruntime   # PyTorch against the ONNX export

Three parts (``--only`` picks one):

speed    full-frame images/s on random batches at each ``--speed-sizes`` side, batch 1 and ``--batch``,
         for each ``--engines`` entry: ``eager`` (PyTorch, ``translate_tensor``), ``compiled``
         (``torch.compile`` of the generator; compilation is in the warm-up, not the figure) and
         ``onnxruntime`` (the file ``cyclestyle export --format onnx`` writes, on onnxruntime's CPU
         provider); median over ``--repeats`` timed runs after one untimed warm-up.
check    on a ``--check-size`` square image that also fits full-frame: ``tiled_translate`` with
         ``--tile`` against ``translate_tensor``: max and mean |difference| on the [0, 1] scale, the
         same for naive tiles (each normalised by its own statistics), and the time of each.
memory   peak memory of ``translate_image`` on a full-frame ``--mem-full`` square image against a
         tiled ``--mem-tiled`` square one (``--tile``): each in its own process. On a CPU the figure is
         the process's peak resident set (``ru_maxrss``: Python, torch, the model, the input and output
         PIL images and the translation); the resident set just before the translation is printed
         beside it, nothing is subtracted. On a GPU: ``torch.cuda.max_memory_allocated``.

Weights are random (``init_gain`` 0.02 as the paper's initialisation); speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(args):
    import torch

    from cyclestyle.models import ResnetGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    return ResnetGenerator(ngf=args.ngf, n_blocks=args.n_blocks).to(device).eval(), device


def rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib(device) -> tuple[float, str]:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, "peak RSS"


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_image(side: int, seed: int = 0):
    """A side×side RGB PIL image with structure at all scales, made without a full-size array."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    img = small.resize((side, side), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((side, side), 24).convert("RGB")
    return Image.blend(img, noise, 0.15)


# --------------------------------------------------------------------------------------------
# Children: one measurement per process


def engine(args, gen, device):
    """The function the speed part times: the generator eager, compiled, or exported to ONNX."""
    import torch

    from cyclestyle.inference.translate import translate_tensor

    if args.engine == "eager":
        return lambda x: translate_tensor(gen, x)
    if args.engine == "compiled":
        compiled = torch.compile(gen)
        return lambda x: compiled(x)
    import tempfile

    import onnxruntime

    from cyclestyle.export import ExportInfo
    from cyclestyle.export.onnx_format import INPUT, write_onnx

    path = Path(tempfile.mkdtemp()) / "g.onnx"
    write_onnx(gen.cpu(), path, ExportInfo("AtoB", "{}", 3, 3, gen.size_multiple))
    options = onnxruntime.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT: x.cpu().numpy()})[0]


def child_speed(args) -> dict:
    import torch

    gen, device = build(args)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    run = engine(args, gen, device)
    times = []
    with torch.inference_mode():
        for i in range(args.repeats + 1):
            sync(device)
            t = time.perf_counter()
            run(x)
            sync(device)
            if i:
                times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    peak, what = peak_mib(device)
    return {"sec": sec, "images_per_s": args.batch / sec, "peak_mib": peak, "peak_what": what}


def child_check(args) -> dict:
    import torch

    from cyclestyle.inference.tiling import plan_tiles, tiled_translate
    from cyclestyle.inference.translate import translate_tensor

    gen, device = build(args)
    img = synthetic_image(args.size, seed=1)
    from cyclestyle.data import image_to_tensor

    x = image_to_tensor(img).unsqueeze(0).to(device)

    def timed(fn):
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            result = fn()
        sync(device)
        return result, time.perf_counter() - wall, time.process_time() - cpu

    with torch.inference_mode():
        translate_tensor(gen, x[..., :64, :64])  # warm-up
    full, t_full, c_full = timed(lambda: translate_tensor(gen, x))
    tiled, t_tiled, c_tiled = timed(lambda: tiled_translate(gen, x, args.tile))
    naive, t_naive, c_naive = timed(lambda: tiled_translate(gen, x, args.tile, global_stats=False))
    plan = plan_tiles(gen, args.tile)
    d, dn = (tiled - full).abs() / 2, (naive - full).abs() / 2
    return {"t_full": t_full, "t_tiled": t_tiled, "t_naive": t_naive, "c_full": c_full, "c_tiled": c_tiled,
            "c_naive": c_naive, "max": d.max().item(),
            "mean": d.mean().item(), "naive_max": dn.max().item(), "naive_mean": dn.mean().item(),
            "tile": plan.tile, "overlap": plan.overlap, "radius": plan.radius}


def child_memory(args) -> dict:
    import torch

    from cyclestyle.inference.tiling import plan_tiles
    from cyclestyle.inference.translate import translate_image

    gen, device = build(args)
    img = synthetic_image(args.size)
    tile = args.tile if args.tile > 0 else 0
    if tile:
        plan_tiles(gen, tile)  # traces the layers (cached) before the baseline is taken
    else:
        with torch.inference_mode():
            translate_image(gen, synthetic_image(64), tile=0)  # same warm-up for the full frame
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else rss_now_mib()
    t = time.perf_counter()
    out = translate_image(gen, img, tile=tile)
    sync(device)
    sec = time.perf_counter() - t
    peak, what = peak_mib(device)
    assert out.size == img.size
    return {"sec": sec, "peak_mib": peak, "peak_what": what, "before_mib": before}


def run_child(args, part: str, **changes) -> dict:
    cmd = [sys.executable, __file__, "--child", part, "--ngf", str(args.ngf), "--n-blocks", str(args.n_blocks),
           "--device", args.device, "--repeats", str(args.repeats), "--threads", str(args.threads or 0)]
    for key, value in changes.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"child failed: {' '.join(cmd)}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ngf", type=int, default=64, help="generator width (paper: 64)")
    parser.add_argument("--n-blocks", type=int, default=9, help="residual blocks (paper: 9 at 256 px)")
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice; 1 is steadier on a shared machine)")
    parser.add_argument("--speed-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batch", type=int, default=4, help="the larger batch for the speed part (default 4)")
    parser.add_argument("--engines", nargs="+", choices=["eager", "compiled", "onnxruntime"],
                        default=["eager", "compiled", "onnxruntime"], help="what the speed part times (default all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per speed figure (default 3)")
    parser.add_argument("--check-size", type=int, default=1024, help="side of the exactness check image")
    parser.add_argument("--mem-full", type=int, default=512, help="side of the full-frame memory image")
    parser.add_argument("--mem-tiled", type=int, default=4096, help="side of the tiled memory image")
    parser.add_argument("--tile", type=int, default=512, help="tile side for the check and memory parts")
    parser.add_argument("--only", choices=["speed", "check", "memory"], help="run one part")
    parser.add_argument("--child", choices=["speed", "check", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="eager", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        from cyclestyle.devices import default_device

        args.device = str(default_device())

    if args.child:
        fn = {"speed": child_speed, "check": child_check, "memory": child_memory}[args.child]
        print(json.dumps(fn(args)))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"generator ngf {args.ngf}, {args.n_blocks} blocks, random weights; device {args.device}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.only in (None, "speed"):
        print("\nfull-frame speed")
        for size in args.speed_sizes:
            for batch in sorted({1, args.batch}):
                for name in args.engines:
                    r = run_child(args, "speed", size=size, batch=batch, engine=name)
                    print(f"  {size:5d} px  batch {batch}  {name:12s}: {r['images_per_s']:8.3f} images/s  "
                          f"({r['sec']:.3f} s per batch, {r['peak_what']} {r['peak_mib']:.0f} MiB)")
    if args.only in (None, "check"):
        r = run_child(args, "check", size=args.check_size, tile=args.tile)
        print(f"\ntiled vs full frame on a {args.check_size}x{args.check_size} image, tile {r['tile']} "
              f"(overlap {r['overlap']} = receptive radius {r['radius']} + blend)")
        print(f"  whole-image statistics: max |diff| {r['max']:.2e}, mean {r['mean']:.2e} on [0, 1] "
              f"(= {255 * r['max']:.4f} / {255 * r['mean']:.5f} of 1/255)")
        print(f"  naive tiles:            max |diff| {r['naive_max']:.2e}, mean {r['naive_mean']:.2e} "
              f"(= {255 * r['naive_max']:.1f} / {255 * r['naive_mean']:.2f} of 1/255)")
        for what, key in (("wall", "t"), ("CPU", "c")):  # CPU time: steadier on a shared machine
            full, tiled, naive = r[f"{key}_full"], r[f"{key}_tiled"], r[f"{key}_naive"]
            print(f"  {what + ' time:':10s} full frame {full:.2f} s, tiled {tiled:.2f} s ({tiled / full:.1f}x), "
                  f"naive tiles {naive:.2f} s ({naive / full:.1f}x)")
    if args.only in (None, "memory"):
        print("\npeak memory of translate_image, one process each")
        full = run_child(args, "memory", size=args.mem_full, tile=0)
        tiled = run_child(args, "memory", size=args.mem_tiled, tile=args.tile)
        for name, r in ((f"full frame {args.mem_full}x{args.mem_full}", full),
                        (f"tiled {args.mem_tiled}x{args.mem_tiled}, tile {args.tile}", tiled)):
            print(f"  {name:32s} {r['peak_what']} {r['peak_mib']:7.0f} MiB (before translating: "
                  f"{r['before_mib']:.0f} MiB), {r['sec']:.1f} s")
        print(f"  ratio tiled / full-frame peak: {tiled['peak_mib'] / full['peak_mib']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
