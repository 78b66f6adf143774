"""T-JEPA's context and target feature subsets, drawn on the device as index tensors.

Rule (jose-melo/t-jepa src/mask.py `MaskCollator`): per batch, a context size and a target size drawn
as `lo + round((hi - lo) * u)` between round(D * min share) and round(D * max share), redrawn until
they fit in D features together; per sample, one context set and `num_targets` target sets, each
target set disjoint from the context (drawn from the remaining features; target sets may overlap).

Fixed here, on purpose: the reference indexes token slots 0..D-1 while its sequence has the
regularization token at slot 0, so the last feature is never chosen and the regularization token is
drawn as "feature 0" (about 25% of contexts, 39% of target sets; confirmed by running it). Our indices
run over the D feature tokens only: regularization tokens are always in the context (the encoder
prepends them) and never predicted, and every feature is eligible.
"""

from __future__ import annotations

import torch

from tessera.core.masking import Mask


def share_bounds(num_features: int, low: float, high: float, what: str) -> tuple[int, int]:
    """round(D * share) bounds, at least 1 feature, refusing ranges that leave nothing to draw."""
    if not 0 < low <= high <= 1:
        raise ValueError(f"{what} shares must satisfy 0 < min <= max <= 1, got {low}, {high}")
    lo, hi = max(1, round(num_features * low)), max(1, round(num_features * high))
    return lo, max(lo, hi)


class FeatureSubsetSampler:
    """`sampler(batch_size, generator, device, sizes) -> Mask(context (B, Nc), targets (B, M, Nt))`.

    Indices are feature positions 0..D-1 (non-prefix tokens), sorted within each set. The sizes come
    from `draw_sizes(host_generator)` on the CPU, because they set tensor shapes: drawing them on the
    accelerator would cost a device-to-host read every step.
    """

    def __init__(
        self,
        num_features: int,
        context: tuple[float, float] = (0.136, 0.368),
        target: tuple[float, float] = (0.156, 0.622),
        num_targets: int = 4,
    ) -> None:
        if num_features < 2:
            raise ValueError(f"T-JEPA needs at least 2 features (one context, one target), got {num_features}")
        if num_targets < 1:
            raise ValueError(f"num_targets must be >= 1, got {num_targets}")
        self.num_features = num_features
        self.num_targets = num_targets
        self.context_range = share_bounds(num_features, *context, "context")
        self.target_range = share_bounds(num_features, *target, "target")
        if self.context_range[0] + self.target_range[0] > num_features:
            raise ValueError(
                f"with {num_features} features, the smallest context ({self.context_range[0]}) and target "
                f"({self.target_range[0]}) do not fit together; lower the minimum shares"
            )

    def draw_sizes(self, generator: torch.Generator) -> tuple[int, int]:
        """(context size, target size) for one batch, redrawn until they fit (the reference's rule)."""
        while True:
            u = torch.rand(2, generator=generator).tolist()
            (c_lo, c_hi), (t_lo, t_hi) = self.context_range, self.target_range
            n_ctx, n_tgt = c_lo + round((c_hi - c_lo) * u[0]), t_lo + round((t_hi - t_lo) * u[1])
            if n_ctx + n_tgt <= self.num_features:
                return n_ctx, n_tgt

    def __call__(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str, sizes: tuple[int, int]
    ) -> Mask:
        n_ctx, n_tgt = sizes
        d, m = self.num_features, self.num_targets
        order = torch.rand(batch_size, d, generator=generator, device=device).argsort(dim=1)
        context = order[:, :n_ctx].sort(dim=1).values
        rest = order[:, n_ctx:]  # (B, D - Nc): the features a target set may take
        pick = torch.rand(batch_size, m, d - n_ctx, generator=generator, device=device).argsort(dim=2)[..., :n_tgt]
        targets = torch.gather(rest.unsqueeze(1).expand(-1, m, -1), 2, pick).sort(dim=2).values
        return Mask(context=context, targets=targets)

    def __repr__(self) -> str:
        return (f"FeatureSubsetSampler(num_features={self.num_features}, context={self.context_range}, "
                f"target={self.target_range}, num_targets={self.num_targets})")
