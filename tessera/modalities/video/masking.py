"""Tube masking: one spatial mask per clip, repeated through time, drawn on the device.

Repeating the mask over time stops the model from copying a hidden patch from its neighbour in
the next frame (VideoMAE's motivation for tubes).
"""

from __future__ import annotations

from typing import Sequence

import torch

from tessera.core.masking import Mask, check_ratio, split_by_noise


class TubeMasker:
    """Hide `int(ratio * H * W)` spatial positions per sample, the same ones in each of T slices.

    # VideoMAE masking_generator.py `TubeMaskingGenerator`: int(ratio * H*W) masked per frame,
    # tiled over the frames; reference D: 0.9 -> 176 of 196 per slice, 1408 of 1568 in all.
    """

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        check_ratio(ratio)
        grid = tuple(int(g) for g in grid)
        if len(grid) != 3 or any(g <= 0 for g in grid):
            raise ValueError(f"TubeMasker needs a (T, H, W) grid of positive sizes, got {grid}")
        self.grid = grid
        self.ratio = ratio
        frames, height, width = grid
        self.slice_size = height * width
        self.hidden_per_slice = int(ratio * self.slice_size)
        self.num_hidden = frames * self.hidden_per_slice
        self.num_visible = frames * (self.slice_size - self.hidden_per_slice)

    def __call__(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str
    ) -> Mask:
        """Draw on `device` with `generator` -> Mask with visible (B, Nv) and hidden (B, Nh), indices
        in flattened (t, h, w) order, sorted ascending."""
        noise = torch.rand(batch_size, self.slice_size, generator=generator, device=device)
        visible, hidden = split_by_noise(noise, self.hidden_per_slice)
        # Slice t offsets its spatial indices by t * H * W; spatial rows are sorted, so the
        # flattened rows are sorted too.
        offsets = torch.arange(self.grid[0], device=noise.device).unsqueeze(1) * self.slice_size
        return Mask(
            visible=(visible.unsqueeze(1) + offsets).flatten(1),
            hidden=(hidden.unsqueeze(1) + offsets).flatten(1),
        )

    def __repr__(self) -> str:
        return (
            f"TubeMasker(grid={self.grid}, ratio={self.ratio}, "
            f"hidden={self.num_hidden} of {self.num_hidden + self.num_visible})"
        )
