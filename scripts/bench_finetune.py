"""Does fine-tuning reach a held-out PSNR in fewer steps than training from scratch? On the demo.

    python scripts/bench_finetune.py                               # the demo config: 1500 steps each
    python scripts/bench_finetune.py --steps 600 --eval-every 100 --source-steps 1500
    python scripts/bench_finetune.py --steps 4 --eval-every 2 --source-steps 4 --n-train 8 --n-test 4   # a check

The demo's data (``cyclestyle/demo/data.py``) renders its paintings with a known renderer, so every
held-out photo has its true painting and a translator's held-out PSNR is exact. This script

1. builds the demo dataset (``--root``; the demo's painting style), and beside it under ``--out``
   the same photos with their paintings rendered in ANOTHER style (``OTHER_STYLE``: cool,
   desaturated, broad bands and heavy outlines), the B images re-rendered from the photo, box and
   flip that the dataset's manifest records, so that only the style differs;
2. trains a CycleGAN on the other style for ``--source-steps`` steps (the source run);
3. trains on the demo's own style for ``--steps`` steps twice, from scratch and with
   ``--init-from`` the source run, with the same config, seed and schedule (fresh optimisers
   and learning rate for both), evaluating the held-out A→B PSNR every ``--eval-every`` steps;
4. prints the PSNR of both at every evaluated step (step 0: doing nothing, and the source run's
   generator, which is where the fine-tuned run starts), and at which step each first reaches the
   scratch run's final PSNR. ``--out/result.json`` holds the same figures.

Every run trains in its own process, its output in ``RUN/train.log``; runs whose folder is there
already are reused unless ``--fresh``. On a loaded machine the wall times say little; the steps
are the comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.demo.data import MANIFEST, TRUTH_DIR, PaintingStyle, ensure_demo_dataset, load_photo, \
    render_painting  # noqa: E402
from cyclestyle.evaluation.metrics import psnr  # noqa: E402
from cyclestyle.inference.run import open_run  # noqa: E402

# What the source run learns: cool, desaturated, broad bands, heavy outlines, no relief; unlike the
# demo's style (``DEFAULT_STYLE``: warm, saturated, fine bands, light outlines, a paint relief).
OTHER_STYLE = PaintingStyle(radius=3, sharpness=8.0, levels=22.0, band_softness=0.15, chroma_gain=0.6,
                            warm_shift=-14.0, edge_threshold=0.04, edge_width=0.08, edge_strength=0.75, relief=0.0)
METRIC = "AtoB/psnr"


def restyle(root: Path, other: Path, style: PaintingStyle) -> Path:
    """``other``: ``root``'s photos (trainA, testA) and its B paintings and true paintings rendered
    again from their photos in ``style`` (the manifest says which crop of which photograph each is)."""
    manifest = json.loads((root / MANIFEST).read_text())
    size = manifest["arguments"]["size"]
    if (other / MANIFEST).is_file() and json.loads((other / MANIFEST).read_text()) == {**manifest, "restyled": True}:
        return other
    shutil.rmtree(other, ignore_errors=True)
    photos: dict[str, Image.Image] = {}
    for image in manifest["images"]:
        split, name = image["file"].split("/")
        (other / split).mkdir(parents=True, exist_ok=True)
        if not split.endswith("B"):
            shutil.copyfile(root / image["file"], other / image["file"])
        if split == "trainA":
            continue
        photo = photos.setdefault(image["photo"], load_photo(image["photo"]))
        crop = photo.resize((size, size), Image.Resampling.LANCZOS, box=tuple(image["box"]))
        if image["flip"]:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        target = other / image["file"] if split.endswith("B") else other / TRUTH_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        render_painting(crop, style).save(target)
    (other / MANIFEST).write_text(json.dumps({**manifest, "restyled": True}))
    return other


def train_run(args: argparse.Namespace, out: Path, root: Path, steps: int, *extra: str) -> list[dict]:
    """One training run in its own process; its held-out evaluations (``{"step", "eval"}``)."""
    if not (out / "log.jsonl").exists() or args.fresh:
        shutil.rmtree(out, ignore_errors=True)
        overrides = [f"data.root={root}", f"eval.paired_truth={root / TRUTH_DIR}", f"output_dir={out}",
                     f"train.max_steps={steps}", f"eval.every={args.eval_every}", f"eval.metric={METRIC}",
                     f"train.checkpoint_every={steps}", "train.keep_checkpoints=1", "log.with=none", *args.overrides]
        command = [sys.executable, "-m", "cyclestyle", "train", "--config", str(args.config),
                   *sum([["--set", o] for o in overrides], []), *extra]
        out.mkdir(parents=True, exist_ok=True)
        with (out / "train.log").open("w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        if done.returncode != 0:
            lines = [line for line in (out / "train.log").read_text().replace("\r", "\n").splitlines()
                     if line.strip() and not line.startswith("train:")]
            sys.exit(f"bench_finetune: training {out} failed: {lines[-1] if lines else done.returncode}")
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in records if "eval" in r]


def held_out_psnr(root: Path, translate) -> float:
    """The mean A→B PSNR of ``translate`` (PIL → PIL) over ``root``'s held-out photos."""
    scores = []
    for photo in sorted((root / "testA").glob("*.png")):
        truth = np.asarray(Image.open(root / TRUTH_DIR / photo.name).convert("RGB"), dtype=np.float32) / 255
        out = np.asarray(translate(Image.open(photo).convert("RGB")), dtype=np.float32) / 255
        scores.append(psnr(*(torch.from_numpy(a).permute(2, 0, 1)[None] for a in (out, truth))))
    return float(np.mean(scores))


