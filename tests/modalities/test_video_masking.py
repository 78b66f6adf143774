from __future__ import annotations

import pytest
import torch

from tessera.modalities.video.masking import TubeMasker


def test_reference_counts() -> None:
    masker = TubeMasker((8, 14, 14), 0.9)
    assert masker.hidden_per_slice == 176 and masker.num_hidden == 1408 and masker.num_visible == 160
    assert TubeMasker((8, 14, 14), 0.75).num_hidden == 1176


def test_tube_structure() -> None:
    grid, ratio = (3, 4, 5), 0.6
    masker = TubeMasker(grid, ratio)
    mask = masker(6, torch.Generator().manual_seed(1), "cpu")
    slice_size, per_slice = 20, int(ratio * 20)
    assert mask.hidden.shape == (6, 3 * per_slice) and mask.visible.shape == (6, 3 * (20 - per_slice))
    for b in range(6):
        hidden, visible = mask.hidden[b], mask.visible[b]
        assert torch.equal(hidden, hidden.sort().values) and torch.equal(visible, visible.sort().values)
        assert torch.equal(torch.cat([hidden, visible]).sort().values, torch.arange(60))
        spatial = [set((hidden[(hidden // slice_size) == t] % slice_size).tolist()) for t in range(3)]
        assert all(len(s) == per_slice for s in spatial) and spatial[0] == spatial[1] == spatial[2]
    rows = {tuple(r) for r in mask.hidden.tolist()}
    assert len(rows) > 1  # different across samples


def test_seeded_generator_is_deterministic() -> None:
    masker = TubeMasker((2, 3, 3), 0.5)
    a = masker(4, torch.Generator().manual_seed(7), "cpu")
    b = masker(4, torch.Generator().manual_seed(7), "cpu")
    assert torch.equal(a.hidden, b.hidden) and torch.equal(a.visible, b.visible)


def test_refusals() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TubeMasker((2, 3, 3), 1.0)
    with pytest.raises(ValueError, match="T, H, W"):
        TubeMasker((3, 3), 0.5)
