"""Feature tokens for a table row: FT-Transformer's tokenizer with T-JEPA's regularization tokens.

Token order is [regularization..., numerical..., categorical...] (jose-melo/t-jepa src/encoder.py
`Tokenizer`), then fixed sin-cos positions with base 100 over all slots (src/utils/train_utils.py
`PositionalEncoding`: interleaved sin/cos, pos / 100^(2k/d)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tessera.core.positions import sincos_1d


class FeatureTokenizer(nn.Module):
    """A row's features -> tokens (B, P + Dn + Dc, dim), positions added.

    numerical feature j: x_j * W_j + b_j (per-feature weight and bias vectors);
    categorical feature j: an embedding row of its code + b_j (one table per column, a last row per
        column for categories unseen in the training rows);
    regularization token r: 1 * W_r with no bias, so it is a learned vector that carries no data
        (T-JEPA's `n_cls_tokens`, prepended);
    a missing cell (batch["missing"]): the feature's token is replaced by a learned per-feature missing
        token (ours: the reference has no missing values to handle).

    Init as the reference's effective one: W and b kaiming-uniform(a=sqrt 5) (rtdl's nn.Linear-like
    init kept by T-JEPA); categorical embeddings trunc-normal std 0.02 (its `init_weights` overrides
    their kaiming init); missing tokens trunc-normal std 0.02.
    """

    def __init__(
        self,
        num_numerical: int,
        cardinalities: Sequence[int],
        dim: int,
        num_reg_tokens: int = 1,
        position_base: float = 100.0,
    ) -> None:
        super().__init__()
        self.num_numerical = num_numerical
        self.cardinalities = [int(c) for c in cardinalities]  # known categories per column (bucket excluded)
        self.num_categorical = len(self.cardinalities)
        self.num_features = num_numerical + self.num_categorical
        if self.num_features < 1:
            raise ValueError("a table needs at least one feature column")
        self.dim = dim
        self.num_prefix = num_reg_tokens
        self.grid = (self.num_features,)
        self.num_tokens = self.num_features
        self.weight = nn.Parameter(torch.empty(num_reg_tokens + num_numerical, dim))
        self.bias = nn.Parameter(torch.empty(self.num_features, dim))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.bias, a=math.sqrt(5))
        if self.num_categorical:
            sizes = torch.tensor([c + 1 for c in self.cardinalities])  # + the unseen-category bucket
            offsets = torch.cumsum(sizes, 0) - sizes
            self.register_buffer("category_offsets", offsets, persistent=False)
            self.category_embed = nn.Embedding(int(sizes.sum()), dim)
            nn.init.trunc_normal_(self.category_embed.weight, std=0.02)
        else:
            self.category_offsets = None
            self.category_embed = None
        self.missing_token = nn.Parameter(torch.empty(self.num_features, dim))
        nn.init.trunc_normal_(self.missing_token, std=0.02)
        table = sincos_1d(num_reg_tokens + self.num_features, dim, base=position_base)
        self.register_buffer("positions", table.unsqueeze(0), persistent=False)

    def forward(self, batch: dict[str, Tensor] | Tensor, cat: Tensor | None = None,
                missing: Tensor | None = None) -> Tensor:
        """A batch with num (B, Dn) float, cat (B, Dc) long codes and optionally missing (B, Dn + Dc) bool
        (or those three tensors) -> tokens (B, P + Dn + Dc, dim)."""
        if isinstance(batch, Tensor):
            batch = {"num": batch, "cat": cat, "missing": missing}
        num, cat = batch.get("num"), batch.get("cat")
        some = num if num is not None and num.shape[1] else cat
        b = some.shape[0]
        ones = torch.ones(b, self.num_prefix, dtype=self.weight.dtype, device=some.device)
        values = torch.cat([ones, num.to(self.weight.dtype)], dim=1) if self.num_numerical else ones
        tokens = values.unsqueeze(-1) * self.weight  # (B, P + Dn, dim)
        if self.num_categorical:
            tokens = torch.cat([tokens, self.category_embed(cat + self.category_offsets)], dim=1)
        body = tokens[:, self.num_prefix:] + self.bias
        missing = batch.get("missing")
        if missing is not None:
            body = torch.where(missing.unsqueeze(-1), self.missing_token.to(body.dtype), body)
        return torch.cat([tokens[:, : self.num_prefix], body], dim=1) + self.positions.to(body.dtype)
