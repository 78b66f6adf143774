"""JEPA pieces: an encoder with T-JEPA's output tail, and the transformer predictor.

T-JEPA (jose-melo/t-jepa src/encoder.py `TabularEncoder`) ends its block stack with
dropout -> LayerNorm -> Linear(h, h) -> dropout -> LayerNorm; the first LayerNorm is our Encoder's final
norm, `TailedEncoder` adds the Linear and the second LayerNorm. Its predictor (src/predictors.py
`TransformerPredictor`, I-JEPA style) reuses that stack at its own width.
Dropout (about 0.0019 in the released configuration) is left out: at that rate it changes little and
without it a step is a function of the weights and the masks alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tessera.core.encoder import Encoder
from tessera.core.init import init_vit_weights
from tessera.core.masking import gather_tokens
from tessera.core.positions import sincos_nd


class TailedEncoder(Encoder):
    """The shared Encoder plus, after its final norm, Linear(dim, dim) -> LayerNorm (T-JEPA's tail).

    With `tail=False` it is the plain Encoder. Init is T-JEPA's `trunc_normal` (Linear weights std 0.02
    truncated at +-2, zero biases, LayerNorm 1/0); the attention's fused in_proj keeps torch's
    xavier init, as it does in the reference (its init touches nn.Linear modules only).
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0, block: str = "post_norm",
                 norm_eps: float = 1e-5, tail: bool = True) -> None:
        super().__init__(dim, depth, heads, mlp_ratio=mlp_ratio, block=block, norm_eps=norm_eps, init="trunc_normal")
        self.tail = tail
        if tail:
            self.proj = nn.Linear(dim, dim)
            self.proj_norm = nn.LayerNorm(dim, eps=norm_eps)
            init_vit_weights(self.proj, "trunc_normal")

    def forward(self, tokens: Tensor, *args, final_norm: bool = True, **kwargs) -> tuple[Tensor, dict[int, Tensor]]:
        x, states = super().forward(tokens, *args, final_norm=final_norm, **kwargs)
        if final_norm and self.tail:
            x = self.proj_norm(self.proj(x))
        return x, states


class JEPAPredictor(nn.Module):
    """Context states and slot indices -> predicted target states, one set per target mask.

    T-JEPA `TransformerPredictor`: Linear(dim -> p) on the context states, plus fixed 1-D sin-cos
    positions ([sin | cos] halves, base 10000: I-JEPA's get_1d_sincos_pos_embed) at their slots; per
    target set, queries = one learned mask token + the positions of its slots; the context is repeated
    per target set and concatenated with the queries; a TailedEncoder of width p; LayerNorm; the query
    outputs -> Linear(p -> dim). Slots index the full token sequence (prefix tokens included), so the
    table is built over `num_slots` = P + N.
    """

    def __init__(self, dim: int, pred_dim: int, depth: int, heads: int, num_slots: int, mlp_ratio: float = 4.0,
                 block: str = "post_norm", norm_eps: float = 1e-5, tail: bool = True) -> None:
        super().__init__()
        self.embed = nn.Linear(dim, pred_dim)
        self.register_buffer("positions", sincos_nd((num_slots,), pred_dim).unsqueeze(0), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, pred_dim))
        self.encoder = TailedEncoder(pred_dim, depth, heads, mlp_ratio=mlp_ratio, block=block, norm_eps=norm_eps,
                                     tail=tail)
        self.norm = nn.LayerNorm(pred_dim, eps=norm_eps)
        self.proj = nn.Linear(pred_dim, dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        init_vit_weights(self.embed, "trunc_normal")
        init_vit_weights(self.proj, "trunc_normal")

    def forward(self, context: Tensor, context_slots: Tensor, target_slots: Tensor) -> Tensor:
        """context (B, Nc, dim) at slots (B, Nc); target_slots (B, M, Nt) -> predictions (B, M, Nt, dim)."""
        b, m, nt = target_slots.shape
        x = self.embed(context) + gather_tokens(self.positions.to(context.dtype), context_slots)
        positions = gather_tokens(self.positions.to(x.dtype), target_slots.reshape(b, m * nt))
        queries = self.mask_token.to(x.dtype) + positions
        x = x.repeat_interleave(m, dim=0)  # (B * M, Nc, p): sample-major, target set minor
        queries = queries.reshape(b * m, nt, -1)
        out, _ = self.encoder(torch.cat([x, queries], dim=1))
        out = self.proj(self.norm(out[:, -nt:]))
        return out.reshape(b, m, nt, -1)
