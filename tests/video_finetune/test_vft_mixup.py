"""Mixup / CutMix in batch mode with a torch.Generator: soft targets, box lambda, determinism."""

from __future__ import annotations

import pytest
import torch

from tessera.objectives.mixup import Mixup, smoothed_one_hot

K = 5


def _batch(b: int = 4, t: int = 3, h: int = 20, w: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample i is filled with i + 1: any pixel tells which sample it came from."""
    video = torch.arange(1, b + 1, dtype=torch.float32).view(b, 1, 1, 1, 1).expand(b, 3, t, h, w).contiguous()
    return video, torch.tensor([0, 1, 2, 3])[:b]


def test_smoothed_one_hot():
    y = smoothed_one_hot(torch.tensor([2, 0]), K, 0.1)
    assert torch.allclose(y[0], torch.tensor([0.02, 0.02, 0.92, 0.02, 0.02]))
    assert torch.allclose(y.sum(1), torch.ones(2))


def test_targets_sum_to_one_and_reference_defaults():
    mix = Mixup(K)
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.prob, mix.switch_prob, mix.label_smoothing) == (0.8, 1.0, 1.0,
                                                                                                    0.5, 0.1)
    video, label = _batch()
    for seed in range(20):
        _, target = mix(video, label, torch.Generator().manual_seed(seed))
        assert target.shape == (4, K) and torch.allclose(target.sum(1), torch.ones(4))
        lam = float(mix.last["lam"])
        off = 0.1 / K
        assert torch.allclose(target[0, 0], torch.tensor(lam * (0.9 + off) + (1 - lam) * off))
        assert torch.allclose(target[0, 3], torch.tensor((1 - lam) * (0.9 + off) + lam * off))


def test_cutmix_lambda_is_the_box_area_over_all_frames():
    mix = Mixup(K, mixup_alpha=0.0, cutmix_alpha=1.0)
    video, label = _batch()
    boxes = 0
    for seed in range(30):
        mixed, target = mix(video, label, torch.Generator().manual_seed(seed))
        assert bool(mix.last["use_cutmix"]) and bool(mix.last["applied"])
        from_partner = mixed[0] == 4.0  # sample 0 pairs with sample 3 (the flipped batch)
        assert torch.all((mixed[0] == 1.0) | from_partner)
        mask = from_partner[0, 0]
        assert torch.equal(from_partner, mask.expand_as(from_partner))  # one box for every channel and frame
        yl, yh, xl, xh = mix.last["box"].tolist()
        assert int(mask.sum()) == (yh - yl) * (xh - xl)
        lam = float(mix.last["lam"])
        assert lam == pytest.approx(1 - mask.float().mean().item(), abs=1e-6)
        assert torch.equal(mixed[1], torch.where(mask, 3.0, 2.0).expand(3, 3, 20, 24))  # 1 <-> 2 same box
        boxes += int(mask.any())
    assert boxes > 20
    assert torch.equal(video, _batch()[0])  # the input is left untouched


def test_mixup_blends_with_flipped_batch():
    mix = Mixup(K, mixup_alpha=0.8, cutmix_alpha=0.0)
    video, label = _batch()
    lams = []
    for seed in range(200):
        mixed, _ = mix(video, label, torch.Generator().manual_seed(seed))
        lam = float(mix.last["lam"])
        lams.append(lam)
        assert not bool(mix.last["use_cutmix"])
        assert torch.allclose(mixed[0], torch.full_like(mixed[0], lam * 1 + (1 - lam) * 4), atol=1e-5)
    lams_t = torch.tensor(lams)
    assert 0.0 <= lams_t.min() and lams_t.max() <= 1.0
    assert abs(lams_t.mean().item() - 0.5) < 0.06  # Beta(0.8, 0.8): mean 0.5, sd ~0.32
    assert 0.28 < lams_t.std().item() < 0.36


def test_deterministic_for_a_generator_and_switch_rate():
    mix = Mixup(K)
    video, label = _batch()
    a = mix(video, label, torch.Generator().manual_seed(3))
    b = mix(video, label, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = mix(video, label, torch.Generator().manual_seed(4))
    assert not torch.equal(a[1], c[1])
    cut = 0
    for seed in range(300):
        mix(video, label, torch.Generator().manual_seed(seed))
        cut += bool(mix.last["use_cutmix"])
    assert 110 < cut < 190  # switch prob 0.5 of 300


def test_no_mix_gives_smoothed_labels():
    mix = Mixup(K, prob=0.0)
    video, label = _batch()
    mixed, target = mix(video, label, torch.Generator().manual_seed(0))
    assert torch.equal(mixed, video)
    assert torch.allclose(target, smoothed_one_hot(label, K, 0.1))
    off = Mixup(K, mixup_alpha=0.0, cutmix_alpha=0.0)
    assert torch.equal(off(video, label, torch.Generator())[0], video)
    with pytest.raises(ValueError):
        Mixup(K, mode="elem")
