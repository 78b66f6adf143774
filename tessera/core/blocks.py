"""Transformer block kinds, so each reference's parameter layout is reproduced exactly.

All kinds map (B, N, D) -> (B, N, D) and reach `F.scaled_dot_product_attention`.
"""

from __future__ import annotations

from functools import partial

from timm.models.beit import Block as BeitBlock
from timm.models.vision_transformer import Block as VitBlock
from torch import nn

BLOCK_KINDS = ("beit", "vit", "post_norm")


def make_block(
    kind: str,
    dim: int,
    heads: int,
    mlp_ratio: float = 4.0,
    drop_path: float = 0.0,
    norm_eps: float = 1e-6,
    dropout: float = 0.0,
) -> nn.Module:
    """Build one block of `kind`: (B, N, D) -> (B, N, D).

    beit: q and v biases, k bias fixed at zero, no layer scale. VideoMAE modeling_finetune.py
        `Attention` concatenates (q_bias, zeros, v_bias), and its pretraining builds blocks with
        init_values=0 (no gamma); reference D: this reproduces VideoMAE's parameter counts.
    vit: full qkv bias, as the DeiT blocks SSAST builds on (reference B4).
    post_norm: torch's post-norm ReLU encoder layer (T-JEPA's reference). It reaches SDPA too:
        the layer calls MultiheadAttention with need_weights=False, which goes through
        F.scaled_dot_product_attention (and the fused fast path in inference).
    """
    if kind == "beit":
        block = BeitBlock(
            dim,
            heads,
            qkv_bias=True,
            mlp_ratio=mlp_ratio,
            proj_drop=dropout,
            drop_path=drop_path,
            init_values=None,
            norm_layer=partial(nn.LayerNorm, eps=norm_eps),
        )
    elif kind == "vit":
        block = VitBlock(
            dim,
            heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            proj_drop=dropout,
            drop_path=drop_path,
            norm_layer=partial(nn.LayerNorm, eps=norm_eps),
        )
    elif kind == "post_norm":
        if drop_path > 0:
            raise ValueError(
                f"block 'post_norm' (nn.TransformerEncoderLayer) has no stochastic depth; "
                f"got drop_path={drop_path}"
            )
        return nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=heads,
            dim_feedforward=int(dim * mlp_ratio),
            dropout=dropout,
            activation="relu",
            layer_norm_eps=norm_eps,
            batch_first=True,
            norm_first=False,
        )
    else:
        raise ValueError(f"unknown block kind {kind!r}; valid kinds: {', '.join(BLOCK_KINDS)}")
    # timm reads TIMM_FUSED_ATTN at build time; the toolkit always wants SDPA unless a benchmark
    # flips it back with set_fused_attention.
    set_fused_attention(block, True)
    return block


def set_fused_attention(module: nn.Module, enabled: bool) -> None:
    """Switch every timm attention inside `module` between SDPA and the eager matmul-softmax path
    (for eager baselines in benchmarks). torch's MultiheadAttention has no such switch."""
    for sub in module.modules():
        if hasattr(sub, "fused_attn"):
            sub.fused_attn = enabled
