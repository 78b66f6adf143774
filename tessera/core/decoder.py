"""The MAE decoder: visible states plus a Mask in, predictions for the hidden tokens out.

It builds its own positions at its own width from the tokenizer's grid, so the encoder never has
to know the decoder exists.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from tessera.core.blocks import make_block
from tessera.core.init import init_vit_weights, trunc_normal_std_bounded_
from tessera.core.masking import Mask, gather_tokens
from tessera.core.positions import register_positions


class MAEDecoder(nn.Module):
    """Lightweight transformer that predicts `patch_dim` values for each hidden token."""

    def __init__(
        self,
        encoder_dim: int,
        dim: int,
        depth: int,
        heads: int,
        patch_dim: int,
        grid: Sequence[int],
        position_kind: str = "sincos_flat",
        num_prefix: int = 0,
        mlp_ratio: float = 4.0,
        block: str = "beit",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_prefix = num_prefix
        self.grid = tuple(int(g) for g in grid)
        self.position_kind = position_kind
        self.blocks = nn.ModuleList(
            make_block(block, dim, heads, mlp_ratio=mlp_ratio, norm_eps=norm_eps)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head = nn.Linear(dim, patch_dim)
        # VideoMAE modeling_pretrain.py: the decoder's blocks and head get the xavier pretraining init.
        init_vit_weights(self, "xavier")
        # Created after the init pass so they keep their own init (reference D): a bias-free
        # projection with PyTorch's default init, and a mask token truncated at +-std.
        self.encoder_to_decoder = nn.Linear(encoder_dim, dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_std_bounded_(self.mask_token, std=0.02)
        # Fixed tables are non-persistent buffers: no checkpoint key, as in the reference (A8).
        register_positions(self, "pos_embed", position_kind, self.grid, dim)

    def no_weight_decay_names(self) -> set[str]:
        """Parameter names excluded from weight decay."""
        names = {"mask_token"}
        if self.position_kind == "learned":
            names.add("pos_embed")
        return names

    def forward(self, latent: Tensor, mask: Mask) -> Tensor:
        """latent (B, P+Nv, De) from the encoder, mask with visible (B, Nv) and hidden (B, Nh)
        -> predictions (B, Nh, patch_dim) in mask.hidden order.

        # VideoMAE modeling_pretrain.py: the sequence is [visible + PE, mask tokens + PE],
        # visible-first and not unshuffled; only the last N_mask outputs are predicted.
        """
        if mask.visible is None or mask.hidden is None:
            raise ValueError("MAEDecoder needs a Mask with visible and hidden indices")
        x = self.encoder_to_decoder(latent)
        batch = x.shape[0]
        prefix, visible = x[:, : self.num_prefix], x[:, self.num_prefix :]
        if visible.shape[1] != mask.visible.shape[1]:
            raise ValueError(
                f"latent has {visible.shape[1]} non-prefix tokens but mask.visible has "
                f"{mask.visible.shape[1]} (num_prefix={self.num_prefix})"
            )
        pos = self.pos_embed.to(x.dtype)
        visible = visible + gather_tokens(pos, mask.visible)
        num_hidden = mask.hidden.shape[1]
        hidden = self.mask_token.to(x.dtype).expand(batch, num_hidden, -1)
        hidden = hidden + gather_tokens(pos, mask.hidden)
        x = torch.cat([prefix, visible, hidden], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, x.shape[1] - num_hidden :]))
