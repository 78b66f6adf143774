"""Masks as index tensors, so every objective gathers tokens the same way on the device.

Index tensors (not boolean masks) keep the per-sample counts explicit: every row has the same
length, which is what lets the encoder run the visible tokens as one dense (B, Nv, D) batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Mask:
    """Index tensors over the N non-prefix tokens, equal counts per sample, rows sorted ascending.

    MAE-style objectives fill `visible (B, Nv)` and `hidden (B, Nh)` (long); JEPA fills
    `context (B, Nc)` and `targets (B, M, Nt)` instead.
    """

    visible: Tensor | None = None
    hidden: Tensor | None = None
    context: Tensor | None = None
    targets: Tensor | None = None


def shard_rows(mask: Mask, rank: int, world: int) -> Mask:
    """This rank's rows of a mask drawn for the global batch (rank r holds samples r, r + world, ...).

    Drawing for the global batch and slicing makes every sample's mask independent of the world size,
    so a run on N processes sees the masks of the same run on one.
    """
    if world == 1:
        return mask
    pick = lambda t: None if t is None else t[rank::world]  # noqa: E731
    return Mask(visible=pick(mask.visible), hidden=pick(mask.hidden), context=pick(mask.context),
                targets=pick(mask.targets))


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """Pick tokens per sample: x (B, N, *F), index (B, K) -> (B, K, *F).

    `x` may have batch size 1 (a shared table such as positions); it is broadcast to index's B.
    """
    if index.dim() != 2:
        raise ValueError(f"index must be (B, K), got shape {tuple(index.shape)}")
    batch = index.shape[0]
    if x.shape[0] != batch:
        x = x.expand(batch, *x.shape[1:])
    trailing = x.shape[2:]
    expanded = index.reshape(batch, -1, *([1] * len(trailing))).expand(-1, -1, *trailing)
    return torch.gather(x, 1, expanded)


def check_ratio(ratio: float) -> None:
    """Refuse ratios that would hide every token (nothing left to encode) or a negative share."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")


def split_by_noise(noise: Tensor, num_hidden: int) -> tuple[Tensor, Tensor]:
    """Turn uniform noise (B, S) into sorted (visible, hidden) index rows: the lowest `num_hidden`
    noise values are hidden. Sorting afterwards keeps the token order stable for the encoder."""
    order = torch.argsort(noise, dim=1)
    hidden = order[:, :num_hidden].sort(dim=1).values
    visible = order[:, num_hidden:].sort(dim=1).values
    return visible, hidden


class RandomMasker:
    """Uniform random masking of `int(ratio * num_tokens)` tokens per sample (MAE / ablations)."""

    def __init__(self, num_tokens: int, ratio: float) -> None:
        check_ratio(ratio)
        if num_tokens <= 0:
            raise ValueError(f"num_tokens must be positive, got {num_tokens}")
        self.num_tokens = num_tokens
        self.ratio = ratio
        self.num_hidden = int(ratio * num_tokens)
        self.num_visible = num_tokens - self.num_hidden

    def __call__(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str
    ) -> Mask:
        """Draw on `device` with `generator` (which must live on that device) -> Mask (B, Nv)/(B, Nh)."""
        noise = torch.rand(batch_size, self.num_tokens, generator=generator, device=device)
        visible, hidden = split_by_noise(noise, self.num_hidden)
        return Mask(visible=visible, hidden=hidden)

    def __repr__(self) -> str:
        return (
            f"RandomMasker(num_tokens={self.num_tokens}, ratio={self.ratio}, "
            f"num_hidden={self.num_hidden})"
        )


def keep_top_hidden(mask: Mask, score: Tensor, num_kept: int) -> Mask:
    """Keep the `num_kept` hidden tokens of highest `score` (B, Nh) as the decoder's queries, sorted."""
    kept = torch.topk(score, num_kept, dim=1).indices
    hidden = torch.gather(mask.hidden, 1, kept).sort(dim=1).values
    return Mask(visible=mask.visible, hidden=hidden)


class RandomDecoderMask:
    """Decoder masking (VideoMAE V2's dual masking, random variant): the decoder predicts only a random
    `1 - ratio` share of the hidden tokens, the same count per sample, and the loss covers those."""

    def __init__(self, ratio: float) -> None:
        check_ratio(ratio)
        self.ratio = ratio

    def num_kept(self, num_hidden: int) -> int:
        return max(1, round(num_hidden * (1.0 - self.ratio)))

    def __call__(self, mask: Mask, generator: torch.Generator) -> Mask:
        score = torch.rand(mask.hidden.shape, generator=generator, device=mask.hidden.device)
        return keep_top_hidden(mask, score, self.num_kept(mask.hidden.shape[1]))
