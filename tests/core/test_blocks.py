from __future__ import annotations

import pytest
import torch
from timm.models.beit import Block as BeitBlock
from timm.models.vision_transformer import Block as VitBlock
from torch import nn

from tessera.core.blocks import BLOCK_KINDS, make_block, set_fused_attention


@pytest.mark.parametrize("kind", BLOCK_KINDS)
def test_block_forward_backward(kind: str) -> None:
    torch.manual_seed(0)
    block = make_block(kind, 16, 2)
    x = torch.randn(2, 5, 16, requires_grad=True)
    y = block(x)
    assert y.shape == (2, 5, 16)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_block_types_and_biases() -> None:
    beit = make_block("beit", 16, 2)
    assert isinstance(beit, BeitBlock) and beit.gamma_1 is None  # no layer scale
    assert beit.attn.qkv.bias is None and beit.attn.q_bias is not None and beit.attn.v_bias is not None
    assert "attn.k_bias" not in dict(beit.named_parameters())
    assert torch.count_nonzero(beit.attn.k_bias) == 0
    assert beit.norm1.eps == 1e-6
    vit = make_block("vit", 16, 2, norm_eps=1e-5)
    assert isinstance(vit, VitBlock) and vit.attn.qkv.bias is not None and vit.norm1.eps == 1e-5
    post = make_block("post_norm", 16, 2, mlp_ratio=2.0)
    assert isinstance(post, nn.TransformerEncoderLayer) and not post.norm_first
    assert post.linear1.out_features == 32


def test_fused_attention_toggle_keeps_outputs() -> None:
    torch.manual_seed(0)
    stack = nn.Sequential(make_block("beit", 16, 2), make_block("vit", 16, 2)).eval()
    attns = [m for m in stack.modules() if hasattr(m, "fused_attn")]
    assert len(attns) == 2 and all(a.fused_attn for a in attns)
    x = torch.randn(2, 5, 16)
    fused = stack(x)
    set_fused_attention(stack, False)
    assert not any(a.fused_attn for a in attns)
    torch.testing.assert_close(stack(x), fused, rtol=1e-5, atol=1e-5)


def test_unknown_block_and_post_norm_drop_path_refused() -> None:
    with pytest.raises(ValueError, match="beit, vit, post_norm"):
        make_block("swin", 16, 2)
    with pytest.raises(ValueError, match="drop_path"):
        make_block("post_norm", 16, 2, drop_path=0.1)
