"""Typed run configuration: YAML in, validated dataclasses out.

Every key that all methods share is a field below, with the CycleGAN paper's value as its default
(Zhu et al. 2017, section 4 and appendix 7). A YAML file and ``--set section.key=value``
overrides are merged into one plain dict, then converted and checked here, before anything runs:
an unknown key, a value of the wrong type or an impossible combination is a ``ConfigError`` whose
one-line message names the key.

A method's own section (``cut:``, ``style:`` …) is kept as written, in ``Config.sections``, until
the method types and checks it (``training/methods``; ``training/configure.py`` checks a run's
config whole: this module, the architectures, the method and the metric). This module is at the
bottom of the package and imports nothing else of it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration problem, reported in one line that names the key."""


@dataclass(frozen=True)
class DataConfig:
    """Where the two unpaired domains come from and how each image is prepared."""

    # "folder": ROOT/{trainA,trainB,testA,testB}, as the published CycleGAN datasets are laid out
    # (a one-domain method, such as fast_style, reads ROOT/trainA and ROOT/testA only).
    # "images": ROOT is a plain folder of images, searched recursively: one domain (A), no held-out
    # split (the dashboard's panels then show the first training images).
    # "hf": a Hugging Face `datasets` source: a hub id, a folder written by `save_to_disk`,
    # a folder of parquet files, or an `imagefolder` tree. A one-domain method reads image_column.
    # "aligned": the official pix2pix layout, ROOT/{train,val,test}/ of images holding A (left half)
    # and B (right half) side by side: always pairs.
    format: Literal["folder", "images", "hf", "aligned"] = "folder"
    # Whether A and B are pairs (the same scene twice): folder images matched by file stem, the two
    # HF columns row by row, the halves of an aligned image. A paired method (pix2pix) trains on
    # them; held-out evaluation of any method then scores PSNR/SSIM against the true partner.
    # null: as the method needs (pix2pix true, the others false), resolved when the config is checked.
    paired: bool | None = None
    root: str = ""
    train_split: str = "train"
    test_split: str = "test"
    # HF only: either two image columns in one table (huggan/* datasets: imageA, imageB) ...
    column_a: str = "imageA"
    column_b: str = "imageB"
    # ... or one image column and a label column saying the domain (imagefolder: image, label).
    label_column: str | None = None
    label_a: str = "A"
    label_b: str = "B"
    image_column: str = "image"
    # Preprocessing, as the reference's --preprocess (data.py preprocess): resize_and_crop |
    # scale_width | scale_width_and_crop | crop | none.
    preprocess: Literal["resize_and_crop", "scale_width", "scale_width_and_crop", "crop", "none"] = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    # The first N images (sorted) of each domain and split, as the reference's --max_dataset_size;
    # None: all of them (the reference's default, inf).
    max_dataset_size: int | None = None
    num_workers: int = 2  # capped at the CPUs the process may use (training/launch.py data_workers)
    # An unreadable image is skipped with a warning; with strict_images it stops the run.
    strict_images: bool = False
    # After train.n_epochs epochs (CUT's epoch > n_epochs, where its rate starts to decay; in the
    # step form from max_steps - decay_steps), resize straight to crop_size: flips, but no random
    # crop (CUT's code: its fine-tuning phase).
    # null: the method's (cut, fastcut: true; cyclegan: false, as its reference).
    decay_no_crop: bool | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The two ResNet generators and two PatchGAN discriminators."""

    # Architectures by name (cyclestyle.models.registry): "resnet" takes n_blocks (default 9);
    # the paper's presets "resnet_9blocks" and "resnet_6blocks" fix it. "n_layers" takes
    # n_layers_d (default 3, the 70×70 PatchGAN); the preset "basic" fixes it at 3.
    generator: str = "resnet"
    discriminator: str = "n_layers"
    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    ndf: int = 64
    n_blocks: int | None = None  # None: the architecture's own
    n_layers_d: int | None = None  # None: the architecture's own
    norm: Literal["instance", "batch", "none"] = "instance"
    dropout: bool = False
    upsample: Literal["transpose", "resize_conv"] = "transpose"
    # Weights as the references' init_weights: normal N(0, gain), xavier, kaiming or orthogonal
    # (models/init.py). null: the method's (cyclegan: normal; cut, fastcut: xavier, as CUT's code).
    init_type: Literal["normal", "xavier", "kaiming", "orthogonal"] | None = None
    init_gain: float = 0.02
    # Anti-aliased sampling, under CUT's option names (models/antialias.py): no_antialias for the
    # generator's down-sampling and the PatchGAN, no_antialias_up for the generator's up-sampling.
    # null: the method's (cyclegan: true, true; cut, fastcut: false, false, as CUT's code).
    no_antialias: bool | None = None
    no_antialias_up: bool | None = None


@dataclass(frozen=True)
class LossConfig:
    """Objective weights: L = L_GAN(G,D_Y) + L_GAN(F,D_X) + λ L_cyc + λ_idt λ L_idt (paper eq. 3)."""

    gan_mode: Literal["lsgan", "vanilla", "hinge", "wgangp"] = "lsgan"
    # wgangp only: weight λ of the gradient penalty (Gulrajani et al. 2017; the reference's lambda_gp).
    lambda_gp: float = 10.0
    lambda_a: float = 10.0
    lambda_b: float = 10.0
    lambda_identity: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping."""

    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # Epoch form of the schedule (the paper's): constant LR for n_epochs, linear decay over n_epochs_decay.
    # null: the method's (cyclegan: 100 + 100; cut: 200 + 200; fastcut: 150 + 50, as their code).
    n_epochs: int | None = None
    n_epochs_decay: int | None = None
    # Step form: when max_steps is set it replaces the epochs; the LR decays linearly to 0 over the
    # last decay_steps steps (default: the second half of the run).
    max_steps: int | None = None
    decay_steps: int | None = None
    # The learning rate's schedule, as the reference's --lr_policy (training/schedule.py): linear (the
    # paper's, above), step (× 0.1 every lr_decay_iters epochs), plateau (× 0.2 when the held-out
    # eval.metric stops improving) or cosine (half a cosine over n_epochs). In the step form
    # (max_steps), what the epoch form counts in epochs is counted in steps.
    lr_policy: Literal["linear", "step", "plateau", "cosine"] = "linear"
    lr_decay_iters: int = 50
    pool_size: int = 50
    # train.lr is for one image per step (the paper's batch 1); with more images per step
    # (batch_size × processes) "sqrt" multiplies it by their square root (Adam's rule), "linear"
    # by their number (SGD's), "none" keeps it as it is (training/schedule.py scaled_lr).
    lr_scaling: Literal["none", "sqrt", "linear"] = "none"
    # The speed paths (training/speed.py). auto: bf16 autocast where the device computes bf16 in
    # hardware (recent GPUs; AVX-512 BF16 / AMX CPUs), fp32 elsewhere; "no" is fp32.
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    compile: Literal["none", "default", "max-autotune", "reduce-overhead"] = "none"
    channels_last: bool = False  # CUDA only: refused on CPU, where instance norm's backward is wrong with it
    tf32: bool = True  # TF32 tensor cores for fp32 matmuls and convolutions (Ampere and newer GPUs)
    # Where a NaN loss is caught: "step" checks each loss at once (a wait for the device per check),
    # "deferred" skips the update on the device and stops when the losses are next read; auto:
    # deferred on a GPU, step elsewhere (training/update.py FiniteGuard).
    finite_check: Literal["auto", "step", "deferred"] = "auto"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    # Fine-tuning: a new run whose networks start from these weights (a run or checkpoint folder,
    # a generator file, hf://USER/NAME or pretrained:NAME; training/init_from.py). None: from scratch.
    init_from: str | None = None


