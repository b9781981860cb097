
import pytest
import torch

from cyclestyle.training.pool import ImagePool
from cyclestyle.training.sampling import ShardedBatchSampler, epoch_order, steps_per_epoch
from cyclestyle.training.schedule import epoch_lr_factor, step_lr_factor


def img(value: float) -> torch.Tensor:
    return torch.full((1, 3, 2, 2), value)


def test_pool_returns_inputs_while_filling():
    pool = ImagePool(3, seed=0)
    for v in range(3):
        assert torch.equal(pool.query(img(v)), img(v))
    assert len(pool.images) == 3


def test_pool_swaps_about_half_after_full_and_returns_stored_images():
    pool = ImagePool(5, seed=1)
    for v in range(5):
        pool.query(img(v))
    swapped = 0
    for v in range(100, 400):
        out = pool.query(img(v))
        if out[0, 0, 0, 0].item() != v:
            swapped += 1
            assert out[0, 0, 0, 0].item() < v  # an older image came back
        assert len(pool.images) == 5
    assert 110 < swapped < 190


def test_pool_size_zero_is_passthrough():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ImagePool(0).query(x), x)


def test_pool_state_round_trip_gives_same_future():
    a = ImagePool(4, seed=3)
    for v in range(10):
        a.query(img(v))
    b = ImagePool(4, seed=99)
    state = a.state_dict()
    # as torch.load returns it: tuples become lists
    state["rng"] = [state["rng"][0], list(state["rng"][1]), state["rng"][2]]
    b.load_state_dict(state)
    for v in range(10, 30):
        assert torch.equal(a.query(img(v)), b.query(img(v)))


def test_pool_handles_batches():
    pool = ImagePool(2, seed=0)
    out = pool.query(torch.randn(3, 3, 4, 4))
    assert out.shape == (3, 3, 4, 4) and len(pool.images) == 2


def test_epoch_lr_matches_reference_rule():
    f = epoch_lr_factor(n_epochs=100, n_epochs_decay=100, steps_per_epoch=10)
    assert f(0) == 1.0
    assert f(99 * 10 + 9) == 1.0          # last step of epoch 99 (the 100th): still constant
    assert f(100 * 10) == pytest.approx(1 - 1 / 101)  # first decay epoch
    assert f(199 * 10) == pytest.approx(1 / 101)      # last epoch: nearly zero
    assert f(100 * 10) > f(150 * 10) > f(199 * 10) > 0


def test_step_lr_decays_linearly_to_zero():
    f = step_lr_factor(max_steps=100, decay_steps=40)
    assert f(0) == f(59) == f(60) == 1.0
    assert f(80) == pytest.approx(0.5)
    assert f(99) == pytest.approx(1 / 40)
    assert f(100) == 0.0
    assert step_lr_factor(10, 0)(9) == 1.0


def test_epoch_order_is_unaligned_and_deterministic():
    order = epoch_order(n_a=5, n_b=12, seed=0, epoch=0)
    assert order.shape == (12, 3)
    assert torch.equal(order, epoch_order(5, 12, 0, 0))
    assert not torch.equal(order, epoch_order(5, 12, 0, 1))
    counts = torch.bincount(order[:, 0], minlength=5)
    assert counts.min() >= 2 and counts.max() <= 3  # A wraps around evenly when B is larger
    assert order[:, 1].max() < 12 and order[:, 0].max() < 5
    # A larger A domain: every A image exactly once
    assert sorted(epoch_order(7, 3, 1, 0)[:, 0].tolist()) == list(range(7))


def test_sharded_sampler_splits_global_batches_and_resumes():
    order = epoch_order(9, 9, seed=0, epoch=0)
    rows = [tuple(r) for r in order.tolist()]
    single = list(ShardedBatchSampler(order, batch_size=2, process_index=0, num_processes=1))
    r0 = list(ShardedBatchSampler(order, batch_size=1, process_index=0, num_processes=2))
    r1 = list(ShardedBatchSampler(order, batch_size=1, process_index=1, num_processes=2))
    assert steps_per_epoch(9, 2, 1) == len(single) == len(r0) == len(r1) == 4
    for s in range(4):
        assert single[s] == r0[s] + r1[s]
    assert [b[0] for b in single] == rows[0:8:2]
    assert not set(map(tuple, sum(r0, []))) & set(map(tuple, sum(r1, [])))
    resumed = list(ShardedBatchSampler(order, batch_size=2, start_step=3))
    assert resumed == single[3:]
