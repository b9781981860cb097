"""Generators saved by the official CycleGAN code, and by CUT's, converted to this toolkit's
weights files.

The official ``networks.ResnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix, and its
anti-aliased variant in taesungp/contrastive-unpaired-translation) is one ``model`` Sequential;
ours splits the same modules, in the same order, into ``stem``, ``down``, ``blocks``, ``up`` and
``head`` (``models/resnet.py``), so official module ``model.i`` is the i-th of ours counted
through those five. With ``n`` residual blocks, CycleGAN's indices read:

    model.1                 7×7 conv after ReflectionPad2d(3)       -> stem.1
    model.4, model.7        the two stride-2 convs                  -> down.0, down.3
    model.{10+i}.conv_block.j   residual block i (same inner layout) -> blocks.{i}.body.j
    model.{10+n}, model.{13+n}  the two transposed convs            -> up.0, up.3
    model.{17+n}            the last 7×7 conv (then tanh)           -> head.1

CUT's generator is anti-aliased by default: each down-sampling stage has a fourth module, a
blur-pool whose fixed filter is the buffer ``model.7.filt`` (and ``model.11.filt``), so its blocks
start at ``model.12``; each up-sampling stage is a blur up-sampling (``model.{12+n}.filt``) then a
3×3 conv. Those filters are what tells the two apart; they must be the reference's own
(``models/antialias.py``). CUT's ``latest_net_G.pth`` converts to a ``resnet`` generator with
``no_antialias``/``no_antialias_up`` false, tensor for tensor.

With instance norm the official convolutions keep their bias, as ours do (``layers.conv_bias``), so
the converted file is an ordinary ``resnet`` generator and every command takes it. ngf, the block
count, dropout, the anti-aliasing and the channel counts are read from the tensors. Files saved by
old PyTorch versions carry ``running_mean``/``running_var``/``num_batches_tracked`` for the instance
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
import shutil
import tarfile
from pathlib import Path

import torch

from ..config import ModelConfig
from ..files import check_output, refuse_output_over_input
from .download import CUT_PRETRAINED, cache_dir, cut_archive_member, fetch, file_name, pretrained_url
from ..models import GENERATORS, ArchitectureError, Budget, NetworkSpec, build_on_meta
from ..models.resnet import ResnetGenerator
from ..models.weights import (CheckpointError, StateDictError, read_state_dict, save_weights, unusable_tensor,
                              weights_metadata)

NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")
FIRST_BLOCK = 10  # index of the first residual block in the official Sequential (CycleGAN's)
FIRST_BLOCK_ANTIALIASED = 12  # in CUT's anti-aliased one: each down-sampling stage has a blur-pool more


class OfficialFormatError(CheckpointError):
    """A file that is not a generator of the official CycleGAN code; one line on what it is."""


class UnusableWeightsError(OfficialFormatError):
    """An official generator whose tensors cannot be weights (integer, complex, NaN, infinite)."""


def official_names(n_blocks: int, dropout: bool, antialias: bool = False, antialias_up: bool = False
                   ) -> dict[str, str]:
    """Official tensor name -> ours, for every tensor (weights, biases, blur filters) of a ResNet
    generator with ``n_blocks``, anti-aliased as CUT's when ``antialias``/``antialias_up``."""
    with torch.device("meta"):
        net = ResnetGenerator(3, 3, ngf=4, n_blocks=n_blocks, dropout=dropout, no_antialias=not antialias,
                              no_antialias_up=not antialias_up)
    first, names = 0, {}
    for part in ("stem", "down", "blocks", "up", "head"):
        for key in getattr(net, part).state_dict():
            index, _, rest = key.partition(".")
            official_rest = rest.replace("body.", "conv_block.", 1) if part == "blocks" else rest
            names[f"model.{first + int(index)}.{official_rest}"] = f"{part}.{key}"
        first += len(getattr(net, part))
    return names


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
    antialias = "model.7.filt" in state  # CUT's blur-pool after the first down-sampling conv
    first = FIRST_BLOCK_ANTIALIASED if antialias else FIRST_BLOCK
    blocks = _block_indices(state)
    if blocks != list(range(first, first + len(blocks))):
        raise OfficialFormatError(f"its residual blocks are not model.{first}… in a row (found {blocks[:12]})")
    n_blocks, dropout = len(blocks), f"model.{first}.conv_block.6.weight" in state
    antialias_up = f"model.{first + n_blocks}.filt" in state  # CUT's blur up-sampling
    names = official_names(n_blocks, dropout, antialias, antialias_up)
    unexpected, missing = sorted(set(state) - set(names)), sorted(set(names) - set(state))
    if unexpected or missing:
        what = f"unexpected {', '.join(unexpected[:3])}" if unexpected else f"missing {', '.join(missing[:3])}"
        raise OfficialFormatError(f"it is not a ResNet generator with {n_blocks} blocks: {what}")
    head = state[next(k for k, v in names.items() if v == "head.1.weight")]
    stem = state["model.1.weight"]
    settings = {"ngf": stem.shape[0], "n_blocks": n_blocks, "norm": "instance", "dropout": dropout,
                "upsample": "transpose", "no_antialias": not antialias, "no_antialias_up": not antialias_up}
    spec = NetworkSpec("generator", "resnet", stem.shape[1], head.shape[0], GENERATORS.get("resnet").arguments(settings))
    _check_shapes(state, names, spec)
    problem = unusable_tensor(state)
    if problem:
        raise UnusableWeightsError(problem)
    _check_filters(state, names, spec)
    return {names[k]: v for k, v in state.items()}, spec


