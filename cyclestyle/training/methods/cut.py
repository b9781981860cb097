"""CUT and FastCUT (Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020): one generator, A→B only, kept faithful to its input by contrast
instead of by a second generator and a cycle.

One step, in the reference implementation's order (``optimize_parameters``):

1. Translate (``translate``): G(x) for real A, and G(y) for real B when the identity term is on
   (``cut.nce_idt``); FastCUT flips the inputs horizontally half the time (§4, flip-equivariance).
2. Discriminator (``discriminator_update``): D tells real B from the new G(x), LSGAN, halved as
   CycleGAN's. No history pool: the reference sets pool_size 0 and shows D the newest fakes.
3. Generator and projection heads (``generator_update``): λ_GAN·GAN(G(x)) + λ_NCE·PatchNCE(G(x), x)
   (eq. 5), averaged with PatchNCE(G(y), y) when the identity term is on. PatchNCE (eq. 2–3,
   ``patch_nce``) encodes G(x) and x with G's own encoder, takes ``cut.num_patches`` locations of
   each layer in ``cut.nce_layers``, projects them with that layer's two-layer MLP (the heads
   ``F``) and asks each patch of G(x) to pick out the patch of x at its own location among the
   other locations of the same image (``losses.patch_nce_loss``).

Where this differs from the reference code, and why:

- The projection heads are built with the networks, in-channels from a shape-only trace of the
  encoder, not lazily on the first batch: so the seed fixes them, every process starts with the
  same heads, and checkpoints hold them (``F.safetensors``) from the first one.
- Patch locations and the flip are drawn from generators seeded by (seed, step, image), not from
  NumPy's global stream: a resumed run draws the same ones with no state to save, and each image
  gets the locations it would get in any process layout, so two processes of batch 1 compute
  what one process of batch 2 does. The reference draws one set of locations per batch; at the
  paper's batch 1 the two are the same thing.
- One Adam over G and the heads (the reference has two with the same settings: Adam is
  per-parameter, so the updates are the same).
"""

from __future__ import annotations

import dataclasses
from itertools import chain
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from accelerate import Accelerator
from torch import nn

from ...config import Config, ConfigError
from ...models import NetworkSpec, NetworkTooLarge, build_on_meta, discriminator_spec, generator_spec
from ...models.layers import init_weights
from ...models.resnet import ResnetGenerator, cut_layer_index
from .. import losses
from ..draws import mixing_weights, step_generator
from ..update import set_requires_grad
from .base import METHODS, Group, Method


@dataclass(frozen=True)
class CutOptions:
    """The ``cut:`` section: CUT and FastCUT's objective, λ_GAN·GAN + λ_NCE·PatchNCE(G(x), x),
    averaged with PatchNCE(G(y), y) when ``nce_idt`` is on.

    ``null`` (the default) for ``lambda_nce``, ``nce_idt`` and ``flip_equivariance`` means the
    method's value (CUT: 1, on, off; FastCUT: 10, off, on: the reference's --CUT_mode), filled in
    when the config is checked.
    """

    lambda_gan: float = 1.0
    lambda_nce: float | None = None
    nce_idt: bool | None = None  # the identity term PatchNCE(G(y), y) on real B images
    # Encoder layers whose features are contrasted, numbered as in CUT's generator (its
    # --nce_layers; ``models.resnet.cut_layer_index`` maps them onto ours).
    nce_layers: list[int] = field(default_factory=lambda: [0, 4, 8, 12, 16])
    num_patches: int = 256  # locations sampled per layer and image
    nce_t: float = 0.07  # temperature τ of the contrastive logits
    mlp_dim: int = 256  # width of each layer's two-layer projection head
    flip_equivariance: bool | None = None  # FastCUT: flip the inputs half the time, compare unflipped

# --------------------------------------------------------------------------------------------
# The projection heads and the patches they see


