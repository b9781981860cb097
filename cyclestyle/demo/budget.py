"""The demo's time budget: what each stage costs on this machine, measured up front, and the
number of training steps that leaves.

``cyclestyle demo --minutes N`` must end within N minutes on the machine it runs on. Training is
the only stage whose length can be chosen, so the others are measured first (``measure_rates``:
a 20-step timing run of CycleGAN, of CUT and of pix2pix, a few held-out images through the timing
run's generators, a few Gatys steps on one held-out photo), and ``plan_demo``, a pure function of
those rates, gives training what remains: the three methods the same number of steps, with the
held-out evaluations that training does every ``eval.every`` steps counted in each step's cost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..data import FolderSource
from ..evaluation.evaluate import evaluate_translators
from ..inference.run import open_run
from ..style import gatys
from ..training.loop import train

CALIBRATION_STEPS = 20  # timed training steps that size the real run to the budget
EVAL_SAMPLE = 4  # held-out images per direction timed through the timing run's generators
GATYS_SAMPLE = 5  # Gatys steps timed on one held-out photo
MARGIN = 0.05  # of the budget, kept for what varies between the timing runs and the real ones (load, caches)
RUNS = 3  # training runs: CycleGAN, CUT, pix2pix
EVALUATED = 4  # generator-directions evaluated: CycleGAN's two, CUT's and pix2pix's A→B
REPORT_SECONDS = 10.0  # report.png, report.html, metrics.json (about 1 s on a loaded 2-core Xeon) and the
# dashboard's summary, which reopens the wandb run (seconds)


@dataclass(frozen=True)
class Rates:
    """What the demo's stages cost on this machine, in seconds, measured by ``measure_rates``."""

    cyclegan_step: float  # one CycleGAN training step (a log window's mean, evaluations left out)
    cut_step: float  # one CUT training step
    pix2pix_step: float  # one pix2pix training step (on the rendered pairs)
    run_overhead: float  # a training run's cost besides its steps (start-up, checkpoint, final files)
    eval_image: float  # one held-out image through one generator, measured and written
    gatys_start: float  # loading VGG19 for Gatys, and its first passes' set-up
    gatys_step: float  # one Gatys step (a VGG19 forward and backward pass) on one held-out photo


@dataclass(frozen=True)
class Stages:
    """What the demo will do besides training, which sets the cost of each stage."""

    planned_steps: int  # the config's train.max_steps
    eval_every: int  # the config's eval.every (0: no evaluation during training)
    eval_images: int  # held-out images per direction each of those evaluations takes
    n_test: int  # held-out images per domain: the final evaluation takes all of them
    gatys_images: int  # held-out photos the comparison stylises
    gatys_steps: int  # Gatys steps per photo


@dataclass(frozen=True)
class Plan:
    """The steps each method trains for, and the seconds each stage is expected to take."""

    steps: int
    seconds: dict[str, float]  # spent, training, evaluation, comparison, report, margin
    budget: float

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.budget

    def describe(self, rates: Rates) -> str:
        s = self.seconds
        text = (f"plan for {self.budget / 60:g} min on this machine: {s['spent']:.0f} s spent (data, timing runs); "
                f"training {self.steps} steps each ({1 / rates.cyclegan_step:.2f} CycleGAN, "
                f"{1 / rates.cut_step:.2f} CUT and {1 / rates.pix2pix_step:.2f} pix2pix steps/s, evaluations "
                f"included: {s['training']:.0f} s); "
                f"evaluation {s['evaluation']:.0f} s; comparison with Gatys {s['comparison']:.0f} s; "
                f"report {s['report']:.0f} s; margin {s['margin']:.0f} s")
        return text if self.fits else text + f": {self.total / 60:.1f} min even at 1 step, over the budget"


def plan_demo(budget: float, spent: float, rates: Rates, stages: Stages) -> Plan:
    """The most training steps (at most the config's, at least 1) for which every stage, at the
    measured ``rates``, ends within ``budget`` seconds, of which ``spent`` are gone. Pure.

    A training step costs a CycleGAN, a CUT and a pix2pix step, and each run evaluates itself
    every ``eval_every`` steps (CycleGAN both ways, CUT and pix2pix A→B); the final evaluation
    takes every held-out image the same four ways, and the comparison stylises each photo with
    Gatys and translates it with CycleGAN and the identity."""
    fixed = {
        "spent": spent,
        "evaluation": EVALUATED * stages.n_test * rates.eval_image,
        "comparison": rates.gatys_start + stages.gatys_images * (stages.gatys_steps * rates.gatys_step
                                                                 + 2 * rates.eval_image),
        "report": REPORT_SECONDS,
        "margin": MARGIN * budget,
    }
    left = budget - sum(fixed.values())
    per_step = rates.cyclegan_step + rates.cut_step + rates.pix2pix_step
    if stages.eval_every:
        per_step += EVALUATED * stages.eval_images * rates.eval_image / stages.eval_every  # evaluations, spread
    steps = max(0, math.floor((left - RUNS * rates.run_overhead) / max(per_step, 1e-9)))  # a lower bound: spread evaluations
    while steps < stages.planned_steps and training_seconds(steps + 1, rates, stages) <= left:  # come later
        steps += 1
    steps = max(1, min(stages.planned_steps, steps))
    return Plan(steps, {**fixed, "training": training_seconds(steps, rates, stages)}, budget)


