from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tessera.core.positions import (
    POSITION_KINDS,
    position_table,
    register_positions,
    sincos_1d,
    sincos_nd,
)


def _hand_1d(n: int, dim: int, dtype=torch.float64) -> torch.Tensor:
    """Transformer table written out with explicit loops."""
    out = torch.zeros(n, dim, dtype=torch.float64)
    for pos in range(n):
        for j in range(dim):
            angle = pos / (10000.0 ** (2 * (j // 2) / dim))
            out[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return out.to(dtype)


def test_sincos_1d_matches_hand_computation() -> None:
    table = sincos_1d(7, 6, dtype=torch.float64)
    assert table.shape == (7, 6)
    torch.testing.assert_close(table, _hand_1d(7, 6), rtol=0, atol=1e-12)
    # odd widths follow the same rule
    torch.testing.assert_close(sincos_1d(4, 5, dtype=torch.float64), _hand_1d(4, 5), rtol=0, atol=1e-12)


def test_sincos_1d_float64_angles_differ_from_float32_angles() -> None:
    n, dim = 1568, 384
    table = sincos_1d(n, dim)  # float64 angles, cast to float32
    assert table.dtype == torch.float32
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float32)
    angles32 = pos / torch.pow(torch.tensor(10000.0), 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    f32 = torch.where(j.long() % 2 == 0, torch.sin(angles32), torch.cos(angles32))
    exact = sincos_1d(n, dim, dtype=torch.float64).float()
    torch.testing.assert_close(table, exact, rtol=0, atol=0)
    # reference D: float32 angles differ by about 1e-4 at these sizes
    assert (f32 - table).abs().max() > 1e-5


def test_sincos_nd_2x3_grid_values() -> None:
    grid, dim = (2, 3), 8
    table = sincos_nd(grid, dim, dtype=torch.float64)
    assert table.shape == (6, 8)
    per_axis, half = 4, 2
    omega = [1.0 / 10000.0 ** (k / half) for k in range(half)]
    for row, (a, b) in enumerate((a, b) for a in range(2) for b in range(3)):  # row-major
        expected = []
        for coord in (a, b):  # axes in grid order
            expected += [math.sin(coord * w) for w in omega] + [math.cos(coord * w) for w in omega]
        torch.testing.assert_close(table[row], torch.tensor(expected, dtype=torch.float64))
    assert per_axis * len(grid) == dim


def test_sincos_nd_3d_shape_and_refusal() -> None:
    assert sincos_nd((2, 3, 4), 12).shape == (24, 12)
    with pytest.raises(ValueError, match=r"dim=10.*grid=\(2, 3, 4\)"):
        sincos_nd((2, 3, 4), 10)


def test_position_table_kinds() -> None:
    assert POSITION_KINDS == ("sincos_flat", "sincos_grid", "learned")
    torch.testing.assert_close(position_table("sincos_flat", (2, 3), 8), sincos_1d(6, 8))
    torch.testing.assert_close(position_table("sincos_grid", (2, 3), 8), sincos_nd((2, 3), 8))
    with pytest.raises(ValueError, match="sincos_flat, sincos_grid, learned"):
        position_table("rope", (2, 3), 8)
    with pytest.raises(ValueError, match="learned"):
        position_table("learned", (2, 3), 8)


def test_register_positions_buffer_or_parameter() -> None:
    fixed, learned = nn.Module(), nn.Module()
    register_positions(fixed, "pos_embed", "sincos_flat", (2, 3), 8)
    register_positions(learned, "pos_embed", "learned", (2, 3), 8)
    assert fixed.pos_embed.shape == learned.pos_embed.shape == (1, 6, 8)
    assert "pos_embed" not in fixed.state_dict()
    assert isinstance(learned.pos_embed, nn.Parameter) and "pos_embed" in learned.state_dict()