class PatchProjection(nn.Module):
    """One head per encoder layer: Linear(C, d), ReLU, Linear(d, d), then L2-normalised (the
    reference's ``PatchSampleF`` with ``netF mlp_sample``, d = ``cut.mlp_dim`` = 256)."""

    def __init__(self, channels: list[int], dim: int = 256, init_gain: float = 0.02):
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels)
        init_weights(self, init_gain)

    def forward(self, patches: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's patches (B×P×C) projected by its head, as unit vectors (B×P×d)."""
        out = []
        for head, x in zip(self.heads, patches, strict=True):
            z = head(x)
            out.append(z / (z.norm(dim=-1, keepdim=True) + 1e-7))
        return out


def encoder_layers(cfg: Config) -> list[int]:
    """``cut.nce_layers`` (CUT's numbering) as indices of our generator's ``encode``."""
    n_blocks = generator_spec(cfg.model).arguments["n_blocks"]
    return [cut_layer_index(layer, n_blocks) for layer in CUT.options(cfg).nce_layers]


def encoder_channels(cfg: Config) -> list[int]:
    """The channels of each contrasted layer's features, from a shape-only (meta device) pass."""
    with torch.device("meta"):
        generator = generator_spec(cfg.model).build()
        side = 4 * generator.size_multiple
        features = generator.encode(torch.empty(1, cfg.model.in_channels, side, side), encoder_layers(cfg))
    return [f.shape[1] for f in features]


def sample_locations(features: torch.Tensor, count: int, generators: list[torch.Generator]) -> torch.Tensor:
    """For each image of ``features`` (B×C×H×W), ``count`` distinct locations (all of them when
    the layer has fewer), drawn from that image's generator: B×P indices into H·W."""
    size = features.shape[2] * features.shape[3]
    ids = [torch.randperm(size, generator=g)[: min(count, size)] for g in generators]
    return torch.stack(ids).to(features.device)


def patches_at(features: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
    """The feature vectors of B×C×H×W ``features`` at B×P ``locations``: B×P×C.

    Gathered in the features' own layout, so that the gradient flowing back into them is
    contiguous. Gathering from a channels-last view (as the reference's ``permute``) hands the
    encoder a channels-last gradient, and on torch 2.14's CPU kernels instance norm's backward
    gets such a gradient wrong for a batch of one: G's gradient then differs from the one the
    same images give in a batch of two (tests/test_cut.py checks they agree)."""
    flat = features.flatten(2)  # B×C×HW
    picked = torch.gather(flat, 2, locations[:, None, :].expand(-1, flat.shape[1], -1))  # B×C×P
    return picked.transpose(1, 2)


@dataclasses.dataclass(frozen=True)
class StepDraws:
    """The random choices of one step, each from its own generator seeded by (seed, step, what):
    the same after a resume and in any process layout (see the module docstring). ``first_image``
    is the index of this process's first image in the step's global batch."""

    seed: int
    step: int
    first_image: int

    def generator(self, stream: str) -> torch.Generator:
        return step_generator(self.seed, self.step, stream)

    def flip(self) -> bool:
        """FastCUT's coin (§4): flip this step's inputs horizontally?"""
        return bool(torch.rand(1, generator=self.generator("flip")) < 0.5)

    def patch_generators(self, domain: str, count: int) -> list[torch.Generator]:
        """One generator per image of ``domain`` ("A" or "B") for its patch locations."""
        return [self.generator(f"patches/{domain}/{self.first_image + i}") for i in range(count)]


# --------------------------------------------------------------------------------------------
# The method


@METHODS.register("cut")
class CUT(Method):
    """G (``G_A``, A→B), D (``D_A``, judging domain B) and the projection heads (``F``); one Adam
    for G and the heads, one for D (the reference's defaults: 2e-4, betas 0.5 and 0.999)."""

    description: ClassVar[str] = "CUT (Park et al. 2020): one generator, PatchNCE on its encoder, a PatchGAN"
    translators: ClassVar[dict[str, str]] = {"AtoB": "G_A"}
    groups: ClassVar[tuple[Group, ...]] = (Group("G", "generator", ("G_A", "F")), Group("D", "discriminator", ("D_A",)))
    section: ClassVar[str] = "cut"
    options_type: ClassVar[type] = CutOptions
    # What null means for the keys whose default depends on the method (the reference's --CUT_mode).
    own_defaults: ClassVar[dict[str, float | bool]] = {"lambda_nce": 1.0, "nce_idt": True, "flip_equivariance": False}

    @classmethod
    def resolve_options(cls, options: CutOptions) -> CutOptions:
        return dataclasses.replace(options, **{k: v for k, v in cls.own_defaults.items() if getattr(options, k) is None})

    @classmethod
    def check_options(cls, cfg: Config, c: CutOptions) -> None:
        """The ``cut`` keys, and the encoder layers they name, against the generator they apply to."""
        m = cfg.model
        for key, value in {"cut.num_patches": c.num_patches, "cut.nce_t": c.nce_t, "cut.mlp_dim": c.mlp_dim,
                           "cut.lambda_nce": c.lambda_nce}.items():
            if value <= 0:
                raise ConfigError(f"{key} must be positive; got {value}")
        if c.lambda_gan < 0:
            raise ConfigError(f"cut.lambda_gan must not be negative; got {c.lambda_gan}")
        if c.nce_idt and m.in_channels != m.out_channels:
            raise ConfigError("cut.nce_idt needs model.in_channels == model.out_channels (set it to false)")
        if not c.nce_layers or sorted(set(c.nce_layers)) != c.nce_layers:
            raise ConfigError(f"cut.nce_layers must be distinct layers in ascending order; got {c.nce_layers}")
        generator = build_on_meta(generator_spec(m).build)  # shapes only: nothing allocated, whatever the widths
        if not isinstance(generator, ResnetGenerator):
            raise ConfigError(f"method {cfg.method} needs a ResNet generator (model.generator resnet, resnet_9blocks "
                              f"or resnet_6blocks) for its encoder features; got model.generator {m.generator}")
        for layer in c.nce_layers:
            try:
                cut_layer_index(layer, len(generator.blocks))
            except ValueError as e:
                raise ConfigError(f"cut.nce_layers: {e}") from None
        try:
            build_on_meta(lambda: PatchProjection(encoder_channels(cfg), c.mlp_dim))
        except NetworkTooLarge as e:
            raise ConfigError(f"cut.mlp_dim={c.mlp_dim}: the projection heads F: {e}, the most one network may "
                              "hold (docs/reliability.md, Caps)") from None

    @classmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        """G_A (A→B) and D_A (judging domain B), built in this order."""
        m = cfg.model
        return {"G_A": generator_spec(m), "D_A": discriminator_spec(m, m.out_channels)}

    @classmethod
    def build_networks(cls, cfg: Config) -> dict[str, nn.Module]:
        """G_A and D_A, then the projection heads F, whose in-channels are the encoder's widths."""
        networks = super().build_networks(cfg)
        networks["F"] = PatchProjection(encoder_channels(cfg), cls.options(cfg).mlp_dim, cfg.model.init_gain)
        return networks

    def __init__(self, cfg: Config, accelerator: Accelerator, networks: dict[str, nn.Module], rank: int):
        super().__init__(cfg, accelerator, networks, rank)
        self.cut: CutOptions = self.options(cfg)
        self.layers = encoder_layers(cfg)  # cut.nce_layers as ``encode`` indices

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Translate, update D, then update G and the heads (the module docstring's three steps)."""
        real_a, real_b = batch["A"], batch["B"]
        draws = StepDraws(self.cfg.seed, step, first_image=self.rank * real_a.shape[0])
        flipped = bool(self.cut.flip_equivariance) and draws.flip()
        with self.accelerator.autocast():
            fake_b, idt_b = self.translate(real_a, real_b if self.cut.nce_idt else None, flipped)
        d_terms = self.update_discriminator(real_b, fake_b, step)
        g_terms = self.update_generator((real_a, fake_b), (real_b, idt_b), flipped, draws, step)
        return {**g_terms, **d_terms}

    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor | None, flipped: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(G(x), G(y)): one pass over A and B together, as the reference (inputs flipped when
        ``flipped``; the outputs stay as G made them). G(y) is None without ``real_b``."""
        real = real_a if real_b is None else torch.cat([real_a, real_b])
        fake = self.networks["G_A"](real.flip(3) if flipped else real)
        n = real_a.shape[0]
        return fake[:n], (None if real_b is None else fake[n:])

    def update_discriminator(self, real_b: torch.Tensor, fake_b: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """D on real B against the newest G(x), the loss halved; with ``wgangp``, plus half the
        gradient penalty at mixes of the two (``D_gp``)."""
        D, d = self.updates["D"], self.networks["D_A"]
        set_requires_grad((d,), True)
        D.zero_grad()
        lo = self.cfg.loss
        with self.accelerator.autocast():
            terms = {"D": losses.discriminator_loss(d(real_b), d(fake_b.detach()), lo.gan_mode)}
            if lo.gan_mode == "wgangp":  # halved with the critic's loss, as CycleGAN's
                alpha = mixing_weights(self.cfg.seed, step, "gp", self.rank * len(real_b), len(real_b))
                terms["D_gp"] = 0.5 * losses.gradient_penalty(d, real_b, fake_b, alpha, lo.lambda_gp)
        D.backward(terms, step)
        D.step()
        return terms

    def update_generator(self, from_a: tuple[torch.Tensor, torch.Tensor], from_b: tuple[torch.Tensor, torch.Tensor | None],
                         flipped: bool, draws: StepDraws, step: int) -> dict[str, torch.Tensor]:
        """G and F on λ_GAN·GAN(G(x)) + the NCE terms' mean, with D frozen (called unwrapped, without
        DDP's gradient hooks). ``from_a`` is (x, G(x)), ``from_b`` (y, G(y)) with G(y) None when the
        identity term is off. Returns the terms under the reference's names (G_GAN, NCE, NCE_Y) and
        their sum G."""
        (real_a, fake_b), (real_b, idt_b) = from_a, from_b
        G, gan_mode = self.updates["G"], self.cfg.loss.gan_mode
        set_requires_grad((self.networks["D_A"],), False)
        G.zero_grad()
        with self.accelerator.autocast():
            terms = {"G_GAN": self.cut.lambda_gan * losses.generator_adversarial_loss(self.plain("D_A")(fake_b), gan_mode),
                     "NCE": self.patch_nce(real_a, fake_b, flipped, draws.patch_generators("A", len(real_a)))}
            if idt_b is not None:
                terms["NCE_Y"] = self.patch_nce(real_b, idt_b, flipped, draws.patch_generators("B", len(real_b)))
            nce = [terms[k] for k in ("NCE", "NCE_Y") if k in terms]
            objective = terms["G_GAN"] + sum(nce) / len(nce)
        G.backward({"G": objective}, step)
        G.step()
        return {**terms, "G": objective}

    def patch_nce(self, source: torch.Tensor, translated: torch.Tensor, flipped: bool,
                  generators: list[torch.Generator]) -> torch.Tensor:
        """λ_NCE × PatchNCE(G(x), x) averaged over the layers (the reference's
        ``calculate_NCE_loss``). Queries are G's encoding of the translation, flipped back when the
        input was flipped; keys are its encoding of the source, at the same locations. Keys carry
        no gradient (the loss detaches them), so they are computed without one."""
        g = self.plain("G_A")  # ``encode`` is not DDP's forward
        queries = g.encode(translated, self.layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        with torch.no_grad():
            keys = g.encode(source, self.layers)
        locations = [sample_locations(k, self.cut.num_patches, generators) for k in keys]
        # One pass of the heads over keys and queries together: each layer's two sets stacked.
        projected = self.networks["F"]([torch.cat([patches_at(k, at), patches_at(q, at)]) for k, q, at in
                            zip(keys, queries, locations)])
        per_layer = []
        for both in projected:
            key, query = both.chunk(2)
            per_layer.append(losses.patch_nce_loss(query, key, self.cut.nce_t))
        return self.cut.lambda_nce * sum(per_layer) / len(per_layer)


@METHODS.register("fastcut")
class FastCUT(CUT):
    """FastCUT: CUT without the identity term, λ_NCE 10 and flip-equivariance (the defaults of
    ``cut`` resolve to these; the step is CUT's)."""

    description: ClassVar[str] = "FastCUT (Park et al. 2020): CUT without the identity NCE term, with flips"
    own_defaults: ClassVar[dict[str, float | bool]] = {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True}
