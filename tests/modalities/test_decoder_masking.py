"""Decoder masking (VideoMAE V2): equal counts, a subset of the hidden tokens, the running-cell pattern."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tessera.core.masking import RandomDecoderMask
from tessera.modalities.video.masking import RunningCellDecoderMask, TubeMasker


def reference_running_cell(grid, ratio, start):
    """VideoMAE V2's RunningCellMaskingGenerator restated with numpy for one start slot (1 = not decoded)."""
    frames, height, width = grid
    masked = int(4 * ratio)
    queue = np.hstack([np.ones(masked), np.zeros(4 - masked)])
    ptr, maps = start, []
    for _ in range(frames):
        ptr += 1
        cell = queue[(np.arange(4) + ptr) % 4].reshape(2, 2)
        maps.append(np.tile(cell, [height // 2, width // 2]).flatten())
    return np.stack(maps).flatten()


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_running_cell_pattern_matches_the_reference(ratio):
    grid = (4, 6, 8)
    cell = RunningCellDecoderMask(grid, ratio)
    for start in range(4):
        ours = cell.decoded(torch.tensor([start]))[0].numpy()
        assert np.array_equal(ours, reference_running_cell(grid, ratio, start) == 0)


def test_decoder_masks_keep_an_equal_subset_of_the_hidden_tokens():
    grid = (8, 14, 14)
    generator = torch.Generator().manual_seed(0)
    mask = TubeMasker(grid, 0.9)(4, generator, "cpu")
    for decoder_mask in (RunningCellDecoderMask(grid, 0.5), RandomDecoderMask(0.5)):
        narrowed = decoder_mask(mask, generator)
        assert narrowed.hidden.shape == (4, 704) and torch.equal(narrowed.visible, mask.visible)
        for row, full in zip(narrowed.hidden, mask.hidden):
            assert set(row.tolist()) <= set(full.tolist())
            assert torch.equal(row, row.sort().values)


def test_running_cell_prefers_the_pattern():
    grid = (8, 14, 14)
    generator = torch.Generator().manual_seed(1)
    mask = TubeMasker(grid, 0.9)(16, generator, "cpu")
    cell = RunningCellDecoderMask(grid, 0.5)
    torch.manual_seed(0)
    narrowed = cell(mask, torch.Generator().manual_seed(2))
    # every kept token lies on the pattern of its sample's start slot whenever the pattern offers enough
    starts = torch.randint(4, (16,), generator=torch.Generator().manual_seed(2))
    decoded = cell.decoded(starts)
    on_pattern = torch.gather(decoded, 1, narrowed.hidden).float().mean().item()
    assert on_pattern > 0.99


def test_objective_trains_on_the_narrowed_mask(small_objective):
    objective = small_objective()
    objective.decoder_masker = RandomDecoderMask(0.5)
    seen = []
    decoder_forward = objective.decoder.forward
    objective.decoder.forward = lambda latent, mask: seen.append(mask.hidden.shape) or decoder_forward(latent, mask)
    loss, _ = objective({"video": torch.randn(2, 3, 4, 16, 16)})
    loss.backward()
    assert seen == [(2, 3)]  # 2 slices x 3 of 4 hidden = 6, halved
