"""The training dashboard: one Weights & Biases run per training run.

``train`` opens a tracker once and then only calls ``tracker.log(metrics, step)``. Everything
about wandb is decided here: which mode (a run without credentials goes offline by itself),
which run to continue after ``--resume``, which settings the ``WANDB_*`` environment variables
override, and what happens when wandb fails (one warning, then training goes on without it).
When logging is off, on processes other than the main one, or after a failure, the tracker is a
plain ``Tracker``, which does nothing, so the loop never has to check.

Every value is logged against the training step as a custom x-axis, ``train/step``, rather than
as wandb's own step (``run.log(..., step=)``). wandb drops rows whose own step is lower than one
already logged, and a run resumed from a checkpoint older than its last logged row logs exactly
such steps again; a custom x-axis has no such constraint, so those rows are kept and plotted at
their training step, next to the first attempt's.
"""

from __future__ import annotations

import os
import random
import secrets
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import psutil
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..config import Config, config_to_dict
from ..data import DataError, Source, open_domains, preprocess, tensor_to_image
from ..inference.translate import test_mode, translate_tensor
from ..models import generator_size_multiple

STEP_METRIC = "train/step"
# How long a run with credentials waits for the W&B server before logging offline instead
# (wandb's own default is 90 s). WANDB_INIT_TIMEOUT, when set, wins.
INIT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Panel:
    """An image for the dashboard, with the caption that says how to read it."""

    image: Image.Image
    caption: str = ""


