import pytest
import torch

from cyclestyle.config import ModelConfig
from cyclestyle.models import PatchDiscriminator, ResnetGenerator, build_discriminator, build_generator


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("n_blocks, expected", [(9, 11_378_179), (6, 7_837_699)])
def test_generator_parameter_count_matches_reference(n_blocks, expected):
    assert n_params(ResnetGenerator(ngf=64, n_blocks=n_blocks)) == expected


def test_resize_conv_generator_has_same_parameter_count():
    assert n_params(ResnetGenerator(upsample="resize_conv")) == 11_378_179


def test_discriminator_parameter_count_matches_reference():
    assert n_params(PatchDiscriminator(ndf=64, n_layers=3)) == 2_764_737


@pytest.mark.parametrize("upsample", ["transpose", "resize_conv"])
@pytest.mark.parametrize("size", [(32, 32), (36, 52)])
def test_generator_keeps_size_and_range(upsample, size):
    g = ResnetGenerator(ngf=8, n_blocks=2, upsample=upsample)
    x = torch.randn(2, 3, *size)
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


def test_discriminator_outputs_patch_map_of_70px_receptive_field():
    d = PatchDiscriminator(ndf=8)
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    # Receptive field: an output logit depends on exactly a 70x70 input window (without instance
    # norm, whose per-image statistics make every output depend on every pixel).
    d = PatchDiscriminator(ndf=8, norm="none")
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3))).flatten()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2))).flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_instance_norm_has_no_affine_or_running_stats():
    g = ResnetGenerator(ngf=8, n_blocks=1)
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)
    assert not any(isinstance(b, torch.Tensor) for b in g.buffers())


def test_init_is_normal_0_002():
    g = ResnetGenerator(ngf=64, n_blocks=9)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(m.bias.abs().max() == 0 for m in g.modules() if isinstance(m, torch.nn.Conv2d))


def test_dropout_adds_dropout_layers():
    assert any(isinstance(m, torch.nn.Dropout) for m in ResnetGenerator(ngf=8, n_blocks=2, dropout=True).modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in ResnetGenerator(ngf=8, n_blocks=2).modules())


def test_batch_norm_generator_drops_conv_bias():
    g = ResnetGenerator(ngf=8, n_blocks=1, norm="batch")
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].bias is None and convs[-1].bias is not None  # the output conv keeps its bias


def test_builders_swap_channels_for_reverse_generator():
    cfg = ModelConfig(in_channels=1, out_channels=3, ngf=8, n_blocks=1)
    g, f = build_generator(cfg), build_generator(cfg, reverse=True)
    assert g(torch.randn(1, 1, 16, 16)).shape == (1, 3, 16, 16)
    assert f(torch.randn(1, 3, 16, 16)).shape == (1, 1, 16, 16)
    assert build_discriminator(cfg, 1)(torch.randn(1, 1, 64, 64)).shape[1] == 1


def test_a_hub_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    """A command checks the VGG file when it validates and again when it loads: one read of the
    file; a file replaced since is read again, and judged by its new bytes."""
    import hashlib

    from cyclestyle.models import weights

    reads = []
    real = hashlib.file_digest
    monkeypatch.setattr(weights.hashlib, "file_digest", lambda f, name: reads.append(f.name) or real(f, name))
    path = tmp_path / "net-00000000.pth"
    path.write_bytes(b"first download")
    prefix = hashlib.sha256(b"first download").hexdigest()[:8]
    assert weights.hub_hash_mismatch(path, prefix) is None
    assert weights.hub_hash_mismatch(path, prefix) is None
    assert len(reads) == 1
    path.write_bytes(b"a truncated one")
    assert weights.hub_hash_mismatch(path, prefix) == hashlib.sha256(b"a truncated one").hexdigest()[:8]
    assert len(reads) == 2