def training_seconds(steps: int, rates: Rates, stages: Stages) -> float:
    """The three runs of ``steps`` steps: their own overhead, their steps, and their evaluations."""
    evaluations = steps // stages.eval_every if stages.eval_every else 0  # of each run
    return (RUNS * rates.run_overhead + steps * (rates.cyclegan_step + rates.cut_step + rates.pix2pix_step)
            + evaluations * EVALUATED * stages.eval_images * rates.eval_image)


# --------------------------------------------------------------------------------------------
# Measured on this machine


def measure_rates(cfg: Config, cut_cfg: Config, pix2pix_cfg: Config, root: Path, scratch: Path,
                  vgg_weights: str | None) -> Rates:
    """The ``Rates`` of this machine: a timing run of each method (their held-out images through
    the CycleGAN one's generators), and a few Gatys steps on one held-out photo. ``scratch`` is
    removed after."""
    try:
        cyclegan_step, cyclegan_overhead = _training_rate(cfg, scratch / "cyclegan")
        eval_image = _evaluation_rate(scratch / "cyclegan", root, cfg.data.crop_size, scratch / "eval")
        cut_step, cut_overhead = _training_rate(cut_cfg, scratch / "cut")
        pix2pix_step, pix2pix_overhead = _training_rate(pix2pix_cfg, scratch / "pix2pix")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    gatys_start, gatys_step = _gatys_rate(root, vgg_weights)
    return Rates(cyclegan_step, cut_step, pix2pix_step, max(cyclegan_overhead, cut_overhead, pix2pix_overhead),
                 eval_image, gatys_start, gatys_step)


def _training_rate(cfg: Config, scratch: Path) -> tuple[float, float]:
    """Seconds per step of this config's training on this machine, from a short run whose second
    half is timed (the first steps pay for start-up), and the rest of the run's time (start-up,
    a checkpoint, the final files)."""
    half = CALIBRATION_STEPS // 2
    config = dataclasses.replace(
        cfg, output_dir=str(scratch),
        train=dataclasses.replace(cfg.train, max_steps=CALIBRATION_STEPS, decay_steps=None, log_every=half,
                                  checkpoint_every=CALIBRATION_STEPS, keep_checkpoints=1),
        eval=dataclasses.replace(cfg.eval, every=0), log=dataclasses.replace(cfg.log, with_="none"))
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(config)  # quietly: its bar and "done" line would read as the real run's
    wall = time.perf_counter() - began
    records = [json.loads(line) for line in (scratch / "log.jsonl").read_text().splitlines()]
    step = 1 / records[-1]["it_per_s"]
    return step, max(0.0, wall - CALIBRATION_STEPS * step)


def _evaluation_rate(run_dir: Path, root: Path, size: int, scratch: Path) -> float:
    """Seconds per held-out image and direction of the evaluation (translated, measured, written)."""
    run = open_run(run_dir)
    g_a, g_b = run.generator("AtoB", "cpu"), run.generator("BtoA", "cpu")
    test_a, test_b = FolderSource(root / "testA"), FolderSource(root / "testB")
    count = min(EVAL_SAMPLE, len(test_a), len(test_b))
    began = time.perf_counter()
    evaluate_translators(g_a, g_b, test_a, test_b, output=scratch, size=size, limit=count, progress=False)
    return (time.perf_counter() - began) / (2 * count)


def _gatys_rate(root: Path, vgg_weights: str | None) -> tuple[float, float]:
    """Seconds to load VGG19 and take the first Gatys steps (the first passes pay for setting up
    the network's kernels), and then per step, on the first held-out photo at its own size with
    the first training painting as style, as the comparison does."""
    began = time.perf_counter()
    vgg = gatys.load_vgg19(vgg_weights)
    photo = gatys.load_uint8(sorted((root / "testA").glob("*.png"))[0], None)
    style = gatys.load_uint8(sorted((root / "trainB").glob("*.png"))[0], None)
    cfg = gatys.GatysConfig(size=max(photo.shape[-2:]), steps=GATYS_SAMPLE)
    gatys.stylize(photo, [style], cfg, vgg, progress=False)
    warm = time.perf_counter()
    gatys.stylize(photo, [style], cfg, vgg, progress=False)
    per_step = (time.perf_counter() - warm) / GATYS_SAMPLE
    return max(0.0, warm - began - GATYS_SAMPLE * per_step), per_step
