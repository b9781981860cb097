"""Flicker of a video translation, plain and with ``--stable``: a still noisy scene, a slow pan, a moving object.

    python scripts/bench_flicker.py                                  # runs/demo/run, or a short demo training
    python scripts/bench_flicker.py --weights runs/demo/run --weights runs/other --direction AtoB
    python scripts/bench_flicker.py --weights runs/mine --photo holiday.jpg --frames 48 --smoothing 0.5 0.9

The figure (``cyclestyle.inference.temporal.flicker``): the mean absolute change between
consecutive output frames divided by that between the input frames, on the 8-bit frames. 1 means
the translation moves as much as its input; more is flicker the translator adds.

Scenes, cut from a real photograph (``--photo``; default scikit-image's bundled ``coffee.png``,
which the demo's dataset is also made of), ``--width`` × ``--height`` pixels, ``--frames`` frames:

still   the same crop in every frame with sensor-like noise drawn anew per frame: Gaussian, variance
        ``--shot`` · level + ``--read``² (shot noise grows with the signal, read noise does not;
        levels in 8-bit units), rounded and clipped to 8 bits as a camera writes them.
pan     a slow pan: the crop moves ``--speed`` pixels a frame to the right across the photograph.
object  the crop without noise, still, with a dark square (a quarter of its height, at the bottom)
        crossing it at ``--object-speed`` pixels a frame: everything else stands still. Besides the
        flicker, the row "object: far rows" gives the mean |change| in 8-bit levels between
        consecutive output frames over the rows farther from the square than the generator's
        receptive radius (``tiling.receptive_radius``). No input pixel these output pixels see
        changes; with statistics held fixed they could not change at all. What moves them is
        instance norm's per-frame statistics alone.

Each translator's frames go through the generator in batches of 4 (as ``translate`` batches a
clip's frames) plainly and through ``stable_generator`` (``--stable``) for each ``--smoothing``.
The table also gives how far the stable translation is from the plain one (mean |difference| in
8-bit levels): what the smoothing costs in faithfulness to the per-frame translation.

Without ``--weights`` the demo's CycleGAN (``runs/demo/run``, from ``cyclestyle demo``) is used; if
there is none, ``configs/demo.yaml`` is trained for ``--train-steps`` steps on the demo's dataset
(built offline into ``--work``) first, with ``--train-set`` overrides (e.g. ``model.norm=instance``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", action="append", help="a run, checkpoint or generator file (repeatable)")
    p.add_argument("--direction", default=None, help="AtoB or BtoA (default: AtoB, or the run's only one)")
    p.add_argument("--photo", type=Path, help="the photograph the scenes are cut from (default: skimage's coffee)")
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--speed", type=float, default=1.0, help="pan: pixels a frame (default 1)")
    p.add_argument("--object-speed", type=int, default=4, help="object: pixels a frame (default 4)")
    p.add_argument("--shot", type=float, default=0.1, help="still: shot-noise variance per 8-bit level (default 0.1)")
    p.add_argument("--read", type=float, default=2.0, help="still: read-noise sigma in 8-bit levels (default 2)")
    p.add_argument("--smoothing", type=float, nargs="+", default=[0.9], help="--stable-smoothing values (default 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "bench_flicker",
                   help="where a missing demo translator is trained (default runs/bench_flicker)")
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for that training (repeatable)")
    return p.parse_args()


# --------------------------------------------------------------------------------------------
# Scenes: T×H×W×3 float arrays of 8-bit levels


def load_photograph(path: Path | None) -> np.ndarray:
    from PIL import Image

    from cyclestyle.demo.data import load_photo

    img = load_photo("coffee.png") if path is None else Image.open(path).convert("RGB")
    return np.asarray(img, dtype=np.float64)


def still_noisy(photo: np.ndarray, frames: int, height: int, width: int, shot: float, read: float,
                rng: np.random.Generator) -> np.ndarray:
    """One crop, with shot and read noise drawn anew for every frame, rounded to 8 bits."""
    top, left = (photo.shape[0] - height) // 2, (photo.shape[1] - width) // 2
    crop = photo[top : top + height, left : left + width]
    sigma = np.sqrt(shot * crop + read**2)
    return np.stack([np.clip(np.round(crop + sigma * rng.standard_normal(crop.shape)), 0, 255)
                     for _ in range(frames)])


def slow_pan(photo: np.ndarray, frames: int, height: int, width: int, speed: float) -> np.ndarray:
    """A window moving ``speed`` px a frame to the right (bilinear between pixels), rounded to 8 bits."""
    if width + speed * (frames - 1) + 1 > photo.shape[1] or height > photo.shape[0]:
        raise SystemExit(f"the photograph ({photo.shape[1]}x{photo.shape[0]}) is too small for a {width}x{height} "
                         f"pan of {frames} frames at {speed} px a frame")
    top = (photo.shape[0] - height) // 2
    out = []
    for t in range(frames):
        x = speed * t
        i, f = int(x), x - int(x)
        a = photo[top : top + height, i : i + width]
        b = photo[top : top + height, i + 1 : i + 1 + width]
        out.append(np.round((1 - f) * a + f * b))
    return np.stack(out)


def moving_object(photo: np.ndarray, frames: int, height: int, width: int, speed: int) -> tuple[np.ndarray, int]:
    """The still crop with a dark square crossing it left to right near the bottom; and the
    first row the square covers."""
    crop = still_noisy(photo, 1, height, width, 0.0, 0.0, np.random.default_rng(0))[0]
    side = height // 4
    top = height - side - 4
    out = []
    for t in range(frames):
        frame = crop.copy()
        x = speed * t - side
        frame[top : top + side, max(0, x) : max(0, x + side)] = 16.0
        out.append(frame)
    return np.stack(out), top


# --------------------------------------------------------------------------------------------
# Translating and measuring


def translate_frames(generator, frames: np.ndarray, channels: int) -> np.ndarray:
    """The 8-bit translation of every frame, in batches of 4 through ``translate_tensor``."""
    import torch

    from cyclestyle.inference.translate import translate_tensor

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    if channels == 1:
        x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:])
    with torch.inference_mode():
        y = torch.cat([translate_tensor(generator, batch) for batch in x.split(4)])
    return y.clamp(-1, 1).add(1).mul(127.5).round().permute(0, 2, 3, 1).numpy().astype(np.float64)


def background_change(frames: np.ndarray, rows: slice) -> float:
    """Mean |change| between consecutive frames over ``rows``, in 8-bit levels."""
    return float(np.abs(np.diff(frames[:, rows], axis=0)).mean())


def measure(run, direction: str, scenes: dict[str, tuple[np.ndarray, int | None]], smoothings: list[float]
            ) -> list[tuple]:
    """Rows (scene, plain figure, then per smoothing: stable figure, mean |stable − plain|)."""
    import torch

    from cyclestyle.inference.temporal import TemporalInstanceNorm2d, flicker, stable_generator
    from cyclestyle.inference.tiling import receptive_radius

    generator = run.generator(direction, "cpu")
    channels = run.in_channels(direction)
    t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    rows = []
    for scene, (frames, object_top) in scenes.items():
        outputs = {"plain": translate_frames(generator, frames, channels)}
        for a in smoothings:
            stable = stable_generator(generator, a)
            has_norms = any(isinstance(m, TemporalInstanceNorm2d) for m in stable.modules())
            # without per-image instance norm there is nothing to smooth: the plain translation
            outputs[a] = translate_frames(stable, frames, channels) if has_norms else outputs["plain"]
        figures = [(scene, lambda y: flicker(t(frames), t(y)))]
        if object_top is not None:
            far = slice(0, object_top - receptive_radius(generator))
            if far.stop > 0:
                figures.append((f"{scene}: far rows ({far.stop}), levels", lambda y: background_change(y, far)))
        for name, figure in figures:
            row = [name, figure(outputs["plain"])]
            for a in smoothings:
                row += [figure(outputs[a]), float(np.abs(outputs[a] - outputs["plain"]).mean())]
            rows.append(tuple(row))
    return rows


def default_weights(args: argparse.Namespace) -> list[str]:
    demo = REPO / "runs" / "demo" / "run"
    if (demo / "config.yaml").is_file():
        return [str(demo)]
    run = args.work / "run"
    if not (run / "config.yaml").is_file():
        from cyclestyle.demo.data import ensure_demo_dataset

        data = ensure_demo_dataset(args.work / "data")
        print(f"no demo run at {demo}: training configs/demo.yaml for {args.train_steps} steps into {run}",
              file=sys.stderr)
        overrides = [f"data.root={data}", f"output_dir={run}", f"train.max_steps={args.train_steps}",
                     "log.with=none", f"eval.paired_truth={data / 'truth'}", *args.train_set]
        command = [sys.executable, "-m", "cyclestyle", "train", "--config", str(REPO / "configs" / "demo.yaml")]
        for o in overrides:
            command += ["--set", o]
        subprocess.run(command, check=True, cwd=REPO)
    return [str(run)]


def main() -> None:
    args = parse_args()
    import torch

    from cyclestyle.inference.run import open_run

    torch.set_num_threads(args.threads)
    photo = load_photograph(args.photo)
    rng = np.random.default_rng(args.seed)
    scenes = {"still, noisy": (still_noisy(photo, args.frames, args.height, args.width, args.shot, args.read, rng),
                               None),
              "slow pan": (slow_pan(photo, args.frames, args.height, args.width, args.speed), None),
              "object": moving_object(photo, args.frames, args.height, args.width, args.object_speed)}
    header = "| translator | scene | plain |" + "".join(f" stable {a} | stable {a} vs plain |" for a in args.smoothing)
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for weights in args.weights or default_weights(args):
        run = open_run(weights)
        direction = args.direction or ("AtoB" if "AtoB" in run.files else next(iter(run.files)))
        for scene, plain, *stable in measure(run, direction, scenes, args.smoothing):
            cells = "".join(f" {f:.3f} | {d:.2f} |" for f, d in zip(stable[::2], stable[1::2]))
            print(f"| {weights} {direction} | {scene} | {plain:.3f} |{cells}")


if __name__ == "__main__":
    main()
