"""The feature tokenizer's layout and the feature-subset sampler's sets."""

from __future__ import annotations

import math

import pytest
import torch

from tessera.core.positions import sincos_1d
from tessera.modalities.tabular.sampler import FeatureSubsetSampler
from tessera.modalities.tabular.tokenizer import FeatureTokenizer


def batch(b: int = 5, dn: int = 3, cards=(2, 4)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"num": torch.rand(b, dn, generator=g),
            "cat": torch.stack([torch.randint(0, k + 1, (b,), generator=g) for k in cards], dim=1),
            "missing": torch.zeros(b, dn + len(cards), dtype=torch.bool)}


def test_token_layout_regularization_first_then_numerical_then_categorical():
    torch.manual_seed(0)
    tok = FeatureTokenizer(3, [2, 4], dim=8, num_reg_tokens=2, position_base=100.0)
    x = batch()
    tokens = tok(x)
    assert tokens.shape == (5, 2 + 3 + 2, 8) and tok.num_prefix == 2 and tok.grid == (5,)
    positions = sincos_1d(7, 8, base=100.0)
    assert torch.allclose(tok.positions[0], positions)
    # regularization tokens: input value 1, no bias -> the same learned vector for every row
    assert torch.allclose(tokens[:, :2], (tok.weight[:2] + positions[:2]).expand(5, -1, -1))
    # numerical token j = x_j W_j + b_j (+ its position)
    expected = x["num"][:, 1:2] * tok.weight[3] + tok.bias[1] + positions[3]
    assert torch.allclose(tokens[:, 3], expected)
    # categorical token = its embedding row (offset per column, an unseen bucket each) + b_j
    offsets = [0, 3]
    expected = tok.category_embed.weight[offsets[1] + x["cat"][:, 1]] + tok.bias[4] + positions[6]
    assert torch.allclose(tokens[:, 6], expected)
    assert tok.category_embed.num_embeddings == (2 + 1) + (4 + 1)


def test_missing_cells_get_the_features_missing_token():
    torch.manual_seed(0)
    tok = FeatureTokenizer(3, [2, 4], dim=8)
    x = batch()
    x["missing"][1, 0] = x["missing"][2, 4] = True
    tokens = tok(x)
    assert torch.allclose(tokens[1, 1], tok.missing_token[0] + tok.positions[0, 1])
    assert torch.allclose(tokens[2, 5], tok.missing_token[4] + tok.positions[0, 5])
    untouched = tok(x["num"], x["cat"])  # tensors instead of a batch; no missing cells
    assert torch.equal(tokens[0], untouched[0]) and not torch.equal(tokens[1], untouched[1])


def test_positions_follow_the_references_base_100_table():
    table = sincos_1d(4, 6, base=100.0)
    k = torch.arange(3, dtype=torch.float64)
    angle = 3 * torch.exp(-2 * k * math.log(100.0) / 6)  # position 3 (T-JEPA PositionalEncoding)
    assert torch.allclose(table[3, 0::2].double(), torch.sin(angle), atol=1e-6)
    assert torch.allclose(table[3, 1::2].double(), torch.cos(angle), atol=1e-6)


def draw(sampler, count, b=16, seed=0):
    host, device = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    for _ in range(count):
        sizes = sampler.draw_sizes(host)
        yield sizes, sampler(b, device, "cpu", sizes)


def test_sets_are_disjoint_within_ranges_and_reach_every_feature():
    d = 10
    sampler = FeatureSubsetSampler(d, context=(0.136, 0.368), target=(0.156, 0.622), num_targets=4)
    assert sampler.context_range == (1, 4) and sampler.target_range == (2, 6)
    seen_context, seen_target, sizes_seen = torch.zeros(d), torch.zeros(d), set()
    for (n_ctx, n_tgt), mask in draw(sampler, 200):
        sizes_seen.add((n_ctx, n_tgt))
        assert 1 <= n_ctx <= 4 and 2 <= n_tgt <= 6 and n_ctx + n_tgt <= d
        assert mask.context.shape == (16, n_ctx) and mask.targets.shape == (16, 4, n_tgt)
        for i in range(16):
            ctx = set(mask.context[i].tolist())
            assert len(ctx) == n_ctx
            for t in range(4):
                tgt = set(mask.targets[i, t].tolist())
                assert len(tgt) == n_tgt and not ctx & tgt
        # indices are feature positions 0..D-1: the prefix (regularization) tokens are never in them
        assert mask.context.min() >= 0 and mask.targets.max() < d
        seen_context.index_add_(0, mask.context.flatten(), torch.ones(mask.context.numel()))
        seen_target.index_add_(0, mask.targets.flatten(), torch.ones(mask.targets.numel()))
    assert (seen_context > 0).all() and (seen_target > 0).all()  # the last feature too (the reference's off-by-one)
    # uniform over features: every feature's share within 15% of the mean
    for counts in (seen_context, seen_target):
        assert (counts / counts.mean() - 1).abs().max() < 0.15
    assert len(sizes_seen) > 10


def test_draws_are_reproducible_and_refuse_impossible_ranges():
    sampler = FeatureSubsetSampler(6)
    a = [m.targets for _, m in draw(sampler, 3)]
    b = [m.targets for _, m in draw(sampler, 3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="do not fit together"):
        FeatureSubsetSampler(4, context=(0.75, 0.75), target=(0.5, 0.5))
    with pytest.raises(ValueError, match="at least 2 features"):
        FeatureSubsetSampler(1)
