"""Generators saved by the official CycleGAN code, converted to this toolkit's weights files.

The official ``networks.ResnetGenerator`` is one ``model`` Sequential; ours splits the same layers
into ``stem``, ``down``, ``blocks``, ``up`` and ``head`` (``models/resnet.py``). With ``n`` residual
blocks the official indices read:

    model.1                 7×7 conv after ReflectionPad2d(3)       -> stem.1
    model.4, model.7        the two stride-2 convs                  -> down.0, down.3
    model.{10+i}.conv_block.j   residual block i (same inner layout) -> blocks.{i}.body.j
    model.{10+n}, model.{13+n}  the two transposed convs            -> up.0, up.3
    model.{17+n}            the last 7×7 conv (then tanh)           -> head.1

With instance norm the official convolutions keep their bias, as ours do (``layers.conv_bias``), so
the converted file is an ordinary ``resnet`` generator and every command takes it. ngf, the block
count, dropout and the channel counts are read from the tensors' shapes. Files saved by old
PyTorch versions carry ``running_mean``/``running_var``/``num_batches_tracked`` for the instance
norm layers, which hold no state: they are dropped, as the official loader does.

pix2pix's U-Net generators (``unet_128``, ``unet_256``: keys ``model.model.…``) need no key map:
``models/unet.py`` nests its layers as the official code does, so the state dict loads as it is,
batch-norm running statistics included (``convert_unet``). The stage count, ngf, channels and
norm are read from the tensors; dropout holds no tensor, and is on, as the official pix2pix
trains it (``--no_dropout`` off), so that ``translate --dropout`` can draw with it. Anything else
(a discriminator, a ResNet with batch norm, a renamed layer) is refused in one line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import torch

from ..config import ModelConfig
from ..files import check_output, refuse_output_over_input
from .download import cache_dir, fetch, file_name, pretrained_url
from ..models import GENERATORS, ArchitectureError, Budget, NetworkSpec, build_on_meta
from ..models.weights import (CheckpointError, StateDictError, read_state_dict, save_weights, unusable_tensor,
                              weights_metadata)

NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
FIRST_BLOCK = 10  # index of the first residual block in the official Sequential


class OfficialFormatError(CheckpointError):
    """A file that is not a generator of the official CycleGAN code; one line on what it is."""


class UnusableWeightsError(OfficialFormatError):
    """An official generator whose tensors cannot be weights (integer, complex, NaN, infinite)."""


def official_names(n_blocks: int, dropout: bool) -> dict[str, str]:
    """Official layer name -> ours, for every convolution of a ResNet generator with ``n_blocks``."""
    layers = {"model.1": "stem.1", "model.4": "down.0", "model.7": "down.3",
              f"model.{FIRST_BLOCK + n_blocks}": "up.0", f"model.{FIRST_BLOCK + n_blocks + 3}": "up.3",
              f"model.{FIRST_BLOCK + n_blocks + 7}": "head.1"}
    second_conv = 6 if dropout else 5  # the official block inserts Dropout at index 4, as ours does
    for i in range(n_blocks):
        for j in (1, second_conv):
            layers[f"model.{FIRST_BLOCK + i}.conv_block.{j}"] = f"blocks.{i}.body.{j}"
    return {f"{old}.{p}": f"{new}.{p}" for old, new in layers.items() for p in ("weight", "bias")}


def without_norm_statistics(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` less the running statistics of layers that have no weight of their own (instance
    norm saved by PyTorch < 0.4); a batch norm layer keeps them, and is refused later."""
    def stateless(key: str) -> bool:
        layer, _, name = key.rpartition(".")
        return name in NORM_STATISTICS and f"{layer}.weight" not in state

    return {k: v for k, v in state.items() if not stateless(k)}


