"""The trainer's settings: the `optim` and `train` sections of a recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tessera.config import ConfigError


@dataclass
class OptimConfig:
    """AdamW with a per-step cosine schedule after a linear warmup (VideoMAE utils.cosine_scheduler).

    Exactly one of `lr` (absolute) and `base_lr` (scaled by total batch / 256, VideoMAE's rule) is set;
    with `base_lr`, `warmup_lr` and `min_lr` are scaled by the same factor, as the reference does.
    """

    name: Literal["adamw"] = "adamw"
    lr: float | None = None
    base_lr: float | None = None
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    weight_decay: float = 0.05
    weight_decay_end: float | None = None  # cosine weight-decay schedule to this value; null: constant
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    clip_grad: float | None = None  # max global gradient norm; null: no clipping
    layer_decay: float | None = None  # layer-wise lr decay (fine-tuning): lr x decay^(depth + 1 - layer)
    fused: bool | None = None  # fused AdamW kernel; null: on for CUDA

    def check(self) -> None:
        if (self.lr is None) == (self.base_lr is None):
            raise ConfigError("set exactly one of optim.lr (absolute) and optim.base_lr (scaled by batch/256)")
        for name in ("lr", "base_lr", "warmup_lr", "min_lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"optim.{name} must be >= 0, got {value}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"optim.layer_decay must be in (0, 1] or null, got {self.layer_decay}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"optim.clip_grad must be > 0 or null, got {self.clip_grad}")


@dataclass
class TrainConfig:
    """Length, precision, cadences and reproducibility of a run."""

    epochs: int = 800
    warmup_epochs: float = 40
    max_steps: int | None = None  # stop after this many optimizer steps; the schedule still spans `epochs`
    accumulate: int = 1  # micro-batches per optimizer step
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    log_every: int = 20  # optimizer steps between logged metrics
    checkpoint_every: int = 500  # optimizer steps between writes of last.pt
    keep_every: int | None = None  # also keep step_XXXXXXX.pt every N steps
    max_nonfinite_steps: int = 20  # steps skipped for a non-finite loss or gradient before the run stops
    compile: bool = False  # torch.compile the objective (GPU; its compiles take minutes on a CPU)
    # several processes (torchrun): ddp replicates the model; fsdp shards parameters, gradients and
    # optimizer state (FSDP2, one unit per transformer block) for models that do not fit one device
    strategy: Literal["ddp", "fsdp"] = "ddp"
    progress: bool = True  # progress bar on the console

    def check(self) -> None:
        for name in ("epochs", "accumulate", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise ConfigError(f"train.warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        if self.max_nonfinite_steps < 0:
            raise ConfigError(f"train.max_nonfinite_steps must be >= 0, got {self.max_nonfinite_steps}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.keep_every is not None and self.keep_every < 1:
            raise ConfigError(f"train.keep_every must be >= 1 or null, got {self.keep_every}")