@dataclass(frozen=True)
class WandbConfig:
    """The Weights & Biases run that serves as the training dashboard.

    A ``WANDB_*`` environment variable (WANDB_PROJECT, WANDB_ENTITY, WANDB_NAME, WANDB_TAGS,
    WANDB_MODE, WANDB_DIR …) wins over the key here, as it does for any wandb program.
    """

    project: str = "cyclestyle"
    entity: str | None = None
    # None: the output_dir's folder name, so a dashboard run is easy to match with its folder.
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    # online falls back to offline by itself when no W&B credentials are configured.
    mode: Literal["online", "offline", "disabled"] = "online"
    # Upload the final generators (and config.yaml) as a wandb Artifact of type "model".
    log_model: bool = False


@dataclass(frozen=True)
class LogConfig:
    """Where training progress goes besides ``log.jsonl``, and how often images are shown."""

    # YAML key ``log.with``; ``with`` is a Python keyword (see _FIELD_FOR_KEY).
    with_: Literal["wandb", "none"] = "wandb"
    images_every: int = 1000
    num_images: int = 4
    # The panels kept on disk as OUTPUT_DIR/samples/step-N.png, listed in samples/index.html
    # (training/samples.py): at most this many, the newest; 0 writes none.
    keep_samples: int = 50


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation during training, and which checkpoint counts as the best.

    Every ``every`` steps (and at the last step) the generators translate the first
    ``num_images`` held-out images of each domain (the same ones each time) and the metrics of
    ``cyclestyle evaluate`` are logged. The generators of the evaluation that scored best on
    ``metric`` are kept in ``checkpoints/best/``, beside the last ones: published numbers often
    quote the best evaluation, while the last weights are what a run ends with.
    """

    every: int = 0  # steps between evaluations; 0 turns evaluation during training off
    num_images: int = 50  # per domain; 0 means every held-out image
    # fid, kid, cycle_l1, psnr or ssim: the mean over both directions that have it, or one
    # direction's, e.g. "AtoB/psnr".
    metric: str = "fid"
    paired_truth: str | None = None  # true translations, for psnr/ssim (see ``cyclestyle evaluate``)
    inception_weights: str | None = None  # FID/KID network; default: the torch hub cache
    # How FID/KID resize images for the Inception network (``metrics.FID_PROTOCOLS``): clean
    # (clean-fid's) or legacy (torch-fidelity's, as pytorch-fid-era tables such as CUT's).
    fid_protocol: Literal["clean", "legacy"] = "clean"


@dataclass(frozen=True)
class Config:
    """A whole run."""

    output_dir: str = "runs/cyclegan"
    seed: int = 0
    # The training method, by its registered name (``training/methods``): what networks are
    # trained and what one step does. Everything else in this file applies to every method.
    method: str = "cyclegan"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Sections of one method (``cut:``, ``style:``) by YAML key, as written: the method types them.
    # A checked config (``training/configure.py``) holds its method's own section alone, resolved.
    sections: dict[str, Any] = field(default_factory=dict)


# Shared keys whose null means "the method's value" (each method's ``shared_defaults``), with the
# value every run had before the key existed. A run fills them in when it starts; one that resumes
# takes them from its recorded config.yaml, and a run recorded before a key existed (its
# config.yaml lacks it) keeps the value of that time, so it resumes as it trained.
METHOD_DEFAULTED: dict[str, Any] = {
    "model.init_type": "normal",
    "model.no_antialias": True,
    "model.no_antialias_up": True,
    "data.decay_no_crop": False,
    "train.n_epochs": 100,
    "train.n_epochs_decay": 100,
}

# YAML keys that are Python keywords, and the dataclass fields that hold them.
_FIELD_FOR_KEY = {"with": "with_"}
_KEY_FOR_FIELD = {f: k for k, f in _FIELD_FOR_KEY.items()}
SHARED_KEYS = tuple(f.name for f in dataclasses.fields(Config) if f.name != "sections")


# --------------------------------------------------------------------------------------------
# Loading


def read_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML file (or start from defaults), apply ``key=value`` overrides, and check the
    shared sections. A method's section stays as written (see the module docstring)."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_yaml(Path(path))
    for item in overrides:
        raw = apply_override(raw, item)
    cfg = config_from_dict(raw)
    validate_shared(cfg)
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(loaded).__name__}")
    return loaded

@dataclass(frozen=True)
class OverrideText:
    """A ``--set`` value as typed, and as YAML reads it. A string key takes the text as given
    (``--set output_dir="runs/demo #2"`` must not lose ``#2`` to a YAML comment); any other key
    takes the YAML value (numbers, booleans, lists, null)."""

    text: str
    parsed: Any


def apply_override(raw: dict[str, Any], item: str) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` set (an ``OverrideText``)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    try:
        parsed = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        parsed = text
    value = OverrideText(text, parsed)
    out = copy.deepcopy(raw)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value
    return out


def _override_value(value: OverrideText, tp: Any) -> Any:
    """The text for a string key (``null``, ``~`` or nothing still mean None where None is
    allowed, and a quoted YAML string loses its quotes), the YAML value for any other."""
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if str not in options:
        return value.parsed
    if type(None) in options and value.parsed is None:
        return None
    if isinstance(value.parsed, str) and value.text.strip()[:1] in ("'", '"'):
        return value.parsed  # a quoted YAML string: its quotes are syntax
    return value.text


def config_from_dict(raw: dict[str, Any]) -> Config:
    """The shared keys typed; any other section (a mapping, or empty) kept as written."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a mapping, got {raw!r}")
    shared = {k: v for k, v in raw.items() if k in SHARED_KEYS}
    sections = {k: v for k, v in raw.items() if k not in SHARED_KEYS}
    for key, value in sections.items():
        if key == "sections" or not (value is None or isinstance(value, dict)):
            raise ConfigError(f"unknown config key {key} (known: {', '.join(sorted(SHARED_KEYS))})")
    return dataclasses.replace(build_section(Config, shared, prefix=""),
                               sections={k: v or {} for k, v in sections.items()})