def _what_it_is(state: dict[str, torch.Tensor]) -> str | None:
    """A one-line guess at a file that is not an official ResNet generator, or None."""
    keys = list(state)
    if not keys:
        return "it holds no tensors"
    if not all(k.startswith("model.") for k in keys):
        odd = next(k for k in keys if not k.startswith("model."))
        return f"its keys are not the official generator's model.N.… (found {odd})"
    blurs = [k for k in keys if re.fullmatch(r"model\.\d+\.filt", k)]
    if blurs:  # CUT's Downsample/Upsample keep their blur kernel as a buffer (Park et al. 2020)
        return (f"it is a CUT generator (anti-aliased: blur filters at {', '.join(blurs[:2])}…), "
                "not the official CycleGAN ResnetGenerator that import-official converts")
    first = state.get("model.0.weight")
    if first is not None and first.ndim == 4 and tuple(first.shape[2:]) == (4, 4):
        return "it is a PatchGAN discriminator (4×4 convolution at model.0), not a generator"
    stem = state.get("model.1.weight")
    if stem is None or stem.ndim != 4 or tuple(stem.shape[2:]) != (7, 7):
        return "it has no 7×7 first convolution at model.1.weight, as the official ResnetGenerator does"
    if "model.2.weight" in state:
        return "its norm layers have weights (batch norm, --norm batch); only instance-norm generators convert"
    return None


def _block_indices(state: dict[str, torch.Tensor]) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.conv_block\..+", k))}
    return sorted(found)


UNET_STAGES = {7: "unet_128", 8: "unet_256"}  # the official U-Nets, by their number of stages


def convert_unet(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], NetworkSpec]:
    """An official U-Net's state dict -> (ours, key for key, running statistics kept; the spec).
    Files of PyTorch < 0.4.1 lack batch norm's ``num_batches_tracked``: it is added as 0, which
    is all it can be (it only counts updates, and no test-time computation reads it)."""
    stages = max(k.count(".model.") for k in state)  # the innermost block's keys nest deepest
    name = UNET_STAGES.get(stages)
    first = state.get("model.model.0.weight")
    if name is None or first is None or first.ndim != 4:
        raise OfficialFormatError(f"it is a U-Net of {stages} stages; the official ones have 7 (unet_128) or 8 "
                                  "(unet_256)")
    batch = "model.model.1.model.2.running_mean" in state
    out = state.get("model.model.3.weight")
    settings = {"ngf": first.shape[0], "norm": "batch" if batch else "instance", "dropout": True}
    spec = NetworkSpec("generator", name, first.shape[1], out.shape[1] if out is not None else 3,
                       GENERATORS.get(name).arguments(settings))
    with torch.device("meta"):
        built = spec.build().state_dict()
    expected = {k: tuple(v.shape) for k, v in built.items()}
    state = dict(state)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    unexpected, missing = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
    if unexpected or missing:
        what = f"unexpected {', '.join(unexpected[:3])}" if unexpected else f"missing {', '.join(missing[:3])}"
        raise OfficialFormatError(f"it is not a {name} generator: {what}")
    wrong = [k for k in state if tuple(state[k].shape) != expected[k]]
    if wrong:
        raise OfficialFormatError(f"tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, a {name} generator "
                                  f"of ngf {settings['ngf']} needs {expected[wrong[0]]}")
    problem = unusable_tensor(state, {k: v.dtype for k, v in built.items()})
    if problem:
        raise UnusableWeightsError(problem)
    return state, spec


def convert(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], NetworkSpec]:
    """An official generator's state dict -> (ours, the spec that rebuilds it): a ResNet's keys
    mapped, a U-Net's as they are (``convert_unet``). Pure: raises ``OfficialFormatError`` (one
    line) on anything it does not recognise."""
    if state and all(k.startswith("model.model.") for k in state):
        return convert_unet(state)
    state = without_norm_statistics(state)
    problem = _what_it_is(state)
    if problem:
        raise OfficialFormatError(problem)
    blocks = _block_indices(state)
    if blocks != list(range(FIRST_BLOCK, FIRST_BLOCK + len(blocks))):
        raise OfficialFormatError(f"its residual blocks are not model.{FIRST_BLOCK}… in a row (found {blocks[:12]})")
    n_blocks, dropout = len(blocks), f"model.{FIRST_BLOCK}.conv_block.6.weight" in state
    names = official_names(n_blocks, dropout)
    unexpected, missing = sorted(set(state) - set(names)), sorted(set(names) - set(state))
    if unexpected or missing:
        what = f"unexpected {', '.join(unexpected[:3])}" if unexpected else f"missing {', '.join(missing[:3])}"
        raise OfficialFormatError(f"it is not a ResNet generator with {n_blocks} blocks: {what}")
    stem, head = state["model.1.weight"], state[f"model.{FIRST_BLOCK + n_blocks + 7}.weight"]
    settings = {"ngf": stem.shape[0], "n_blocks": n_blocks, "norm": "instance", "dropout": dropout,
                "upsample": "transpose"}
    spec = NetworkSpec("generator", "resnet", stem.shape[1], head.shape[0], GENERATORS.get("resnet").arguments(settings))
    _check_shapes(state, names, spec)
    problem = unusable_tensor(state)
    if problem:
        raise UnusableWeightsError(problem)
    return {names[k]: v for k, v in state.items()}, spec


