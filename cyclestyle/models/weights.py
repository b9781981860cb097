"""Network weights on disk: safetensors files that carry what is needed to rebuild the network.

A generator file (``G_A.safetensors``) holds its tensors and, in the safetensors metadata, its
architecture's registered name and arguments (``NetworkSpec``) and the run's model config, so that
it loads without the run folder or the training code, whatever architecture it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ConfigError, config_from_dict, read_config
from . import ArchitectureError, NetworkSpec, generator_spec
from .limits import Budget, NetworkTooLarge, build_on_meta


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or unreadable, named in one line."""


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:  # what the file system refused, as the OSError it is
        reason = re.search(r"I/O error: (.+?)(?: \(os error \d+\))?(?: at path .*)?$", str(e))
        raise OSError(None, reason.group(1) if reason else str(e).splitlines()[0], str(path)) from None


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"missing weights file {path}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(_corrupt(path, e)) from None


def _corrupt(path: Path, error: Exception) -> str:
    """One line on a weights file safetensors cannot read: an empty file (an interrupted copy or
    download) says so, and a PyTorch pickle is pointed at the command that converts one."""
    size = _size(path)
    if size == 0:
        return f"weights file {path} is empty (0 bytes): an interrupted copy or download?"
    if Path(path).suffix == ".pth" and size:
        return (f"{path} is not a cyclestyle weights file (.safetensors); an official CycleGAN .pth converts "
                f"with: cyclestyle import-official {path} --output NAME.safetensors")
    return f"corrupt weights file {path}: {error}"


def _size(path: Path) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def weights_metadata(model_config: dict[str, Any], step: int | None, network: NetworkSpec | None = None
                     ) -> dict[str, str]:
    """safetensors metadata (str → str) that lets a network file be rebuilt on its own: the run's
    model config, the step (None: not trained here, e.g. an imported file), and (``network``) the
    network's own architecture name and arguments."""
    meta = {"format": "pt", "cyclestyle.model": json.dumps(model_config)}
    if step is not None:
        meta["cyclestyle.step"] = str(step)
    if network is not None:
        meta["cyclestyle.network"] = network.to_json()
    return meta


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"missing weights file {path}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(_corrupt(path, e)) from None


def read_step(path: Path) -> int | None:
    """The training step a weights file was saved at, if it says."""
    step = read_metadata(path).get("cyclestyle.step")
    return int(step) if step is not None and step.isdigit() else None


def generator_spec_of(path: Path) -> NetworkSpec:
    """What rebuilds the generator in ``path``: its own network description (files since the
    registry), else the run's model config in its metadata (cyclestyle 0.1 files: G_B is the
    reverse direction), else the ``config.yaml`` beside it."""
    meta = read_metadata(path)
    reverse = path.stem.startswith("G_B")
    try:
        if "cyclestyle.network" in meta:
            spec = NetworkSpec.from_json(meta["cyclestyle.network"])
            if spec.kind != "generator":
                raise ValueError(f"it holds a {spec.kind}, not a generator")
            return spec
        if "cyclestyle.model" in meta:
            model = config_from_dict({"model": json.loads(meta["cyclestyle.model"])}).model
            return generator_spec(model, reverse)
    except (ValueError, TypeError, ConfigError, ArchitectureError) as e:  # json errors are ValueErrors
        raise CheckpointError(f"{path}: unusable model metadata: {str(e).splitlines()[0]}") from None
    if (path.parent / "config.yaml").is_file():
        return generator_spec(read_config(path.parent / "config.yaml").model, reverse)
    raise CheckpointError(f"{path} carries no cyclestyle model metadata and has no config.yaml beside it")


