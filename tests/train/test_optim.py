"""lr scaling, the per-step cosine schedule and the parameter groups without weight decay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tessera.train.config import OptimConfig
from tessera.train.optim import apply_schedule, make_optimizer, make_schedule, param_groups


def reference_cosine(base, final, epochs, niter, warmup_epochs, start_warmup):
    """VideoMAE utils.cosine_scheduler, restated: linspace warmup then cosine over the rest."""
    warmup_iters = warmup_epochs * niter
    warm = np.linspace(start_warmup, base, warmup_iters) if warmup_epochs > 0 else np.array([])
    rest = np.arange(epochs * niter - warmup_iters)
    cos = np.array([final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / len(rest))) for i in rest])
    return np.concatenate((warm, cos))


def test_base_lr_is_scaled_by_total_batch_over_256():
    cfg = OptimConfig(base_lr=1.5e-4, warmup_lr=1e-6, min_lr=1e-5)
    schedule = make_schedule(cfg, total_batch=2048, steps_per_epoch=10, epochs=5, warmup_epochs=1)
    assert schedule.lr == pytest.approx(1.2e-3)
    assert schedule.warmup_lr == pytest.approx(8e-6) and schedule.min_lr == pytest.approx(8e-5)


def test_absolute_lr_is_not_scaled():
    schedule = make_schedule(OptimConfig(lr=1e-3), total_batch=2048, steps_per_epoch=10, epochs=5, warmup_epochs=1)
    assert schedule.lr == 1e-3


def test_schedule_matches_the_reference_step_by_step():
    cfg = OptimConfig(base_lr=256 * 1e-3, warmup_lr=256 * 1e-5, min_lr=256 * 1e-4)
    schedule = make_schedule(cfg, total_batch=256, steps_per_epoch=7, epochs=6, warmup_epochs=2)
    expected = reference_cosine(1e-3 * 256, 1e-4 * 256, 6, 7, 2, 1e-5 * 256)
    got = np.array([schedule.lr_at(s) for s in range(6 * 7)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert schedule.lr_at(13) == pytest.approx(256e-3)  # end of warmup: the peak


def test_weight_decay_cosine_schedule():
    cfg = OptimConfig(lr=1e-3, weight_decay=0.04, weight_decay_end=0.4)
    schedule = make_schedule(cfg, total_batch=8, steps_per_epoch=5, epochs=4, warmup_epochs=0)
    np.testing.assert_allclose(
        [schedule.weight_decay_at(s) for s in range(20)], reference_cosine(0.04, 0.4, 4, 5, 0, 0), rtol=1e-12
    )


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.conv = nn.Conv3d(3, 4, 2)


def test_no_decay_on_1d_parameters_biases_positions_and_mask_tokens():
    groups = {g["name"]: g for g in param_groups(Tiny(), 0.05)}
    model = Tiny()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: sorted(names[id(p)] for p in g["params"]) for g in param_groups(model, 0.05)}
    assert groups["decay"] == ["conv.weight", "proj.weight"]
    assert groups["no_decay"] == ["conv.bias", "mask_token", "norm.bias", "norm.weight", "pos_embed", "proj.bias"]


def test_apply_schedule_sets_lr_and_decay_per_group():
    model = Tiny()
    cfg = OptimConfig(lr=1e-3, weight_decay=0.05)
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    schedule = make_schedule(cfg, total_batch=8, steps_per_epoch=10, epochs=2, warmup_epochs=1)
    lr = apply_schedule(optimizer, schedule, 5)
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert by_name["decay"]["lr"] == lr == schedule.lr_at(5)
    assert by_name["decay"]["weight_decay"] == 0.05 and by_name["no_decay"]["weight_decay"] == 0.0


def test_layer_decay_groups_follow_the_reference_layer_ids():
    from tessera.core.encoder import Encoder
    from tessera.core.heads import PooledHead
    from tessera.modalities.video.tokenizer import TubeletTokenizer

    class Finetune(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = TubeletTokenizer(16, frames=2, size=8, tubelet=(2, 4, 4))
            self.encoder = Encoder(16, 3, 2)
            self.head = PooledHead(16, 5)

    model = Finetune()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, 0.05, layer_decay=0.75, num_layers=3)
    by_param = {names[id(p)]: g for g in groups for p in g["params"]}
    assert by_param["tokenizer.proj.weight"]["lr_scale"] == pytest.approx(0.75**4)
    assert by_param["tokenizer.proj.bias"]["weight_decay"] == 0.0
    assert by_param["encoder.blocks.0.attn.qkv.weight"]["lr_scale"] == pytest.approx(0.75**3)
    assert by_param["encoder.blocks.2.mlp.fc1.weight"]["lr_scale"] == pytest.approx(0.75)
    assert by_param["head.head.weight"]["lr_scale"] == 1.0 and by_param["head.fc_norm.weight"]["lr_scale"] == 1.0
    assert by_param["encoder.blocks.1.attn.q_bias"]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
