"""Tube masking: one spatial mask per clip, repeated through time, drawn on the device.

Repeating the mask over time stops the model from copying a hidden patch from its neighbour in
the next frame (VideoMAE's motivation for tubes).
"""

from __future__ import annotations

from typing import Sequence

import torch

from tessera.core.masking import Mask, check_ratio, keep_top_hidden, split_by_noise


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


class RunningCellDecoderMask:
    """VideoMAE V2's running-cell decoder masking, on the device and with equal counts per sample.

    # OpenGVLab/VideoMAEv2 dataset/masking_generator.py `RunningCellMaskingGenerator`: a 2x2 cell
    # holding int(4 * ratio) decoder-masked slots, tiled over each frame, its pattern shifted by one
    # slot per frame from a random start, so every position is decoded in some frames.
    # There the decoder also gets queries at encoder-visible positions whose loss is then masked out
    # (engine_for_pretraining.py); we give it only encoder-hidden queries, the ones preferred by the
    # cell pattern first, topped up at random to exactly round((1 - ratio) * Nh) per sample, so
    # samples keep equal counts and no query is wasted.
    """

    def __init__(self, grid: Sequence[int], ratio: float = 0.5) -> None:
        self.grid = tuple(int(g) for g in grid)
        self.ratio = ratio
        self.masked_slots = int(4 * ratio)
        if not 0 < self.masked_slots < 4:
            raise ValueError(f"running-cell decoder mask ratio must give 1 to 3 masked slots of 4, got {ratio}")

    def num_kept(self, num_hidden: int) -> int:
        return max(1, round(num_hidden * (1.0 - self.ratio)))

    def decoded(self, start: torch.Tensor) -> torch.Tensor:
        """(B,) start slots -> (B, N) bool: positions the cell pattern hands to the decoder."""
        frames, height, width = self.grid
        device = start.device
        t = torch.arange(frames, device=device).view(frames, 1, 1)
        slot = 2 * (torch.arange(height, device=device).view(1, height, 1) % 2) + (
            torch.arange(width, device=device).view(1, 1, width) % 2
        )
        # the pointer is advanced once before each frame's pattern is read
        queue_position = (slot + t + 1 + start.view(-1, 1, 1, 1)) % 4
        return (queue_position >= self.masked_slots).flatten(1)

    def __call__(self, mask: Mask, generator: torch.Generator) -> Mask:
        device = mask.hidden.device
        start = torch.randint(4, (mask.hidden.shape[0],), generator=generator, device=device)
        preferred = torch.gather(self.decoded(start), 1, mask.hidden).float()
        noise = torch.rand(mask.hidden.shape, generator=generator, device=device)
        return keep_top_hidden(mask, preferred + 0.5 * noise, self.num_kept(mask.hidden.shape[1]))
