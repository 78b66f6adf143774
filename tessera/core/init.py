"""Weight initialisation rules, named after the stage they come from (pretraining vs fine-tuning)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

INIT_STYLES = ("xavier", "trunc_normal", "default")


def trunc_normal_std_bounded_(t: Tensor, std: float = 0.02) -> Tensor:
    """Normal(0, std) truncated at +-std (not +-2 absolute).

    # VideoMAE modeling_pretrain.py wraps timm's trunc_normal_ with a=-std, b=std for mask_token
    # (reference D).
    """
    return nn.init.trunc_normal_(t, mean=0.0, std=std, a=-std, b=std)


@torch.no_grad()
def init_vit_weights(module: nn.Module, style: str = "xavier") -> None:
    """Re-initialise every Linear and LayerNorm under `module`.

    "xavier": xavier-uniform Linear weights, zero biases (VideoMAE modeling_pretrain.py
        `_init_weights`, pretraining). "trunc_normal": Linear weights from a normal with std 0.02
        truncated at +-2 (timm's default bounds), zero biases (VideoMAE modeling_finetune.py,
        fine-tuning). "default": leave PyTorch's own init. LayerNorm gets weight 1, bias 0.
    Conv layers keep PyTorch's default init in every style (reference D: `patch_embed` is never
    touched by the reference's init). Parameters that are not Linear/LayerNorm (q_bias, v_bias,
    mask tokens, MultiheadAttention's in_proj_weight) are left alone.
    """
    if style not in INIT_STYLES:
        raise ValueError(f"unknown init style {style!r}; valid styles: {', '.join(INIT_STYLES)}")
    if style == "default":
        return
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            if style == "xavier":
                nn.init.xavier_uniform_(sub.weight)
            else:
                nn.init.trunc_normal_(sub.weight, std=0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            if sub.weight is not None:
                nn.init.ones_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
