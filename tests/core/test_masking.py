from __future__ import annotations

import pytest
import torch

from tessera.core.masking import Mask, RandomMasker, gather_tokens


def test_gather_tokens_any_trailing_dims() -> None:
    x = torch.arange(2 * 5 * 3 * 2).reshape(2, 5, 3, 2)
    index = torch.tensor([[0, 4], [3, 1]])
    out = gather_tokens(x, index)
    assert out.shape == (2, 2, 3, 2)
    for b in range(2):
        for k in range(2):
            assert torch.equal(out[b, k], x[b, index[b, k]])
    shared = torch.randn(1, 5, 4)  # a (1, N, D) table broadcasts over the batch
    assert torch.equal(gather_tokens(shared, index)[1, 0], shared[0, 3])


def test_random_masker_counts_sorted_disjoint() -> None:
    masker = RandomMasker(20, 0.75)
    assert masker.num_hidden == 15
    gen = torch.Generator().manual_seed(0)
    mask = masker(4, gen, "cpu")
    assert isinstance(mask, Mask) and mask.context is None
    assert mask.visible.shape == (4, 5) and mask.hidden.shape == (4, 15)
    assert mask.visible.dtype == torch.long
    for b in range(4):
        both = torch.cat([mask.visible[b], mask.hidden[b]])
        assert torch.equal(both.sort().values, torch.arange(20))
        assert torch.equal(mask.visible[b], mask.visible[b].sort().values)
        assert torch.equal(mask.hidden[b], mask.hidden[b].sort().values)
    again = masker(4, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(again.hidden, mask.hidden)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_random_masker_refuses_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        RandomMasker(10, ratio)