def load_generator(path: str | Path, device: str | torch.device = "cpu", spec: NetworkSpec | None = None
                   ) -> nn.Module:
    """Rebuild a generator from its ``.safetensors`` file (``spec``, or ``generator_spec_of`` the
    file), in eval mode. Any registered architecture; an unknown name is a ``CheckpointError``
    naming the registered ones."""
    path = Path(path)
    spec = spec or generator_spec_of(path)
    stored = _tensor_shapes(path)
    try:  # shapes first, on the meta device, and only as far as the file's own size reaches:
        # metadata that declares a huge network (n_blocks 10000, ngf 10**9) allocates nothing
        built = build_on_meta(spec.build, Budget.of_file(stored)).state_dict()
    except NetworkTooLarge as e:
        raise CheckpointError(f"{path} does not match its own model metadata ({spec.describe()}): {e}; "
                              f"the file holds {len(stored)} tensors of {sum(map(math.prod, stored.values())):,} numbers"
                              ) from None
    except (ArchitectureError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its model metadata ({spec.describe()}): {str(e).splitlines()[0]}") from None
    expected = {k: tuple(v.shape) for k, v in built.items()}
    dtypes = {k: v.dtype for k, v in built.items()}
    if stored != expected:
        wrong = sorted(set(stored) ^ set(expected)) or sorted(k for k in stored if stored[k] != expected[k])
        raise CheckpointError(f"{path} does not match its own model metadata ({spec.name}: {', '.join(wrong[:3])} …)")
    state = load_weights(path)
    problem = unusable_tensor(state, dtypes)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    net = spec.build()
    net.load_state_dict(state)
    return net.to(device).eval()


def unusable_tensor(state: dict[str, torch.Tensor], dtypes: dict[str, torch.dtype] | None = None) -> str | None:
    """Why a tensor of ``state`` cannot be a network's weights (the first such, named), or None.

    Weights are floating point and finite as the network holds them (``dtypes``: its own, e.g.
    float32; a float64 value beyond float32's range would load as infinity). An integer, boolean
    or complex tensor would be cast silently by ``load_state_dict``, and a NaN or an infinity
    spreads through instance norm to a flat image: both are refused. A tensor that the network
    itself holds as integers (batch norm's ``num_batches_tracked``) must be an integer one."""
    dtypes = dtypes or {}
    for key, tensor in state.items():
        wanted = dtypes.get(key, tensor.dtype if tensor.is_floating_point() else torch.float32)
        if not wanted.is_floating_point:
            if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
                return f"tensor {key} is {_dtype_name(tensor)}; the network holds it as {_dtype_name(wanted)}"
            continue
        if not tensor.is_floating_point():
            return f"tensor {key} is {_dtype_name(tensor)}: weights must be finite floating point numbers"
        if not bool(torch.isfinite(tensor.to(wanted)).all()):
            what = "NaN" if bool(torch.isnan(tensor).any()) else "infinite values"
            return f"tensor {key} holds {what}: weights must be finite floating point numbers"
    return None


def _dtype_name(tensor_or_dtype: torch.Tensor | torch.dtype) -> str:
    dtype = tensor_or_dtype.dtype if isinstance(tensor_or_dtype, torch.Tensor) else tensor_or_dtype
    return str(dtype).removeprefix("torch.")


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape, from the file's header."""
    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def hub_hash_mismatch(path: Path, expected: str | None = None) -> str | None:
    """For a file named as torch hub names downloads, NAME-HASH.EXT, where HASH begins its
    SHA-256 (``vgg19-dcbb9e9d.pth``): None if the digest begins with ``expected`` (by default the
    name's HASH; None too if the name carries none), else what the digest begins with. Catches a
    truncated or substituted download; the hash is short, so ``weights_only`` reading stays the
    guard against a malicious file."""
    named = re.search(r"-([0-9a-f]{6,})\.[^.]+$", path.name)
    expected = expected or (named.group(1) if named else None)
    if expected is None:
        return None
    stat = path.stat()
    actual = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return None if actual.startswith(expected) else actual[:len(expected)]


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's SHA-256, read once per process while the file is unchanged (its size and
    modification time are part of the key): a half-gigabyte VGG file is checked where a command
    first validates its options and again where it loads the network."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class StateDictError(ValueError):
    """A weights file of another program that cannot be read as a state dict; one line why."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a file saved by another program (torchvision's VGG19, torch-fidelity's
    Inception): a ``.safetensors`` file, or a ``.pth``/``.pt`` read with ``weights_only=True``.
    A .pth is a pickle, and unpickling calls whatever it names: ``weights_only`` admits tensors and
    plain containers only, so a crafted file runs nothing. A whole checkpoint's ``state_dict``
    entry is taken. Any failure is a ``StateDictError`` with one line why."""
    if _size(path) == 0:  # torch would say only "EOFError"
        raise StateDictError("it is empty (0 bytes): an interrupted copy or download?")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on a pickle protocol: the line below says it all
            warnings.simplefilter("ignore")
            if path.suffix == ".safetensors":
                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StateDictError(load_failure(path, e)) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StateDictError("not a state dict (a dict of tensors)")
    problem = _not_a_plain_tensor(state)
    if problem:
        raise StateDictError(problem)
    return state


