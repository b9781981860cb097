"""FID and KID to a named standard: clean-fid's distances (and, below, its resize), checked
against clean-fid itself. No Inception weights are needed: features are random, and the
network, where one runs, has random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.fid import fid_from_feats, kernel_distance

from cyclestyle.evaluation import metrics


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * (1 + shift) + shift


@pytest.mark.parametrize("n_real, n_fake, d", [(50, 40, 16), (30, 30, 64), (12, 9, 128)])
def test_frechet_distance_is_clean_fids(n_real, n_fake, d):
    real, fake = features(n_real, d, seed=0), features(n_fake, d, seed=1, shift=0.3)
    expected = fid_from_feats(real.numpy(), fake.numpy())
    assert metrics.frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)
    assert metrics.frechet_distance(real.float(), fake.float()) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n, d", [(40, 16), (25, 2048)])
def test_kid_is_clean_fids(n, d):
    # With every image in each subset, clean-fid's random draw only reorders the sets: one value.
    real, fake = features(n, d, seed=2), features(n, d, seed=3, shift=0.2)
    expected = kernel_distance(real.numpy(), fake.numpy(), num_subsets=3, max_subset_size=1000)
    mean, std = metrics.kernel_inception_distance(real, fake, subsets=3)
    assert mean == pytest.approx(expected, rel=1e-6) and std == pytest.approx(0.0, abs=1e-9 * abs(expected))


def test_kid_subsets_are_seeded_and_leave_numpys_generator_alone():
    real, fake = features(60, 32, seed=4), features(50, 32, seed=5, shift=0.2)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    first = metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10)
    assert np.array_equal(np.random.get_state()[1], before)
    assert metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10) == first
    assert first != metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10, seed=1)
    assert first[1] > 0  # subsets of 20 out of 50-60 images differ
