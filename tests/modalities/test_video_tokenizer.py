from __future__ import annotations

import pytest
import torch

from tessera.core.positions import sincos_1d
from tessera.modalities.video.tokenizer import TubeletTokenizer


def _tiny(**kw) -> TubeletTokenizer:
    torch.manual_seed(0)
    return TubeletTokenizer(8, frames=4, size=(6, 4), tubelet=(2, 3, 2), channels=2, **kw)


def test_attributes() -> None:
    tok = _tiny()
    assert tok.grid == (2, 2, 2) and tok.num_tokens == 8 and tok.num_prefix == 0
    assert tok.patch_dim == 2 * 3 * 2 * 2 and tok.position_kind == "sincos_flat"
    assert tok.positions().shape == (1, 8, 8)
    assert TubeletTokenizer(384).grid == (8, 14, 14)


def test_patchify_matches_rearrange_definition() -> None:
    tok = _tiny()
    x = torch.randn(2, 2, 4, 6, 4)
    p0, p1, p2 = tok.tubelet
    gt, gh, gw = tok.grid
    expected = torch.empty(2, gt * gh * gw, p0 * p1 * p2 * 2)
    # b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2 c), written with loops
    for b in range(2):
        for t in range(gt):
            for h in range(gh):
                for w in range(gw):
                    n = (t * gh + h) * gw + w
                    for i in range(p0):
                        for j in range(p1):
                            for k in range(p2):
                                for c in range(2):
                                    f = ((i * p1 + j) * p2 + k) * 2 + c
                                    expected[b, n, f] = x[b, c, t * p0 + i, h * p1 + j, w * p2 + k]
    assert torch.equal(tok.patchify(x), expected)
    assert torch.equal(tok.unpatchify(tok.patchify(x)), x)


def test_forward_adds_positions_in_token_order() -> None:
    tok = _tiny()
    x = torch.randn(2, 2, 4, 6, 4)
    tokens = tok(x)
    assert tokens.shape == (2, 8, 8)
    conv = tok.proj(x).flatten(2).transpose(1, 2)  # (t, h, w) row-major
    torch.testing.assert_close(tokens - conv, sincos_1d(8, 8).expand(2, -1, -1))
    # each token is the conv of its own tubelet
    weight = tok.proj.weight.permute(0, 2, 3, 4, 1).reshape(8, -1)  # (D, p0 p1 p2 c)
    torch.testing.assert_close(conv, tok.patchify(x) @ weight.T + tok.proj.bias, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert tok(x).dtype == torch.bfloat16  # positions follow the tokens' dtype
    assert not tok.state_dict().keys() - {"proj.weight", "proj.bias"}


def test_refusals_and_learned() -> None:
    with pytest.raises(ValueError, match=r"\(16, 224, 220\).*\(2, 16, 16\)"):
        TubeletTokenizer(8, size=(224, 220))
    with pytest.raises(ValueError, match="expected clips"):
        _tiny()(torch.randn(1, 2, 4, 6, 6))
    learned = _tiny(position_kind="learned")
    assert "pos_embed" in learned.state_dict() and learned.no_weight_decay_names() == {"pos_embed"}
    grid_tok = TubeletTokenizer(12, frames=4, size=(6, 4), tubelet=(2, 3, 2), position_kind="sincos_grid")
    assert grid_tok.positions().shape == (1, 8, 12)