class Tracker:
    """A tracker that logs nowhere: logging is off, this is not the main process, or wandb failed.

    Use it as a context manager around training: leaving the block finishes the run, marked as
    failed if an exception (an interruption included) is leaving with it.
    """

    @property
    def enabled(self) -> bool:
        """Whether anything is logged: callers skip work (image panels) that only the dashboard needs."""
        return False

    @property
    def run_id(self) -> str | None:
        """The wandb run id, to be stored in checkpoints so that ``--resume`` continues this run."""
        return None

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Record numbers and ``Panel`` images at training step ``step``."""

    def log_model(self, files: Sequence[Path], step: int) -> None:
        """Upload ``files`` as one artifact of type "model"."""

    def summarize(self, values: Mapping[str, Any]) -> None:
        """Set the run's summary values (what the runs table shows), e.g. the best evaluation."""

    def finish(self, exit_code: int = 0) -> None:
        """Close the run; a non-zero ``exit_code`` marks it as failed."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.finish(0 if exc_type is None else 1)


class WandbTracker(Tracker):
    """A live wandb run. The first error from wandb is reported and turns the tracker off."""

    def __init__(self, run: Any):
        self._run, self._id = run, run.id
        try:  # plot everything against the training step (see the module docstring)
            run.define_metric(STEP_METRIC)
            run.define_metric("*", step_metric=STEP_METRIC)
        except Exception as e:
            self._give_up("starting", e)

    @property
    def enabled(self) -> bool:
        return self._run is not None

    @property
    def run_id(self) -> str | None:
        return self._id

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if self._run is None:
            return
        try:
            import wandb

            row = {key: wandb.Image(value.image, caption=value.caption) if isinstance(value, Panel) else value
                   for key, value in metrics.items()}
            self._run.log({**row, STEP_METRIC: step})
        except Exception as e:
            self._give_up(f"logging step {step}", e)

    def log_model(self, files: Sequence[Path], step: int) -> None:
        if self._run is None:
            return
        try:
            import wandb

            artifact = wandb.Artifact(f"generators-{self._id}", type="model", metadata={"step": step})
            for path in files:
                artifact.add_file(str(path), name=path.name)
            self._run.log_artifact(artifact)
        except Exception as e:
            self._give_up("logging the model artifact", e)

    def summarize(self, values: Mapping[str, Any]) -> None:
        if self._run is None:
            return
        try:
            self._run.summary.update(dict(values))
        except Exception as e:
            self._give_up("writing the run summary", e)

    def finish(self, exit_code: int = 0) -> None:
        if self._run is None:
            return
        run, self._run = self._run, None
        try:
            run.finish(exit_code=exit_code)
        except Exception as e:
            _say("warning", f"wandb could not finish run {self._id} ({_first_line(e)})")

    def _give_up(self, doing: str, error: Exception) -> None:
        _say("warning", f"wandb failed while {doing} ({_first_line(error)}); training continues without the dashboard")
        run, self._run = self._run, None
        try:
            run.finish(exit_code=1)
        except Exception:
            pass  # already reported: the dashboard is off either way


# --------------------------------------------------------------------------------------------
# Opening the run


def open_tracker(cfg: Config, run_dir: Path, *, is_main: bool, resume_id: str | None = None) -> Tracker:
    """The tracker for this process: a wandb run on the main process when ``log.with`` is wandb.

    ``resume_id`` is the run id stored in the checkpoint being resumed: that run is continued.
    Without W&B credentials an online run is logged offline instead, and one line says how to
    upload it; if the server cannot be reached in time, the same. If wandb cannot start at all,
    one line says so and training goes on with a tracker that does nothing.
    """
    if not is_main or cfg.log.with_ == "none":
        return Tracker()
    mode = os.environ.get("WANDB_MODE") or cfg.wandb.mode
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)  # wandb's older spellings
    if mode == "disabled":
        return Tracker()
    try:
        import wandb
    except Exception as e:  # a broken install must not stop training
        _say("warning", f"wandb cannot be imported ({_first_line(e)}); training continues without the dashboard")
        return Tracker()

    arguments = _init_arguments(cfg, run_dir, resume_id)
    fallback = None  # (kind, why) when a run meant to be online is logged offline instead
    if mode != "offline" and not has_credentials():
        fallback = "note", "no W&B credentials (WANDB_API_KEY or `wandb login`)"
    elif mode != "offline":
        settings = {} if "WANDB_INIT_TIMEOUT" in os.environ else {"init_timeout": INIT_TIMEOUT_S}
        try:
            return WandbTracker(wandb.init(mode=mode, settings=wandb.Settings(**settings), **arguments))
        except Exception as e:
            fallback = "warning", f"wandb could not start online ({_first_line(e)})"
    try:
        run = wandb.init(mode="offline", **arguments)
    except Exception as e:
        _say("warning", f"wandb could not start ({_first_line(e)}); training continues without the dashboard")
        return Tracker()
    tracker = WandbTracker(run)
    if fallback:
        kind, why = fallback
        _say(kind, f"{why}: the dashboard is logged offline; upload it later with: wandb sync {run.sync_dir}")
    return tracker


def has_credentials() -> bool:
    """Whether wandb has an API key (or identity token) to go online with, read without the network.

    Looks where ``wandb.init`` looks: WANDB_API_KEY or WANDB_IDENTITY_TOKEN_FILE, an ``api_key``
    in wandb's settings files, and the netrc entry that ``wandb login`` writes for the W&B host
    (WANDB_BASE_URL or the settings' host), read with wandb's own reader, which knows NETRC and
    the host's aliases. wandb's global settings load from the environment and files only: no
    service process is started and nothing is sent.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib import wbauth

        settings = wandb_setup.singleton().settings
        return bool(settings.api_key) or wbauth.read_netrc_auth(host=settings.base_url) is not None
    except Exception:  # an unreadable netrc or a malformed key: no usable credentials
        return False


def _init_arguments(cfg: Config, run_dir: Path, resume_id: str | None) -> dict[str, Any]:
    """``wandb.init`` arguments from the config, leaving out each one its WANDB_* variable sets.

    wandb.init's arguments override the environment, so a value the user exported would be lost
    if the config's were passed too. The run id is fixed here, so that an online attempt and its
    offline fallback are one run; ``resume="allow"`` continues the checkpoint's run.
    """
    w, env = cfg.wandb, os.environ
    arguments: dict[str, Any] = {"config": config_to_dict(cfg), "reinit": "create_new"}
    if "WANDB_PROJECT" not in env:
        arguments["project"] = w.project
    if "WANDB_ENTITY" not in env and w.entity is not None:
        arguments["entity"] = w.entity
    if "WANDB_NAME" not in env:
        # The output folder's name tells runs apart better than wandb's random adjective-noun.
        arguments["name"] = w.name or run_dir.resolve().name
    if "WANDB_TAGS" not in env and w.tags:
        arguments["tags"] = list(w.tags)
    if "WANDB_DIR" not in env:
        arguments["dir"] = str(run_dir)  # OUTPUT_DIR/wandb/: the run folder holds everything
    if "WANDB_RUN_ID" not in env:
        arguments["id"] = resume_id or _new_run_id()
        if resume_id and "WANDB_RESUME" not in env:
            arguments["resume"] = "allow"
    if resume_id:
        arguments["allow_val_change"] = True  # a resumed run may change a key, e.g. train.max_steps
    return arguments


def _new_run_id() -> str:
    """Eight lowercase letters and digits, as wandb's own run ids."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


# --------------------------------------------------------------------------------------------
# What the loop logs besides losses


def memory_metrics(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory allocated on a GPU, the process's resident memory on a CPU (MiB)."""
    if device.type == "cuda":
        return {"perf/cuda_max_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    return {"perf/rss_mib": psutil.Process().memory_info().rss / 2**20}


class HeldOutPanels:
    """A fixed set of held-out images per domain, and the translation grids drawn from them.

    The same images, prepared the same way (centred crop, no flip) every time, so panels
    logged days apart differ only by what the generators learnt. Each grid has one row per
    image: real | translated | translated back | identity (for domain A: a, G_A(a), G_B(G_A(a)),
    G_B(a), the reference's idt_B; for B the same with the generators swapped). The identity
    column is left out when the two domains have different channel counts. A method that trains
    A→B only (no G_B) gets the A grid alone: real | translated. With ``truth`` (a method that
    learns from pairs, such as pix2pix: image i of A and of B show one scene) every row ends with
    the true target, the other image of the pair (the official pix2pix's real_A | fake_B | real_B).
    """

    def __init__(self, images_a: list[torch.Tensor], images_b: list[torch.Tensor], identity: bool, source: str,
                 truth: bool = False):
        self.images_a, self.images_b = images_a, images_b
        self.identity = identity
        self.source = source  # the split they come from, for the captions
        self.truth = truth  # images_a[i] and images_b[i] are a pair: each is the other's true translation

    @classmethod
    def load(cls, cfg: Config, train_sources: tuple[Source, ...], count: int | None = None,
             truth: bool = False) -> HeldOutPanels:
        """The first ``count`` (default ``log.num_images``) images of the test split, or of the
        training split if there is none; ``truth``: the sources are pairs, shown as each other's
        true translation."""
        count = cfg.log.num_images if count is None else count
        d, m = cfg.data, cfg.model
        domains = ("A", "B")[:len(train_sources)]  # those the run trains on
        try:
            sources, split = open_domains(d, d.test_split, domains=domains), d.test_split
        except DataError as e:
            sources, split = train_sources, d.train_split
            _say("note", f"image panels: no usable '{d.test_split}' split ({e}); they show the first "
                         f"{count} '{split}' images instead")
        images, multiple = [], generator_size_multiple(m)
        for source, channels in zip(sources, (m.in_channels, m.out_channels)):
            images.append([preprocess(source.load(i, channels), d, random.Random(0), train=False,
                                      source=source.describe(i), size_multiple=multiple)
                           for i in range(min(count, len(source)))])
        images_b = images[1] if len(images) > 1 else []
        return cls(images[0], images_b, identity=m.in_channels == m.out_channels, source=split,
                   truth=truth and len(images) > 1)

    @torch.inference_mode()
    def render(self, g_a: nn.Module | None, g_b: nn.Module | None, device: torch.device, prefix: str = "images",
               names: tuple[str | None, str | None] = ("G_A", "G_B")) -> dict[str, Panel]:
        """Both grids, as ``prefix/A`` and ``prefix/B`` (one alone for a method without ``g_b`` or
        ``g_a``), with the generators as a test runs them (``test_mode``: eval mode, batch norm by
        each image's statistics; their train mode is restored after); ``names``: the
        generators' names for the captions (the method's translators)."""
        name_a, name_b = names
        ways = (("A", "B", g_a, g_b, name_a, name_b, self.images_a, self.images_b),
                ("B", "A", g_b, g_a, name_b, name_a, self.images_b, self.images_a))
        panels = {}
        with test_mode(*(g for g in (g_a, g_b) if g is not None)):
            for x, y, forward, backward, forward_name, backward_name, images, partners in ways:
                if forward is None:  # a one-way method: the grid of the way it translates only
                    continue
                grid = self._grid(images, forward, backward, partners if self.truth else None, device)
                caption = self._caption(x, y, forward_name, backward_name, two_way=backward is not None)
                panels[f"{prefix}/{x}"] = Panel(grid, caption)
        return panels

    def _caption(self, x: str, y: str, forward: str | None, backward: str | None, two_way: bool) -> str:
        columns = [f"real {x}", f"{x}→{y} ({forward})"]
        if two_way:
            columns.append(f"{x}→{y}→{x}")
        if two_way and self.identity:
            columns.append(f"identity {backward}({x})")
        if self.truth:
            columns.append(f"true {y}")
        return f"{self.source} {x} images, per row: " + " | ".join(columns)

    def _grid(self, images: list[torch.Tensor], forward: nn.Module, backward: nn.Module | None,
              targets: list[torch.Tensor] | None, device: torch.device) -> Image.Image:
        """One row per image of ``images``: the columns of the caption; ``targets``: the true
        translations, item for item (None: no truth column)."""
        rows = []
        for i, real in enumerate(images):
            x = real.unsqueeze(0).to(device)
            fake = translate_tensor(forward, x)
            cells = [x, fake]
            if backward is not None:
                cells.append(translate_tensor(backward, fake))
            if backward is not None and self.identity:
                cells.append(translate_tensor(backward, x))
            if targets is not None:
                cells.append(targets[i].unsqueeze(0))
            rows.append([tensor_to_image(c[0].float()).convert("RGB") for c in cells])
        return tile(rows)


def tile(rows: list[list[Image.Image]]) -> Image.Image:
    """Rows of images side by side, rows one under the other (sizes may differ between rows)."""
    widths = [sum(cell.width for cell in row) for row in rows]
    heights = [max(cell.height for cell in row) for row in rows]
    grid = Image.new("RGB", (max(widths), sum(heights)))
    top = 0
    for row, height in zip(rows, heights):
        left = 0
        for cell in row:
            grid.paste(cell, (left, top))
            left += cell.width
        top += height
    return grid


# --------------------------------------------------------------------------------------------


def _say(kind: str, message: str) -> None:
    """One line on stderr, ``note: …`` or ``warning: …``, on a line of its own above the progress bar."""
    tqdm.write(f"{kind}: {message}", file=sys.stderr)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
