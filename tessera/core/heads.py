"""Task heads on encoder states: pooled classification and regression."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from tessera.core.init import init_vit_weights

Pool = Literal["mean", "cls", "flatten"]


class PooledHead(nn.Module):
    """Pool the non-prefix tokens, normalise, drop out, project: (B, P+N, D) -> (B, num_outputs).

    VideoMAE modeling_finetune.py: mean of all tokens, `fc_norm` LayerNorm (the encoder's own final
    norm becomes Identity under mean pooling), dropout `fc_drop_rate`, then a Linear whose trunc-normal
    0.02 init is scaled by `init_scale` (0.001), bias included.
    """

    def __init__(
        self,
        dim: int,
        num_outputs: int,
        pool: Pool = "mean",
        num_prefix: int = 0,
        fc_norm: bool = True,
        dropout: float = 0.0,
        init_scale: float = 0.001,
        norm_eps: float = 1e-6,
        num_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if pool == "flatten" and num_tokens is None:
            raise ValueError("flatten pooling needs num_tokens")
        self.pool, self.num_prefix = pool, num_prefix
        width = dim * num_tokens if pool == "flatten" else dim
        self.fc_norm: nn.Module = nn.LayerNorm(width, eps=norm_eps) if fc_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_outputs)
        init_vit_weights(self, "trunc_normal")
        with torch.no_grad():
            self.head.weight.mul_(init_scale)
            self.head.bias.mul_(init_scale)

    def features(self, states: Tensor) -> Tensor:
        """The pooled, normalised representation the linear layer reads (what probes and `embed` use)."""
        if self.pool == "mean":
            pooled = states[:, self.num_prefix:].mean(dim=1)
        elif self.pool == "cls":
            pooled = states[:, 0]
        else:
            pooled = states[:, self.num_prefix:].flatten(1)
        return self.fc_norm(pooled)

    def forward(self, states: Tensor) -> Tensor:
        return self.head(self.dropout(self.features(states)))
