"""The shared transformer encoder: any modality's tokens in, states out.

It knows nothing of raw data: tokens arrive with positions already added, and masking comes in
as index tensors, either dropping hidden tokens (MAE) or swapping them for a mask embedding
(SSAST's BEiT-style corruption).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from tessera.core.blocks import make_block
from tessera.core.init import init_vit_weights
from tessera.core.masking import gather_tokens


class Encoder(nn.Module):
    """A stack of blocks with an optional final LayerNorm and an optional mask embedding."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        block: str = "beit",
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        final_norm: bool = True,
        mask_embed: bool = False,
        init: str = "xavier",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.depth = depth
        # Stochastic depth grows linearly from 0 at the first block to drop_path at the last
        # (VideoMAE modeling_pretrain.py / modeling_finetune.py use torch.linspace(0, rate, depth)).
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 0 else []
        self.blocks = nn.ModuleList(
            make_block(block, dim, heads, mlp_ratio=mlp_ratio, drop_path=r, norm_eps=norm_eps)
            for r in rates
        )
        self.norm: nn.Module = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()
        init_vit_weights(self, init)
        if mask_embed:
            # SSAST: one learnable mask embedding, xavier-normal init (reference B3).
            self.mask_embed: nn.Parameter | None = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.xavier_normal_(self.mask_embed)
        else:
            self.mask_embed = None

    def no_weight_decay_names(self) -> set[str]:
        """Parameter names excluded from weight decay (positions are buffers, not listed)."""
        return {"mask_embed"} if self.mask_embed is not None else set()

    def _layer_index(self, layer: int) -> int:
        index = layer + self.depth if layer < 0 else layer
        if not 0 <= index < self.depth:
            raise ValueError(f"return_layers entry {layer} is out of range for depth {self.depth}")
        return index

    def _insert_mask_embed(
        self, tokens: Tensor, index: Tensor, positions: Tensor | None, num_prefix: int
    ) -> Tensor:
        """Replace the non-prefix tokens at `index` (B, Nh) by mask_embed + their positions."""
        if self.mask_embed is None:
            raise ValueError("mask_token_at needs an Encoder built with mask_embed=True")
        if positions is None:
            raise ValueError(
                "mask_token_at needs `positions` (1 or B, N, D) for the non-prefix tokens: a mask "
                "token carries its position (SSAST adds the positions after the replacement)"
            )
        body = tokens[:, num_prefix:]
        if positions.shape[-2:] != body.shape[-2:]:
            raise ValueError(
                f"positions {tuple(positions.shape)} do not match the {body.shape[1]} non-prefix "
                f"tokens of width {body.shape[2]}"
            )
        fill = self.mask_embed.to(tokens.dtype) + gather_tokens(positions.to(tokens.dtype), index)
        scatter_index = index.unsqueeze(-1).expand(-1, -1, body.shape[-1])
        body = body.scatter(1, scatter_index, fill)
        return torch.cat([tokens[:, :num_prefix], body], dim=1)

    def forward(
        self,
        tokens: Tensor,
        keep: Tensor | None = None,
        mask_token_at: Tensor | None = None,
        positions: Tensor | None = None,
        num_prefix: int = 0,
        return_layers: Sequence[int] = (),
        final_norm: bool = True,
    ) -> tuple[Tensor, dict[int, Tensor]]:
        """tokens (B, P+N, D), positions already added -> (last, {layer: states}).

        keep (B, Nv): run the P prefix tokens and the kept non-prefix tokens only (MAE), so
            last is (B, P+Nv, D). mask_token_at (B, Nh): swap those non-prefix tokens for
            mask_embed + positions[idx] and run all P+N tokens (SSAST).
        return_layers: block indices from 0 (negative from the end); their outputs, before the
            final norm, come back keyed by the non-negative index.
        final_norm=False: return the last block's output un-normed (for heads with their own norm).
        """
        if keep is not None and mask_token_at is not None:
            raise ValueError("pass either keep (drop hidden tokens) or mask_token_at, not both")
        if keep is not None:
            tokens = torch.cat(
                [tokens[:, :num_prefix], gather_tokens(tokens[:, num_prefix:], keep)], dim=1
            )
        elif mask_token_at is not None:
            tokens = self._insert_mask_embed(tokens, mask_token_at, positions, num_prefix)

        wanted = {self._layer_index(layer) for layer in return_layers}
        states: dict[int, Tensor] = {}
        x = tokens
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                states[i] = x
        if final_norm:
            x = self.norm(x)
        return x, states