def build_section(cls: type, raw: Any, prefix: str) -> Any:
    """Dataclass ``cls`` from the mapping ``raw``, each value checked against its annotation;
    ``prefix`` (``"cut."``) names the keys in errors."""
    name = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{name} must be a mapping, got {_shown(raw)}")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "sections"]
    known = {_KEY_FOR_FIELD.get(f.name, f.name) for f in fields}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown config key {prefix}{key} (known: {', '.join(sorted(known))})")
    kwargs = {}
    for f in fields:
        key = _KEY_FOR_FIELD.get(f.name, f.name)
        if key not in raw:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = build_section(tp, raw[key] or {}, prefix=f"{prefix}{key}.")
        else:
            kwargs[f.name] = _coerce(raw[key], tp, f"{prefix}{key}", default=f.default)
    return cls(**kwargs)


def _shown(value: Any) -> str:
    """A value as the user typed it: an override's text, not its wrapper."""
    return repr(value.text) if isinstance(value, OverrideText) else repr(value)


def _shown_number(value: Any) -> str:
    """A number as typed, shortened when it is a long one."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"


def _as_yaml(value: Any) -> str:
    """A value as YAML writes it, the way the user wrote it: true, null, "8" (text), [8, 16],
    not Python's True, None, '8'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if len(value) <= 60 else json.dumps(value[:40]) + "…"
    if isinstance(value, (list, dict)):
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
        return text if len(text) <= 60 else text[:40] + "…"
    return _shown_number(value)


