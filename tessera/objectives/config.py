"""The `objective` section: one schema per objective, chosen by `objective.name`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tessera.config import ConfigError


@dataclass
class MAEConfig:
    """Masked autoencoding: hide tokens, encode the visible ones, predict the hidden pixels."""

    name: Literal["mae"] = "mae"
    mask: Literal["tube", "random"] = "tube"  # tube: one spatial mask over all time slices (VideoMAE)
    mask_ratio: float = 0.9
    # tubelet: per token and channel, unbiased std + 1e-6 (VideoMAE); patch: per token over all values,
    # (x - mean) / sqrt(var + 1e-6) (image MAE); none: raw pixels in [0, 1]
    target_norm: Literal["tubelet", "patch", "none"] = "tubelet"
    # Beyond the reference: VideoMAE V2's decoder masking. The decoder predicts (and the loss covers) only
    # a 1 - decoder_mask_ratio share of the hidden tokens; `running_cell` picks them by V2's shifting
    # 2x2 pattern (video), `random` uniformly. `none` is VideoMAE: every hidden token is predicted.
    decoder_mask: Literal["none", "running_cell", "random"] = "none"
    decoder_mask_ratio: float = 0.5

    def check(self) -> None:
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"objective.mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if not 0.0 < self.decoder_mask_ratio < 1.0:
            raise ConfigError(f"objective.decoder_mask_ratio must be in (0, 1), got {self.decoder_mask_ratio}")


@dataclass
class ClassificationConfig:
    """Fine-tuning for classification (VideoMAE run_class_finetuning.py defaults).

    Mixup/cutmix run on the device in batch mode; with both at 0 the loss is cross-entropy with label
    smoothing. The head pools the tokens, normalises (fc_norm) and projects, initialised x init_scale.
    """

    name: Literal["classification"] = "classification"
    label_smoothing: float = 0.1
    mixup: float = 0.8  # Beta(alpha, alpha) for mixup; 0: off
    cutmix: float = 1.0  # Beta(alpha, alpha) for cutmix; 0: off
    mix_prob: float = 1.0
    switch_prob: float = 0.5  # chance of cutmix instead of mixup when both are on
    pool: Literal["mean", "cls"] = "mean"
    fc_norm: bool = True
    head_dropout: float = 0.0  # fc_drop_rate (0.5 for ViT-H and UCF101)
    head_init_scale: float = 0.001

    def check(self) -> None:
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.mix_prob <= 1 or not 0 <= self.switch_prob <= 1:
            raise ConfigError("objective.label_smoothing must be in [0, 1), mix_prob and switch_prob in [0, 1]")
        if self.mixup < 0 or self.cutmix < 0:
            raise ConfigError("objective.mixup and objective.cutmix must be >= 0")
