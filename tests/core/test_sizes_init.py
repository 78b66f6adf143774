from __future__ import annotations

import pytest
import torch
from torch import nn

from tessera.core.init import init_vit_weights, trunc_normal_std_bounded_
from tessera.core.sizes import SIZES, ViTSize, get_size


def test_sizes_table() -> None:
    assert get_size("small") == ViTSize(384, 12, 6, 192, 4, 3)
    assert get_size("base") == ViTSize(768, 12, 12, 384, 4, 6)
    assert get_size("large") == ViTSize(1024, 24, 16, 512, 12, 8)
    assert get_size("huge") == ViTSize(1280, 32, 16, 640, 12, 8)
    with pytest.raises(ValueError, match="small, base, large, huge"):
        get_size("giant")
    assert set(SIZES) == {"small", "base", "large", "huge"}


def test_init_styles() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 8, 2), nn.Linear(64, 64), nn.LayerNorm(64))
    conv_before = model[0].weight.clone()
    nn.init.constant_(model[2].weight, 3.0)
    init_vit_weights(model, "xavier")
    assert torch.equal(model[0].weight, conv_before)  # conv keeps its default init
    bound = (6 / 128) ** 0.5
    assert model[1].weight.abs().max() <= bound and model[1].weight.abs().max() > 0.5 * bound
    assert torch.count_nonzero(model[1].bias) == 0
    assert torch.all(model[2].weight == 1) and torch.count_nonzero(model[2].bias) == 0
    init_vit_weights(model, "trunc_normal")
    assert 0.015 < model[1].weight.std() < 0.025
    with pytest.raises(ValueError, match="xavier, trunc_normal"):
        init_vit_weights(model, "kaiming")


def test_trunc_normal_bounded_at_std() -> None:
    t = trunc_normal_std_bounded_(torch.empty(10_000), std=0.02)
    assert t.abs().max() <= 0.02 and t.abs().max() > 0.019