def _check_filters(state: dict[str, torch.Tensor], names: dict[str, str], spec: NetworkSpec) -> None:
    """The blur filters are fixed, not learnt: a file whose filters are not the reference's
    binomial ones is another network, refused rather than run as if it were CUT's."""
    filters = {k: v for k, v in state.items() if k.endswith(".filt")}
    if not filters:
        return
    with torch.device("meta"):
        net = spec.build()
    for key, value in filters.items():
        layer = net.get_submodule(names[key].rpartition(".")[0])
        expected = type(layer)(value.shape[0], size=value.shape[-1]).filt
        if not torch.allclose(value.float(), expected, atol=1e-6):
            raise OfficialFormatError(f"tensor {key} is not the reference's fixed blur filter "
                                      f"({type(layer).__name__} of models/antialias.py)")


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
        raise OfficialFormatError(f"not an official CycleGAN, pix2pix or CUT generator: {e}") from None


def fetch_official(name: str, progress: bool = True) -> Path:
    """The official pretrained generator ``name`` (``download.PRETRAINED``, ``PIX2PIX_PRETRAINED``
    or ``CUT_PRETRAINED``),
    downloaded into the cache unless it is there, as a ``.pth`` file: it enters the cache only once
    it loads as an official generator (``check_official_file``), and a cached file that does not
    is fetched again. A CUT model is taken out of CUT's archive, which is cached whole (one
    download serves all six)."""
    raw = cache_dir() / "downloads" / f"{file_name(name)}.pth"
    if name not in CUT_PRETRAINED:
        return fetch(pretrained_url(name), raw, progress=progress, verify=check_official_file)
    if raw.is_file():
        try:
            check_official_file(raw)
            return raw
        except OfficialFormatError:
            raw.unlink()
    archive = fetch(pretrained_url(name), cache_dir() / "downloads" / "CUT_pretrained_models.tar", progress=progress,
                    verify=lambda path: _archive_member(path, name))
    _unpack(archive, _archive_member(archive, name), raw)
    check_official_file(raw)
    return raw


def _archive_member(archive: Path, name: str) -> str:
    """The name of model ``name``'s generator in CUT's archive (with or without a leading ./), or
    ``OfficialFormatError``: not a tar, or no such member."""
    wanted = cut_archive_member(name)
    try:
        with tarfile.open(archive) as tar:
            members = [m.name for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError) as e:
        raise OfficialFormatError(f"{archive} is not a tar archive ({e})") from None
    found = [m for m in members if m.removeprefix("./") == wanted]
    if not found:
        raise OfficialFormatError(f"{archive} holds no {wanted}")
    return found[0]


def _unpack(archive: Path, member: str, dest: Path) -> None:
    """One member's bytes written to ``dest`` (atomically), whatever path the archive gives it."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(archive) as tar, tar.extractfile(member) as source, tmp.open("wb") as out:
            shutil.copyfileobj(source, out)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


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
        raise OfficialFormatError(f"{source}: not an official CycleGAN, pix2pix or CUT generator: {e}") from None
    meta = weights_metadata(model_config_of(spec), None, spec)
    origin = official_origin(spec)
    meta["cyclestyle.source"] = f"official {origin}: {source.name}"
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


def official_origin(spec: NetworkSpec) -> str:
    """Which official code saved a generator: pix2pix's U-Nets, CUT's anti-aliased ResNets, or
    CycleGAN's (what the weights file records as its source, and ``import-official`` says)."""
    if spec.name.startswith("unet"):
        return "pix2pix"
    a = spec.arguments
    return "CycleGAN" if a.get("no_antialias", True) and a.get("no_antialias_up", True) else "CUT"
