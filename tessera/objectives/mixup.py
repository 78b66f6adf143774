"""Mixup / CutMix in batch mode, on the device, from a torch.Generator (MCG-NJU/VideoMAE mixup.py, timm's).

Reference behaviour (mixup.py `Mixup._params_per_batch`, `_mix_batch`, `cutmix_bbox_and_lam`,
`rand_bbox`, `mixup_target`; defaults from run_class_finetuning.py: mixup 0.8, cutmix 1.0, prob 1.0,
switch prob 0.5, mode batch, label smoothing 0.1, correct_lam True):
  * one draw per batch: mix with probability `prob`; if both are on, CutMix with probability
    `switch_prob`, else Mixup; lambda ~ Beta(alpha, alpha) of the chosen one;
  * every sample is mixed with the batch flipped (`x.flip(0)`): sample i with sample B-1-i;
  * Mixup: x = lam x + (1 - lam) x_flipped;
  * CutMix: a box over the last two dims (H, W), the same for every channel and frame of the
    (B, C, T, H, W) video: cut = int(side * sqrt(1 - lam)), centre uniform in [0, side), edges
    clipped to the frame; lambda is then corrected to 1 - box area / (H W);
  * targets: one-hot with off = smoothing / K, on = 1 - smoothing + off, mixed as
    lam y + (1 - lam) y_flipped.

Our own choices: every draw uses the generator passed in and stays on its device, and no value is
read back to the host (the branch choices are selected with `torch.where`, the box is a mask built
by comparison), so a step never waits for the accelerator. Both Beta variables are drawn every call
(the reference draws only the one it uses): the same distributions, another stream. Beta comes from
two Gamma draws (`torch._standard_gamma`, the sampler torch.distributions uses, which takes a
generator). The reference asserts an even batch; an odd one is accepted here (the middle sample
pairs with itself).
"""

from __future__ import annotations

import torch
from torch import Tensor


def smoothed_one_hot(label: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """(B,) long -> (B, K) float: off = smoothing / K, on = 1 - smoothing + off (mixup.py `one_hot`)."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    out = torch.full((label.shape[0], num_classes), off, dtype=torch.float32, device=label.device)
    return out.scatter_(1, label.long().view(-1, 1), on)


class Mixup:
    """`Mixup(...)(video, label, generator) -> (mixed video, soft targets (B, K))`, batch mode only.

    video is float (B, C, T, H, W) (or any (B, ..., H, W)); it is not modified in place.
    `last` holds the latest draw as device tensors (lam, use_cutmix, applied, box (yl, yh, xl, xh)).
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.1,
                 mode: str = "batch", correct_lam: bool = True) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup and cutmix alphas must be >= 0, got {mixup_alpha}, {cutmix_alpha}")
        if not 0 <= prob <= 1 or not 0 <= switch_prob <= 1 or not 0 <= label_smoothing < 1:
            raise ValueError("prob and switch_prob must be in [0, 1], label_smoothing in [0, 1)")
        if mode != "batch":
            raise ValueError(f"only batch mode is implemented (the reference's default), got {mode!r}")
        self.num_classes = num_classes
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.prob = float(prob)
        self.switch_prob = float(switch_prob)
        self.label_smoothing = float(label_smoothing)
        self.correct_lam = correct_lam
        self.enabled = True  # as the reference's `mixup_enabled`: the loop may switch mixing off
        self.last: dict[str, Tensor] = {}

    @property
    def active(self) -> bool:
        return self.enabled and self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def __call__(self, video: Tensor, label: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if video.ndim < 3 or video.shape[0] != label.shape[0]:
            raise ValueError(f"expected video (B, ..., H, W) and label (B,), got {tuple(video.shape)} and "
                             f"{tuple(label.shape)}")
        device = video.device
        if not self.active:
            lam = torch.ones((), dtype=torch.float32, device=device)
            return video, self._targets(label, lam)
        scalar = torch.float32 if device.type == "mps" else torch.float64  # mps has no float64
        # One uniform for "mix at all", one for "cutmix or mixup", two Beta draws (mixup, cutmix).
        u = torch.rand(2, generator=generator, device=device, dtype=scalar)
        conc = torch.tensor([self.mixup_alpha or 1.0] * 2 + [self.cutmix_alpha or 1.0] * 2, dtype=scalar,
                            device=device)
        gamma = torch._standard_gamma(conc, generator=generator)
        beta = torch.stack([gamma[0] / (gamma[0] + gamma[1]), gamma[2] / (gamma[2] + gamma[3])])
        beta = torch.nan_to_num(beta, nan=0.5)  # both gammas 0 (possible only for tiny alphas)
        applied = u[0] < self.prob
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = u[1] < self.switch_prob
        else:
            use_cutmix = torch.tensor(self.cutmix_alpha > 0, device=device)
        lam_mix = torch.where(use_cutmix, beta[1], beta[0])

        height, width = video.shape[-2], video.shape[-1]
        ratio = torch.sqrt(1.0 - lam_mix)
        cut_h = torch.floor(height * ratio).long()
        cut_w = torch.floor(width * ratio).long()
        cy = torch.randint(0, height, (), generator=generator, device=device)
        cx = torch.randint(0, width, (), generator=generator, device=device)
        yl = (cy - cut_h // 2).clamp(0, height)
        yh = (cy + cut_h // 2).clamp(0, height)
        xl = (cx - cut_w // 2).clamp(0, width)
        xh = (cx + cut_w // 2).clamp(0, width)
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        inside = ((rows >= yl) & (rows < yh)).view(-1, 1) & ((cols >= xl) & (cols < xh)).view(1, -1)
        lam_cut = (1.0 - ((yh - yl) * (xh - xl)).to(scalar) / float(height * width)) if self.correct_lam \
            else lam_mix

        one = torch.ones((), dtype=scalar, device=device)
        cutting = applied & use_cutmix
        lam = torch.where(applied, torch.where(use_cutmix, lam_cut, lam_mix), one)
        # Per-pixel weight of the sample itself: 0 inside the CutMix box, lam for Mixup, 1 when off.
        # x * 1 + y * 0 and x * 0 + y * 1 are exact, so CutMix copies pixels bit for bit.
        weight = torch.where(cutting, (~inside).to(video.dtype), lam.to(video.dtype).expand(height, width))
        mixed = video * weight + video.flip(0) * (1 - weight)
        self.last = {"lam": lam, "use_cutmix": use_cutmix, "applied": applied,
                     "box": torch.stack([yl, yh, xl, xh])}
        return mixed, self._targets(label, lam.float())

    def _targets(self, label: Tensor, lam: Tensor) -> Tensor:
        """mixup.py `mixup_target`: lam y + (1 - lam) y_flipped, smoothed one-hot."""
        y = smoothed_one_hot(label, self.num_classes, self.label_smoothing)
        return y * lam + y.flip(0) * (1.0 - lam)


__all__ = ["Mixup", "smoothed_one_hot"]
