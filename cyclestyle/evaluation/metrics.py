"""Image-quality metrics for held-out evaluation, as pure functions of tensors.

- FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) compare the *distributions* of
  translated and real images of the target domain, in the feature space of an image network:
  the TensorFlow InceptionV3 of 2015-12-05 that every published FID uses (``inception.py``,
  weights ``weights-inception-2015-12-05-6726825d.pth``). How images are resized to its 299×299
  input moves FID by whole points (Parmar, Zhang and Zhu, CVPR 2022), so it follows a named
  protocol (``FID_PROTOCOLS``), written beside the numbers. Any module mapping uint8 N×3×H×W
  images to N×D features can stand in for the network (the tests use a small one), so the
  computation itself is always exercised.
- KID is unbiased and meaningful for small test sets, where FID is biased upwards; with fewer
  images than the usual subset size of 1000, the subset size shrinks to the set size.
- PSNR and SSIM (via torchmetrics) measure paired fidelity when the true translation is known.

Images are float tensors in [0, 1] unless said otherwise.

torch and torchmetrics are imported inside the functions: the metric registry (``registry.py``)
refers to these functions and ``config`` reads the registry, so importing this module must stay
cheap (no torch) for a command that only loads a config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .protocols import DEFAULT_FID_PROTOCOL, FID_PROTOCOLS  # noqa: F401 (read by evaluate, reports, the CLI)

if TYPE_CHECKING:
    import torch
    from torch import nn

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
# torch hub's convention: a file named NAME-HASH.EXT has a SHA-256 that begins with HASH.
INCEPTION_SHA256_PREFIX = re.search(r"-([0-9a-f]+)\.", INCEPTION_FILE).group(1)



def describe_fid_protocol(protocol: str) -> str:
    """How reports name an FID protocol: ``"FID/KID protocol clean: clean-fid's (…) …"``."""
    return f"FID/KID protocol {protocol}: {FID_PROTOCOLS[protocol]}"


class MissingWeightsError(RuntimeError):
    """Feature-extractor weights are not on this machine; the message says where to put them."""


class InceptionWeightsError(MissingWeightsError):
    """A weights file is there but unusable: not a plain state dict of the network's tensors, or
    not the file its name promises. A ``MissingWeightsError``, so that an evaluation goes on
    without FID/KID and says why in one line, as when the file is missing."""


# --------------------------------------------------------------------------------------------
# Feature extraction


def default_inception_path() -> Path:
    """Where torch-fidelity (and so torchmetrics) caches the FID Inception weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def read_inception_weights(path: Path) -> dict[str, torch.Tensor]:
    """The FID Inception's state dict from ``path`` (torch-fidelity's ``.pth``, or ``.safetensors``),
    read so that nothing in the file runs.

    A ``.pth`` is a pickle, and unpickling calls whatever it names: torch-fidelity and torchmetrics
    read it with ``torch.load(weights_only=False)``, so a file dropped in the shared hub cache
    would run code at every evaluation. ``weights_only=True`` admits tensors and plain containers
    only. A file named ``INCEPTION_FILE`` must also have the SHA-256 its name begins with: that
    catches a corrupt or substituted download (the hash is short: ``weights_only`` is the guard).
    """

    from ..models.weights import StateDictError, hub_hash_mismatch, read_state_dict

    if path.name == INCEPTION_FILE and (actual := hub_hash_mismatch(path, INCEPTION_SHA256_PREFIX)) is not None:
        raise InceptionWeightsError(
            f"Inception weights {path} are not torch-fidelity's {INCEPTION_FILE}: their SHA-256 begins "
            f"{actual}, not {INCEPTION_SHA256_PREFIX}; replace the file")

    try:
        state = read_state_dict(path)
    except StateDictError as e:
        raise InceptionWeightsError(f"cannot read Inception weights {path}: {e}") from None
    return state