def _check_shapes(state: dict[str, torch.Tensor], names: dict[str, str], spec: NetworkSpec) -> None:
    """Every tensor has the shape the rebuilt network expects (built on the meta device, and only as
    far as the file's own size reaches)."""
    try:
        built = build_on_meta(spec.build, Budget.of_file({k: tuple(v.shape) for k, v in state.items()}))
    except ArchitectureError as e:  # NetworkTooLarge too
        raise OfficialFormatError(f"a ResNet generator of ngf {spec.arguments['ngf']} and {spec.arguments['n_blocks']} "
                                  f"blocks does not fit its tensors: {e}") from None
    expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    wrong = [k for k in state if tuple(state[k].shape) != expected[names[k]]]
    if wrong:
        raise OfficialFormatError(f"tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, a ResNet generator "
                                  f"of ngf {spec.arguments['ngf']} needs {expected[names[wrong[0]]]}")


def model_config_of(spec: NetworkSpec) -> dict:
    """The model config a run of this generator would have had, for the file's metadata."""
    arguments = {k: v for k, v in spec.arguments.items() if k in {f.name for f in dataclasses.fields(ModelConfig)}}
    return dataclasses.asdict(ModelConfig(generator=spec.name, in_channels=spec.in_channels,
                                          out_channels=spec.out_channels, **arguments))


def check_official_file(path: Path) -> NetworkSpec:
    """The spec of the official generator in ``path``, or ``OfficialFormatError`` (one line): it
    must load as a state dict (with ``weights_only``: nothing runs) and convert."""
    try:
        return convert(read_state_dict(path))[1]
    except UnusableWeightsError:
        raise
    except (StateDictError, OfficialFormatError) as e:
        raise OfficialFormatError(f"not an official CycleGAN generator: {e}") from None


def fetch_official(name: str, progress: bool = True) -> Path:
    """The official pretrained generator ``name`` (``download.PRETRAINED``), downloaded into the
    cache unless it is there, as a ``.pth`` file: it enters the cache only once it loads as an
    official generator (``check_official_file``), and a cached file that does not is fetched again."""
    raw = cache_dir() / "downloads" / f"{file_name(name)}.pth"
    return fetch(pretrained_url(name), raw, progress=progress, verify=check_official_file)


def import_official(source: str | Path, output: str | Path) -> NetworkSpec:
    """Convert the official generator file ``source`` (read with ``weights_only``, so it runs no
    code) into the weights file ``output``, written atomically; ``output`` may not be ``source``
    (what ``cyclestyle import-official`` does). Returns the network it holds; anything but an
    official ResNet generator is an ``OfficialFormatError`` naming the file."""
    source, output = Path(source), Path(output)
    refuse_output_over_input(output, [source], error=CheckpointError)
    check_output(output, folder=False, error=CheckpointError)
    try:
        state = read_state_dict(source)
        converted, spec = convert(state)
    except UnusableWeightsError as e:
        raise UnusableWeightsError(f"{source}: {e}") from None
    except (StateDictError, OfficialFormatError) as e:
        raise OfficialFormatError(f"{source}: not an official CycleGAN generator: {e}") from None
    meta = weights_metadata(model_config_of(spec), None, spec)
    meta["cyclestyle.source"] = f"official CycleGAN: {source.name}"
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        save_weights(tmp, converted, meta)
        os.replace(tmp, output)
    except OSError as e:
        raise CheckpointError(f"cannot write --output {output}: {(e.strerror or str(e)).lower()}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return spec