def _got(value: Any, key: str, default: Any) -> str:
    """``got VALUE`` for the error of ``key``, with what to write instead where that is clear: a
    null is what an empty key reads as, and a key of no null option has a default instead."""
    if value is None and default is not dataclasses.MISSING:
        return f"got null (an empty value): give one, or leave {key} out for its default, {_as_yaml(default)}"
    return f"got {_as_yaml(value)}"


def _not_whole(value: Any) -> str | None:
    """``got VALUE`` for a value that looks like a number but is no whole one, with what to write
    instead; None for any other value."""
    if isinstance(value, bool):
        return f"got {_as_yaml(value)}, a yes/no value"
    if isinstance(value, str):
        try:
            return f"got {_as_yaml(value)}, a number in quotes, which YAML reads as text: write {int(value)} without quotes"
        except ValueError:
            pass
        try:  # YAML 1.1 reads 1e3 (no dot) as text
            number = float(value)
        except ValueError:
            return None
        if math.isfinite(number) and number.is_integer():
            return f"got {value.strip()}, which YAML reads as text: write {int(number)}"
        return f"got {_shown_number(value.strip())}"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return f"got {value!r}: write {int(value)}, without the decimal point"
    return None


def _coerce(value: Any, tp: Any, key: str, default: Any = dataclasses.MISSING) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected.
    Errors show the value as YAML writes it and, where one exists, the ``default`` to fall back on."""
    if isinstance(value, OverrideText):
        value = _override_value(value, tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typing.get_args(tp), key, default)
    if origin is Literal:
        return _coerce_literal(value, typing.get_args(tp), key, default)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false; {_got(value, key, default)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer; {_not_whole(value) or _got(value, key, default)}")
        return value
    if tp is float:
        return _coerce_float(value, key, default)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string; {_got(value, key, default)}"
                              + (f" (quote it for the text: \"{_as_yaml(value)}\")"
                                 if isinstance(value, (bool, int, float)) else ""))
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, e.g. [a, b]; {_got(value, key, default)}")
        (item_type,) = typing.get_args(tp)
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"unsupported config annotation {tp} for {key}")  # a bug in this module


def _coerce_union(value: Any, options: tuple[Any, ...], key: str, default: Any) -> Any:
    """The value as the first of ``options`` that takes it (None where None is one); else the error
    of the first option the annotation names."""
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _coerce(value, option, key, default)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else f"{key}: bad value {_as_yaml(value)}")


def _coerce_literal(value: Any, allowed: tuple[Any, ...], key: str, default: Any) -> Any:
    """One of the ``allowed`` values, said in the error."""
    # YAML reads `no` as False; mixed_precision's "no" must survive that.
    if value is False and "no" in allowed:
        value = "no"
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))}; {_got(value, key, default)}")
    return value


def _coerce_float(value: Any, key: str, default: Any) -> float:
    """A finite float from a number, or from text YAML 1.1 leaves as text ("2e-4", without a dot)."""
    number = None
    if isinstance(value, str):
        try:  # YAML 1.1 reads "2e-4" (no dot) as a string
            number = float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            number = math.inf
    if number is None:
        raise ConfigError(f"{key} must be a number; {_got(value, key, default)}")
    # Every float key of every section (a method's own included, as they are typed here):
    # NaN and infinity pass any comparison with a bound, so they are refused before one.
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be a finite number; got {_shown_number(value)}")
    return number


# --------------------------------------------------------------------------------------------
# Validation of the shared sections: impossible values, each named by key


def validate_shared(cfg: Config) -> None:
    """Every shared value, and the combinations of them that cannot work, each failure a one-line
    ``ConfigError`` naming the key. What needs an architecture, a method or a metric is checked
    in ``training/configure.py``."""
    _validate_ranges(cfg)
    _validate_schedule(cfg.train)
    d, e = cfg.data, cfg.eval
    if d.preprocess in ("resize_and_crop", "scale_width_and_crop") and d.crop_size > d.load_size:
        raise ConfigError(f"data.crop_size={d.crop_size} is larger than data.load_size={d.load_size}")
    if e.every < 0 or e.num_images < 0:
        raise ConfigError(f"eval.every and eval.num_images must not be negative; got {e.every} and {e.num_images}")
    if cfg.loss.gan_mode == "wgangp" and cfg.train.compile != "none":
        raise ConfigError("loss.gan_mode wgangp differentiates the discriminator's gradient (double backward), "
                          f"which torch.compile does not support: set train.compile none (it is {cfg.train.compile})")
    if cfg.train.lr_policy == "plateau" and e.every == 0:
        raise ConfigError("train.lr_policy plateau lowers the rate when the held-out eval.metric stops improving: "
                          "it needs eval.every > 0")


# The longest side a config may resize training images to: the side of the largest image that
# resizing by the short side makes anywhere in the toolkit (data.MAX_RESIZED_PIXELS, 8192²).
MAX_SIDE = 8192


def _validate_ranges(cfg: Config) -> None:
    """Each number on its own: sizes, counts and rates positive, weights not negative."""
    d, m, t = cfg.data, cfg.model, cfg.train
    for key, value in _positive(cfg).items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive; got {value}")
    for key, value in {"data.load_size": d.load_size, "data.crop_size": d.crop_size}.items():
        if value > MAX_SIDE:
            raise ConfigError(f"{key} must be at most {MAX_SIDE} pixels; got {value}")
    for key, value in _non_negative(cfg).items():
        if value < 0:
            raise ConfigError(f"{key} must not be negative; got {value}")
    if d.max_dataset_size is not None and d.max_dataset_size <= 0:
        raise ConfigError(f"data.max_dataset_size must be positive (null for every image); got {d.max_dataset_size}")
    if t.max_steps is not None and t.max_steps <= 0:
        raise ConfigError(f"train.max_steps must be positive; got {t.max_steps}")
    for key, value in {"train.beta1": t.beta1, "train.beta2": t.beta2}.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1); got {value}")
    if not 0 <= cfg.seed < 2**32:  # NumPy's seeds (training/start.py set_seed)
        raise ConfigError(f"seed must be a whole number from 0 to 2**32 - 1; got {_shown_number(cfg.seed)}")
    if m.in_channels not in (1, 3) or m.out_channels not in (1, 3):
        raise ConfigError("model.in_channels and model.out_channels must be 1 or 3")


def _positive(cfg: Config) -> dict[str, float]:
    """The sizes, counts and rates, by key: none of them means anything at 0 or below."""
    d, m, t = cfg.data, cfg.model, cfg.train
    return {
        "data.load_size": d.load_size,
        "data.crop_size": d.crop_size,
        "model.ngf": m.ngf,
        "model.ndf": m.ndf,
        "model.in_channels": m.in_channels,
        "model.out_channels": m.out_channels,
        "train.batch_size": t.batch_size,
        "train.checkpoint_every": t.checkpoint_every,
        "train.keep_checkpoints": t.keep_checkpoints,
        "train.log_every": t.log_every,
        "train.lr": t.lr,
        "train.lr_decay_iters": t.lr_decay_iters,
        "log.images_every": cfg.log.images_every,
        "log.num_images": cfg.log.num_images,
    }


def _non_negative(cfg: Config) -> dict[str, float]:
    """The counts that may be 0 (no workers, no epochs, no pool) and the weights, by key."""
    d, m, t, lo = cfg.data, cfg.model, cfg.train, cfg.loss
    return {
        "data.num_workers": d.num_workers,
        "train.n_epochs": t.n_epochs or 0,
        "train.n_epochs_decay": t.n_epochs_decay or 0,
        "train.pool_size": t.pool_size,
        "log.keep_samples": cfg.log.keep_samples,
        "loss.lambda_a": lo.lambda_a,
        "loss.lambda_b": lo.lambda_b,
        "loss.lambda_identity": lo.lambda_identity,
        "loss.lambda_gp": lo.lambda_gp,
        "model.init_gain": m.init_gain,
    }


def _validate_schedule(t: TrainConfig) -> None:
    if t.decay_steps is not None:
        if t.max_steps is None:
            raise ConfigError("train.decay_steps needs train.max_steps (epoch runs use train.n_epochs_decay)")
        if not 0 <= t.decay_steps <= t.max_steps:
            raise ConfigError(f"train.decay_steps must be between 0 and train.max_steps={t.max_steps}; got {t.decay_steps}")
    if t.max_steps is None and t.n_epochs == 0 and t.n_epochs_decay == 0:
        raise ConfigError("train.n_epochs + train.n_epochs_decay is 0: nothing to train (or set train.max_steps)")
    if t.lr_policy == "cosine":
        period = t.n_epochs if t.max_steps is None else t.max_steps - (
            t.decay_steps if t.decay_steps is not None else t.max_steps // 2)
        if period is not None and period <= 0:  # None: the method's epochs, all above 0
            what = "train.n_epochs" if t.max_steps is None else "train.max_steps - train.decay_steps"
            raise ConfigError(f"train.lr_policy cosine anneals over {what}, which is {period}: set it above 0")


def validate_paths(cfg: Config, domains: tuple[str, ...]) -> None:
    """The files and folders the config names, for a method that reads ``domains`` (("A", "B") or
    ("A",)), and the dashboard's names: checked before a run, not for a run's config read back."""
    d = cfg.data
    _validate_wandb(cfg.wandb)
    init = cfg.train.init_from
    if init is not None and not init.startswith(("hf://", "pretrained:")) and not Path(init).expanduser().exists():
        raise ConfigError(f"train.init_from {init} does not exist (a run or checkpoint folder, a generator file, "
                          "hf://USER/NAME or pretrained:NAME)")
    for key, value in {"eval.paired_truth": cfg.eval.paired_truth,
                       "eval.inception_weights": cfg.eval.inception_weights}.items():
        if value is not None and not Path(value).expanduser().exists():
            raise ConfigError(f"{key} {value} does not exist")
    if not d.root:
        raise ConfigError("data.root is not set: give the dataset folder (or an HF dataset id with data.format: hf)")
    root = Path(d.root).expanduser()
    if d.format in ("folder", "images", "aligned") and not root.is_dir():
        raise ConfigError(f"data.root {d.root} is not a folder")
    if d.format == "aligned" and not (root / d.train_split).is_dir():
        raise ConfigError(f"data.root {d.root} has no {d.train_split}/ folder (data.format aligned: "
                          f"{d.train_split}/, test/ of A|B images side by side)")
    if d.format == "folder":
        subs = [f"{d.train_split}{domain}" for domain in domains]
        for sub in subs:
            if not (root / sub).is_dir():
                raise ConfigError(f"data.root {d.root} has no {sub}/ folder (expected {'/ and '.join(subs)}/)")


def split_metric(metric: str) -> tuple[str | None, str]:
    """``"AtoB/psnr"`` → ("AtoB", "psnr"); ``"fid"`` → (None, "fid"): None means both directions."""
    direction, _, name = metric.rpartition("/")
    return direction or None, name


# Characters W&B does not accept in project and entity names.
_WANDB_FORBIDDEN = "/\\#?%:"


def _validate_wandb(w: WandbConfig) -> None:
    """What the W&B server would refuse, refused before the run instead of hours into it."""
    for key, value in {"wandb.project": w.project, "wandb.entity": w.entity}.items():
        if value is None:
            continue
        if not value.strip() or set(value) & set(_WANDB_FORBIDDEN):
            raise ConfigError(f"{key} must be a non-empty name without {' '.join(_WANDB_FORBIDDEN)}; got {value!r}")
    if w.name is not None and not w.name.strip():
        raise ConfigError("wandb.name must not be empty (leave it null for the output_dir's name)")
    for i, tag in enumerate(w.tags):
        if not tag.strip() or len(tag) > 64:
            raise ConfigError(f"wandb.tags[{i}] must be 1 to 64 characters; got {tag!r}")


# --------------------------------------------------------------------------------------------
# Writing


# Shared keys added since v0.2 that a config leaves out while they hold their default: the
# config.yaml of a run that does not use them, and so its fingerprint (``config_hash``), stay what
# they were (tests/test_compat.py reads a v0.2 run's config back to the same text). data.paired's
# default, null, means unpaired for every method but pix2pix (which resolves it to true).
LATER_KEYS = (("train", "init_from"), ("log", "keep_samples"), ("data", "max_dataset_size"), ("loss", "lambda_gp"),
              ("train", "lr_policy"), ("train", "lr_decay_iters"), ("data", "paired"),
              *(tuple(key.split(".")) for key in METHOD_DEFAULTED))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain data, with the YAML key names (``log.with``, not ``with_``), its
    method's section last, as ``config.yaml`` holds it (``LATER_KEYS`` at their default left out:
    a key left to the method, ``METHOD_DEFAULTED``, is written once a run has filled it in)."""
    data = _yaml_keys(dataclasses.asdict(cfg))
    for section, key in LATER_KEYS:
        if getattr(getattr(cfg, section), key) == getattr(type(getattr(cfg, section))(), key):
            del data[section][key]
    return {**{k: v for k, v in data.items() if k != "sections"}, **data["sections"]}