def first_reaching(evals: dict[int, float], target: float) -> int | None:
    return next((step for step, value in sorted(evals.items()) if value >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo", help="the demo dataset (built if absent)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_finetune")
    parser.add_argument("--steps", type=int, default=1500, help="steps of the scratch and the fine-tuned runs")
    parser.add_argument("--source-steps", type=int, default=1500, help="steps of the run on the other style")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between held-out evaluations")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--fresh", action="store_true", help="retrain runs whose folder is already there")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    root = ensure_demo_dataset(args.root, size=args.size, n_train=args.n_train, n_test=args.n_test)
    other = restyle(root, args.out / "other-style-data", OTHER_STYLE)
    print(f"{args.config}: source {args.source_steps} steps on another style; {args.steps} steps from scratch "
          f"and fine-tuned; held-out {METRIC} every {args.eval_every} steps {' '.join(args.overrides)}", flush=True)
    source = args.out / "source"
    train_run(args, source, other, args.source_steps)
    runs = {"scratch": train_run(args, args.out / "scratch", root, args.steps),
            "fine-tuned": train_run(args, args.out / "fine-tuned", root, args.steps, "--init-from", str(source))}
    evals = {name: {r["step"]: r["eval"][METRIC] for r in records} for name, records in runs.items()}
    # Where the fine-tuned run starts: the source run's generator, on the demo's own style.
    evals["fine-tuned"][0] = held_out_psnr(root, lambda image: open_run(source).translate(image, device="cpu"))
    report(args, evals, held_out_psnr(root, lambda image: image))


def report(args: argparse.Namespace, evals: dict[str, dict[int, float]], nothing: float) -> None:
    """The table, which step each run first reaches the scratch run's final PSNR, and result.json."""
    print(f"held-out {METRIC} of doing nothing (the photo as its painting): {nothing:.2f} dB")
    print(f"{'step':>6s} {'scratch':>9s} {'fine-tuned':>10s}   ({METRIC}, dB; fine-tuned step 0: the source run)")
    for step in sorted(evals["scratch"].keys() | evals["fine-tuned"].keys()):
        row = [evals[name].get(step) for name in ("scratch", "fine-tuned")]
        print(f"{step:6d} " + " ".join(f"{v:>9.2f} " if v is not None else f"{'-':>9s} " for v in row))
    target = evals["scratch"][max(evals["scratch"])]
    reached = {name: first_reaching({s: v for s, v in e.items() if s > 0}, target) for name, e in evals.items()}
    verdict = (f"fine-tuned reaches the scratch run's final {target:.2f} dB at step {reached['fine-tuned']}, "
               f"scratch at step {reached['scratch']}" if reached["fine-tuned"] is not None else
               f"fine-tuned does not reach the scratch run's final {target:.2f} dB within {args.steps} steps")
    print(verdict)
    result = {"metric": METRIC, "doing_nothing": nothing, "steps": args.steps, "source_steps": args.source_steps, "overrides": args.overrides,
              "evals": {name: {str(s): v for s, v in sorted(e.items())} for name, e in evals.items()},
              "target": target, "first_reaching": reached, "verdict": verdict}
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
