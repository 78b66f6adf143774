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
