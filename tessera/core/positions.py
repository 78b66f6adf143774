"""Fixed sin-cos position tables, computed in float64 and cast at the end.

Reference D (VideoMAE run on CPU): the table is built from float64 angles; a float32 angle
computation differs by up to 1.4e-4, so the float64 path is what matches the reference.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

POSITION_KINDS = ("sincos_flat", "sincos_grid", "learned")


def sincos_1d(
    num_positions: int, dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Transformer table over a flat sequence -> (N, dim): channel j uses the angle
    pos / base^(2*(j//2)/dim), sine on even channels and cosine on odd ones (interleaved).

    # VideoMAE modeling_finetune.py `get_sinusoid_encoding_table`: same angle rule and interleaving.
    """
    pos = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    exponent = (2 * (torch.arange(dim, dtype=torch.float64) // 2)) / dim
    angles = pos / torch.pow(torch.tensor(base, dtype=torch.float64), exponent)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.to(dtype)


def _sincos_axis(coords: Tensor, dim: int, base: float) -> Tensor:
    """One axis, float64: coords (N,) -> (N, dim) as [sin | cos] halves, omega_k = base^(-k/(dim/2))."""
    half = dim // 2
    omega = 1.0 / base ** (torch.arange(half, dtype=torch.float64) / half)
    angles = coords.unsqueeze(1) * omega.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_nd(
    grid: Sequence[int], dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Factorised table over a grid -> (prod(grid), dim), rows in row-major grid order.

    Each axis gets dim/len(grid) channels laid out as [sin | cos] halves, and the axes are
    concatenated in grid order (axis 0 first). This is facebookresearch/mae util/pos_embed.py's
    per-axis layout; note MAE's 2-D helper builds its grid with meshgrid(w, h), so its first half
    encodes the last axis: ours follows grid order instead, which only permutes channels.
    """
    grid = tuple(int(g) for g in grid)
    if not grid or any(g <= 0 for g in grid):
        raise ValueError(f"grid must be a non-empty sequence of positive sizes, got {grid}")
    if dim % (2 * len(grid)) != 0:
        raise ValueError(
            f"sincos_grid needs dim divisible by 2 * len(grid) = {2 * len(grid)}; "
            f"got dim={dim} for grid={grid}"
        )
    per_axis = dim // len(grid)
    axes = [torch.arange(g, dtype=torch.float64) for g in grid]
    coords = torch.meshgrid(*axes, indexing="ij")  # row-major: last axis varies fastest
    parts = [_sincos_axis(c.reshape(-1), per_axis, base) for c in coords]
    return torch.cat(parts, dim=1).to(dtype)


def position_table(
    kind: str,
    grid: Sequence[int],
    dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A fixed table for a token grid -> (prod(grid), dim). "learned" belongs to the module that
    owns the Parameter (see `register_positions`), so it is refused here."""
    if kind == "sincos_flat":
        return sincos_1d(math.prod(int(g) for g in grid), dim, base=base, dtype=dtype)
    if kind == "sincos_grid":
        return sincos_nd(grid, dim, base=base, dtype=dtype)
    if kind == "learned":
        raise ValueError(
            "position kind 'learned' has no fixed table: the owning module holds a Parameter "
            "(use register_positions)"
        )
    raise ValueError(f"unknown position kind {kind!r}; valid kinds: {', '.join(POSITION_KINDS)}")


def register_positions(
    module: nn.Module, name: str, kind: str, grid: Sequence[int], dim: int
) -> None:
    """Attach (1, N, dim) positions to `module` as `name`.

    Fixed tables become non-persistent buffers, so no checkpoint key is written (VideoMAE's table
    is a plain attribute and absent from its checkpoints, reference A2/A8); "learned" becomes a
    Parameter drawn from a truncated normal with std 0.02.
    """
    if kind == "learned":
        param = nn.Parameter(torch.zeros(1, math.prod(int(g) for g in grid), dim))
        nn.init.trunc_normal_(param, std=0.02)
        module.register_parameter(name, param)
    else:
        module.register_buffer(name, position_table(kind, grid, dim).unsqueeze(0), persistent=False)
