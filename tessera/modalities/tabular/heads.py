"""Downstream models on a table: T-JEPA's input adapters and its MLP (jose-melo/t-jepa src/models/mlp.py,
src/utils/models_utils.py `EncodeEmbeddingFeatures`), and the raw-feature input of the baselines."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ADAPTERS = ("linear_flatten", "mean_pool", "linear_per_feature")


class TokenAdapter(nn.Module):
    """Token states (B, T, h) -> one number per token (B, T), as the reference's adapters:

    linear_flatten: flatten, then Linear(T * h -> T) (its output width is the token count);
    mean_pool: the mean over the h channels of each token (AvgPool1d(h): it pools channels, not tokens);
    linear_per_feature: one Linear(h -> 1) per token.
    """

    def __init__(self, kind: str, num_tokens: int, dim: int) -> None:
        super().__init__()
        if kind not in ADAPTERS:
            raise ValueError(f"unknown adapter {kind!r}; valid: {', '.join(ADAPTERS)}")
        self.kind = kind
        if kind == "linear_flatten":
            self.linear = nn.Linear(num_tokens * dim, num_tokens)
        elif kind == "linear_per_feature":
            layer = nn.Linear(dim, 1)  # torch's default init, per token, as T separate nn.Linear(h, 1)
            weights, biases = [], []
            for _ in range(num_tokens):
                layer.reset_parameters()
                weights.append(layer.weight.detach().clone().squeeze(0))
                biases.append(layer.bias.detach().clone())
            self.weight = nn.Parameter(torch.stack(weights))  # (T, h)
            self.bias = nn.Parameter(torch.cat(biases))  # (T,)

    def forward(self, states: Tensor) -> Tensor:
        if self.kind == "linear_flatten":
            return self.linear(states.flatten(1))
        if self.kind == "mean_pool":
            return states.mean(dim=-1)
        return torch.einsum("bth,th->bt", states, self.weight) + self.bias


class MLP(nn.Module):
    """Linear(in, hidden), then depth - 1 blocks of [Linear, ReLU, Dropout, BatchNorm1d], then the head."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, depth: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Linear(in_dim, hidden)]
        for _ in range(depth - 1):
            blocks += [nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.BatchNorm1d(hidden)]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class Standardize(nn.Module):
    """A fixed affine map: (x - mean) / std per element, fitted once on the training rows' tokens.

    Ours, not the reference's (`objective.standardize`): T-JEPA's tokens are dominated by their
    row-independent part (positions, feature weights); what tells rows apart is a small share of their
    energy (relative variance 1e-3 to 1e-2), so the adapter sees it at unit scale only after this map
    (MAE's linear probe normalises its frozen features the same way, with an affine-free BatchNorm).
    """

    def __init__(self, features: Tensor, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer("mean", features.mean(dim=0, keepdim=True))
        self.register_buffer("std", features.std(dim=0, keepdim=True).clamp_min(eps))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class TabularPredictor(nn.Module):
    """What a downstream model reads -> outputs (B, classes) or (B, 1).

    - `backbone` set (fine-tuning): batch num / cat / missing -> backbone -> [scale] -> adapter -> MLP;
    - `adapter` only (frozen): batch["features"] (B, T, h), precomputed tokens -> [scale] -> adapter -> MLP;
    - neither (raw baseline): batch["features"] (B, F) -> MLP.
    """

    def __init__(self, mlp: MLP, adapter: TokenAdapter | None = None, backbone: nn.Module | None = None,
                 scale: Standardize | None = None) -> None:
        super().__init__()
        self.backbone, self.scale, self.adapter, self.mlp = backbone, scale, adapter, mlp

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.backbone(batch) if self.backbone is not None else batch["features"]
        if self.scale is not None:
            x = self.scale(x)
        if self.adapter is not None:
            x = self.adapter(x)
        return self.mlp(x)


class Backbone(nn.Module):
    """A tokenizer and an encoder: a row -> token states (B, P + N, h). Loads `target_encoder.*` weights."""

    def __init__(self, tokenizer: nn.Module, encoder: nn.Module) -> None:
        super().__init__()
        self.tokenizer, self.encoder = tokenizer, encoder

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        states, _ = self.encoder(self.tokenizer(batch))
        return states


def raw_features(num: Tensor, cat: Tensor, missing: Tensor, cardinalities: Sequence[int]) -> Tensor:
    """The baselines' MLP input: min-max numbers, a missing flag per feature, one-hot categories (the
    unseen-category bucket included). (N, Dn + D + sum(K + 1)) float32."""
    parts = [num.float(), missing.float()]
    for j, k in enumerate(cardinalities):
        parts.append(F.one_hot(cat[:, j], k + 1).float())
    return torch.cat(parts, dim=1)
