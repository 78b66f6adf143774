"""Tubelet tokens for video clips, the VideoMAE way.

Owns everything that knows the clip layout: the Conv3d embedding, the token grid, the positions,
and the pixel patches the MAE loss compares against.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from tessera.core.positions import register_positions


class TubeletTokenizer(nn.Module):
    """(B, C, T, H, W) clip -> (B, N, D) tokens with positions, N = (T/t)(H/p)(W/q).

    # VideoMAE modeling_finetune.py `PatchEmbed`: Conv3d with kernel = stride = tubelet (2, 16, 16);
    # 16x224x224 -> 8x14x14 = 1568 tokens in (t, h, w) row-major order (reference A2).
    """

    def __init__(
        self,
        dim: int,
        frames: int = 16,
        size: int | tuple[int, int] = 224,
        tubelet: Sequence[int] = (2, 16, 16),
        channels: int = 3,
        position_kind: str = "sincos_flat",
    ) -> None:
        super().__init__()
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.tubelet = tuple(int(k) for k in tubelet)
        if len(self.tubelet) != 3:
            raise ValueError(f"tubelet must be (t, h, w), got {tubelet}")
        clip = (frames, height, width)
        if any(c % k for c, k in zip(clip, self.tubelet)):
            raise ValueError(
                f"clip (frames, height, width) = {clip} is not divisible by the tubelet {self.tubelet}"
            )
        self.dim = dim
        self.channels = channels
        self.clip_shape = clip
        self.grid = tuple(c // k for c, k in zip(clip, self.tubelet))
        self.num_prefix = 0  # VideoMAE has no cls token (reference A2)
        self.num_tokens = math.prod(self.grid)
        self.patch_dim = math.prod(self.tubelet) * channels
        self.position_kind = position_kind
        # PyTorch's default init is kept (reference D: patch_embed is not re-initialised).
        self.proj = nn.Conv3d(channels, dim, kernel_size=self.tubelet, stride=self.tubelet)
        register_positions(self, "pos_embed", position_kind, self.grid, dim)

    def positions(self) -> Tensor:
        """The (1, N, D) positions added to the tokens (a buffer, or a Parameter if learned)."""
        return self.pos_embed

    def no_weight_decay_names(self) -> set[str]:
        """Parameter names excluded from weight decay (only learned positions are parameters)."""
        return {"pos_embed"} if self.position_kind == "learned" else set()

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, T, H, W) -> tokens (B, N, D), positions added in x's dtype."""
        if tuple(x.shape[1:]) != (self.channels, *self.clip_shape):
            raise ValueError(
                f"expected clips (B, {self.channels}, {', '.join(map(str, self.clip_shape))}), "
                f"got {tuple(x.shape)}"
            )
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return tokens + self.pos_embed.to(tokens.dtype)

    def patchify(self, x: Tensor) -> Tensor:
        """x (B, C, T, H, W) -> (B, N, t*p*q*C), tubelets in (t, h, w) order, values in (pixel, channel)
        order: `b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2 c)`.

        # VideoMAE engine_for_pretraining.py builds its target with this rearrange.
        """
        b, c, t, h, w = x.shape
        k0, k1, k2 = self.tubelet
        x = x.reshape(b, c, t // k0, k0, h // k1, k1, w // k2, k2)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # b, t', h', w', p0, p1, p2, c
        return x.reshape(b, (t // k0) * (h // k1) * (w // k2), k0 * k1 * k2 * c)

    def unpatchify(self, patches: Tensor) -> Tensor:
        """(B, N, t*p*q*C) -> (B, C, T, H, W) on this tokenizer's grid; the inverse of patchify."""
        b = patches.shape[0]
        gt, gh, gw = self.grid
        k0, k1, k2 = self.tubelet
        x = patches.reshape(b, gt, gh, gw, k0, k1, k2, self.channels)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # b, c, t', p0, h', p1, w', p2
        return x.reshape(b, self.channels, gt * k0, gh * k1, gw * k2)
