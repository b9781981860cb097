"""The held-out metrics, each registered once and read by everything that measures or reports.

``eval.metric`` validation, evaluation during training (the best checkpoint), ``cyclestyle
evaluate``, ``cyclestyle compare`` and every report take a metric's name, which way is better,
what it needs and how it is computed from its ``Metric`` here. A new metric is therefore its
pure function (``metrics.py``) and one ``register`` call.

Importing this module is cheap (no torch): ``training/configure.py`` checks ``eval.metric`` with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..registry import Registry
from . import metrics

if TYPE_CHECKING:
    from torch import Tensor

Better = Literal["min", "max"]
# What ``compute``'s two arguments are, and so how the metric is aggregated:
#   "truth"           (translated image, its true translation): mean over the images that have one
#   "reconstruction"  (reconstruction F(G(x)), x): mean over every image; needs the other generator
#   "input"           (translated image, x): mean over every image
#   "features"        (real target-domain features, translated images' features): once per set,
#                     with the FID Inception network
Need = Literal["truth", "reconstruction", "input", "features"]


@dataclass(frozen=True)
class Metric:
    """One held-out metric. ``compute`` is a pure function of two tensors (``needs`` says which;
    images are 1×C×H×W in [0, 1], features N×D) returning the value, or a tuple of the value and
    its ``companions`` (KID's standard deviation is written as ``kid_std``)."""

    name: str
    better: Better
    needs: Need
    compute: Callable[[Tensor, Tensor], float | tuple[float, ...]]
    label: str  # the column heading in reports, e.g. "PSNR (dB)"
    description: str
    companions: tuple[str, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """The keys this metric writes into ``metrics.json``: its name, then its companions."""
        return (self.name, *self.companions)

    def measure(self, first: Tensor, second: Tensor) -> dict[str, float]:
        """``compute`` as ``{output: value}``."""
        value = self.compute(first, second)
        values = value if isinstance(value, tuple) else (value,)
        if len(values) != len(self.outputs):
            raise ValueError(f"metric {self.name} returned {len(values)} values for {', '.join(self.outputs)}")
        return {key: float(v) for key, v in zip(self.outputs, values)}


class MetricError(ValueError):
    """An unknown metric name, or a metric whose name or outputs clash; one line."""


METRICS: Registry[Metric] = Registry("metric", MetricError)
RESERVED = ("n",)  # keys that ``metrics.json`` uses for other things


def register(metric: Metric) -> Metric:
    """Add ``metric`` after the others (reports show metrics in registration order)."""
    if "/" in metric.name:
        raise MetricError(f"metric name {metric.name!r}: no '/' (eval.metric reads AtoB/NAME as one direction's)")
    clash = ({key for m in METRICS.values() for key in m.outputs} | set(RESERVED)).intersection(metric.outputs)
    if clash:
        raise MetricError(f"metric {metric.name}: {', '.join(sorted(clash))} already used")
    return METRICS.register(metric.name, metric)


def unregister(name: str) -> None:
    METRICS.unregister(name)


def registered(needs: Iterable[Need] | None = None) -> tuple[Metric, ...]:
    """Every metric in registration order, or those that need one of ``needs``."""
    wanted = None if needs is None else set(needs)
    return tuple(m for m in METRICS.values() if wanted is None or m.needs in wanted)


get = METRICS.get


def outputs(chosen: Iterable[Metric]) -> tuple[str, ...]:
    """The keys ``chosen`` write, in order (``fid, kid, kid_std, …``)."""
    return tuple(key for m in chosen for key in m.outputs)


def group_name(chosen: Iterable[Metric]) -> str:
    """``"fid/kid"``: how notes and reports name a group of metrics."""
    return "/".join(m.name for m in chosen)


# --------------------------------------------------------------------------------------------
# Aggregation


@dataclass(frozen=True)
class Images:
    """One held-out image and what was made of it, 1×C×H×W in [0, 1] on one device; None where
    there is none (no true translation; no reconstruction in ``compare``)."""

    input: Tensor
    translated: Tensor
    reconstructed: Tensor | None = None
    truth: Tensor | None = None

    def pair(self, need: Need) -> tuple[Tensor, Tensor] | None:
        """``compute``'s arguments for a per-image metric, or None where one is missing."""
        if need == "truth":
            return None if self.truth is None else (self.translated, self.truth)
        if need == "reconstruction":
            return None if self.reconstructed is None else (self.reconstructed, self.input)
        if need == "input":
            return self.translated, self.input
        return None  # "features" are measured on the whole set


def measure_image(chosen: Iterable[Metric], images: Images) -> dict[str, float]:
    """The per-image metrics among ``chosen`` on one image, leaving out those that lack an input."""
    values: dict[str, float] = {}
    for metric in chosen:
        pair = images.pair(metric.needs)
        if pair is not None:
            values |= metric.measure(*pair)
    return values


def means(per_image: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each key's mean over the images that have it."""
    collected: dict[str, list[float]] = {}
    for values in per_image:
        for key, value in values.items():
            collected.setdefault(key, []).append(value)
    return {key: sum(v) / len(v) for key, v in collected.items()}


def measure_sets(chosen: Iterable[Metric], real: Tensor, translated: Tensor
                 ) -> tuple[dict[str, float], dict[str, str]]:
    """The feature metrics among ``chosen``, translated set against real set, and for each that
    cannot be computed (too few images) why not."""
    values: dict[str, float] = {}
    failed: dict[str, str] = {}
    for metric in chosen:
        if metric.needs == "features":
            try:
                values |= metric.measure(real, translated)
            except ValueError as e:
                failed[metric.name] = str(e)
    return values, failed


def failure_note(failed: Mapping[str, str]) -> str:
    """``"fid/kid not computed: FID needs at least 2 images per set; …"``."""
    return f"{'/'.join(failed)} not computed: {'; '.join(dict.fromkeys(failed.values()))}"


# --------------------------------------------------------------------------------------------
# The metrics


register(Metric(
    name="fid", better="min", needs="features", compute=metrics.frechet_distance, label="FID",
    description="Fréchet Inception distance of the translated images to the real ones of the target domain"))
register(Metric(
    name="kid", better="min", needs="features", compute=metrics.kernel_inception_distance, label="KID",
    companions=("kid_std",),
    description="kernel Inception distance (unbiased, for small sets); kid_std: its spread over subsets"))
register(Metric(
    name="cycle_l1", better="min", needs="reconstruction", compute=metrics.mean_absolute_error,
    label="cycle L1", description="mean |F(G(x)) − x| on the [0, 1] pixel scale"))
register(Metric(
    name="psnr", better="max", needs="truth", compute=metrics.psnr, label="PSNR (dB)",
    description="peak signal-to-noise ratio of the translation against the true one"))
register(Metric(
    name="ssim", better="max", needs="truth", compute=metrics.ssim, label="SSIM",
    description="structural similarity of the translation to the true one"))