def lookup(cfg: Config, key: str) -> Any:
    """The value of the dotted shared key ``key`` (``model.init_type``)."""
    section, name = key.split(".")
    return getattr(getattr(cfg, section), _FIELD_FOR_KEY.get(name, name))


def unset_keys(cfg: Config) -> list[str]:
    """The keys of ``METHOD_DEFAULTED`` that ``cfg`` leaves to the method (null)."""
    return [key for key in METHOD_DEFAULTED if lookup(cfg, key) is None]


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with the dotted shared keys of ``values`` set, each value checked as if read from
    YAML (a bad one is a ``ConfigError`` naming the key)."""
    data = config_to_dict(cfg)
    for key, value in values.items():
        section, name = key.split(".")
        data[section][name] = value
    return dataclasses.replace(config_from_dict(data), sections=cfg.sections)


def recorded_values(recorded: dict[str, Any], keys: typing.Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` in a run's recorded config (as read from its YAML): a key it lacks,
    or leaves null, was written before the key existed and takes ``METHOD_DEFAULTED``'s value."""
    out = {}
    for key in keys:
        section, name = key.split(".")
        value = (recorded.get(section) or {}).get(name) if isinstance(recorded.get(section) or {}, dict) else None
        out[key] = METHOD_DEFAULTED[key] if value is None else value
    return out


def _yaml_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {_KEY_FOR_FIELD.get(k, k): _yaml_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_yaml_keys(v) for v in node]
    if isinstance(node, OverrideText):  # a section no method typed yet
        return node.parsed
    return node


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def config_hash(cfg: Config) -> str:
    """A short fingerprint of the resolved config, to tell runs apart."""
    blob = json.dumps(config_to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
