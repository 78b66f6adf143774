"""Named ViT sizes, so recipes say `small` and get the reference's encoder and decoder widths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViTSize:
    """Encoder and MAE-decoder shape of one named size."""

    dim: int
    depth: int
    heads: int
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int


# Widths, depths and heads: VideoMAE modeling_pretrain.py `pretrain_videomae_{small,base,large,huge}_*`.
# Decoder depth: the factories leave it to `--decoder_depth`; the pretrain scripts pass 4 for S and B
# (scripts/kinetics/videomae_vit_{small,base}_*/pretrain.sh, scripts/ssv2/*, scripts/ucf101/*) and 12
# for L and H (scripts/kinetics/videomae_vit_{large,huge}_*/pretrain.sh).
SIZES: dict[str, ViTSize] = {
    "small": ViTSize(384, 12, 6, 192, 4, 3),
    "base": ViTSize(768, 12, 12, 384, 4, 6),
    "large": ViTSize(1024, 24, 16, 512, 12, 8),
    "huge": ViTSize(1280, 32, 16, 640, 12, 8),
}


def get_size(name: str) -> ViTSize:
    """Look up a named size, refusing unknown names with the valid ones."""
    try:
        return SIZES[name]
    except KeyError:
        raise ValueError(f"unknown model size {name!r}; valid sizes: {', '.join(SIZES)}") from None