def _not_a_plain_tensor(state: dict) -> str | None:
    """Why ``state`` is not a dict of names to plain tensors (the first key or tensor that is
    not), or None. A pickle may hold a view whose strides revisit its storage (stride 0): a 7 KB
    file then declares a tensor of hundreds of gigabytes, which any computation on it, or
    ``contiguous()`` on saving, would allocate. Each tensor must fit in the storage it has."""
    for key, tensor in state.items():
        if not isinstance(key, str):
            return f"its key {str(key)[:40]!r} ({type(key).__name__}) is not a tensor name: not a state dict"
        if tensor.layout != torch.strided:
            return f"tensor {key} is {str(tensor.layout).removeprefix('torch.')}, not a plain tensor"
        stored = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)
        if tensor.numel() > stored:
            return (f"tensor {key} declares {tensor.numel():,} numbers ({'×'.join(map(str, tensor.shape))}) over "
                    f"{stored:,} stored: a view that repeats its storage (stride {tuple(tensor.stride())}), refused")
    return None


SAFE_MODULES = ("torch", "collections", "_codecs")  # what a state dict's pickle names
SAFE_BUILTINS = ("set", "frozenset", "bytearray", "slice", "complex", "range")


def _unsafe_global(path: Path) -> str | None:
    """The first callable outside torch's own that the pickle in ``path`` names (``posix.system``),
    read with ``pickletools``, which parses opcodes and runs nothing; None if none or not a plain
    pickle (a torch.save zip archive: torch's refusal names it). Torch cannot parse every
    protocol's opcodes, and then says only "Unsupported operand"."""
    import pickletools

    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for opcode, argument, _ in pickletools.genops(f):
                if opcode.name in ("GLOBAL", "INST"):
                    module, name = str(argument).split(" ", 1)
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    module, name = strings[-2], strings[-1]
                else:
                    if isinstance(argument, str):
                        strings.append(argument)
                    continue
                if module.split(".")[0] not in SAFE_MODULES and not (module == "builtins" and name in SAFE_BUILTINS):
                    return f"{module}.{name}"
    except Exception:  # not a pickle, or one cut short: torch's refusal says why
        return None
    return None


def load_failure(path: Path, error: Exception) -> str:
    """One line on why ``torch.load(path, weights_only=True)`` refused a file (torch's own message
    spans a dozen lines, and suggests loading the file unsafely): the callable it names, if any."""
    called = _unsafe_global(path)
    if called:
        return f"it is not a plain state dict: it names {called}, which unpickling would call (refused)"
    return _load_failure(error)


def _load_failure(error: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    # torch words it "Unsupported global: GLOBAL posix.system was not an allowed global" or "Trying
    # to load unsupported GLOBAL posix.system whose module posix is blocked", by version
    unsafe = re.search(r"GLOBAL ([\w.]+)", text)
    if unsafe:
        return f"it is not a plain state dict: it names {unsafe.group(1)}, which unpickling would call (refused)"
    reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if reason:  # not a pickle torch can read without running code (garbage, a truncated file …)
        return f"not a weights file torch can read safely ({reason.group(1).strip()})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):  # then torch advises an unsafe load: not that
        return "not a weights file torch can read safely: it holds something besides tensors and plain containers"
    return lines[0] if lines else type(error).__name__