def load_inception(weights: str | Path | None = None, protocol: str = DEFAULT_FID_PROTOCOL) -> nn.Module:
    """The FID InceptionV3 (2048-d pool features) from ``weights`` or the local cache, resizing
    images as the FID ``protocol`` (a key of ``FID_PROTOCOLS``) does.

    Never downloads: on a machine without the file this is a ``MissingWeightsError`` saying
    where the file goes, so an offline evaluation can report it and go on with other metrics.
    The file is read by ``read_inception_weights`` (nothing in it runs) and put into the
    network here, not by torch-fidelity, whose loader unpickles it.
    """
    if protocol not in FID_PROTOCOLS:
        raise ValueError(f"FID protocol must be one of {', '.join(FID_PROTOCOLS)}; got {protocol!r}")
    path = Path(weights).expanduser() if weights else default_inception_path()
    if not path.is_file():
        raise MissingWeightsError(
            f"no Inception weights at {path}: FID/KID need {INCEPTION_FILE} (torch-fidelity's FID "
            f"InceptionV3) there, or --inception-weights PATH")
    state = read_inception_weights(path)
    from .inception import FIDInception

    net = FIDInception(protocol)
    expected = net.network.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the logits: not used by FID
    for key, tensor in expected.items():
        if key not in state:
            raise InceptionWeightsError(f"Inception weights {path} lack {key}: not torch-fidelity's FID InceptionV3")
        if state[key].shape != tensor.shape:
            raise InceptionWeightsError(f"Inception weights {path}: {key} has shape {tuple(state[key].shape)}, "
                                        f"the network has {tuple(tensor.shape)}")
    unknown = sorted(set(state) - set(expected))
    if unknown:
        raise InceptionWeightsError(f"Inception weights {path} hold {unknown[0]}, which the FID InceptionV3 has not")
    net.network.load_state_dict(state)
    return net.eval().requires_grad_(False)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats to the uint8 images Inception-style extractors take."""
    return (images.clamp(0, 1) * 255).round().byte()


def extract_features(extractor: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str = "cpu"
                     ) -> torch.Tensor:
    """Stack the extractor's features (float64, for stable covariances) of [0, 1] image batches."""
    import torch

    with torch.inference_mode():
        extractor = extractor.to(device)
        feats = [extractor(to_uint8(b).to(device)).reshape(b.shape[0], -1).double().cpu() for b in batches]
        return torch.cat(feats) if feats else torch.empty(0, 0, dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# Distribution metrics on features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two N×D feature sets: ‖μ_r − μ_f‖² + tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½).

    clean-fid's ``frechet_distance`` (Parmar, Zhang and Zhu, CVPR 2022), the same code as
    pytorch-fid's and the TensorFlow original's (scipy's ``sqrtm``), on float64 means and
    covariances; a tiny negative value (identical sets, rounding) is 0.
    """
    import numpy as np
    from cleanfid.fid import frechet_distance as cleanfid_frechet_distance

    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("FID needs at least 2 images per set")
    r, f = real.double().cpu().numpy(), fake.double().cpu().numpy()
    value = cleanfid_frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))
    return max(0.0, float(value))


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD² with the cubic kernel k(x, y) = (x·y / d + 1)³, averaged over
    random subsets; returns (mean, std). The subset size shrinks to the smaller set's size.

    Each subset's MMD² is clean-fid's ``kernel_distance`` (the same estimator as torch-fidelity's)
    given that subset whole. The subsets are drawn here, from ``seed``: clean-fid draws its own
    from NumPy's global generator and returns no spread, so a KID would not repeat and ``kid_std``
    would not exist; given a whole subset, its draw only reorders it, which leaves the value as it
    is. NumPy's global state is restored after, so that a run's random stream does not depend on
    its evaluations.
    """
    import numpy as np
    import torch
    from cleanfid.fid import kernel_distance

    n = min(real.shape[0], fake.shape[0], subset_size)
    if n < 2:
        raise ValueError("KID needs at least 2 images per set")
    r, f = real.double().cpu().numpy(), fake.double().cpu().numpy()
    g = torch.Generator().manual_seed(seed)
    state = np.random.get_state()
    try:
        values = [kernel_distance(r[torch.randperm(len(r), generator=g)[:n].numpy()],
                                  f[torch.randperm(len(f), generator=g)[:n].numpy()],
                                  num_subsets=1, max_subset_size=n)
                  for _ in range(subsets)]
    finally:
        np.random.set_state(state)
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------------------------
# Paired metrics


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of [0, 1] images, averaged over the batch."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    per_image = peak_signal_noise_ratio(prediction, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return float(per_image.mean())


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Structural similarity (Gaussian window 11, σ 1.5) of [0, 1] images, averaged over the batch."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return float(structural_similarity_index_measure(prediction, target, data_range=1.0))


def mean_absolute_error(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean |prediction − target| on the [0, 1] pixel scale (the held-out cycle-consistency error)."""
    return float((prediction - target).abs().mean())
