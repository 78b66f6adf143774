"""AdamW with VideoMAE's parameter groups, its lr rule and its per-step cosine schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tessera.train.config import OptimConfig

# Learned tokens and positions are not decayed (VideoMAE optim_factory.py skips 1-D parameters, biases and
# the names in `no_weight_decay()`: pos_embed, cls_token, mask_token); the same rule by parameter name.
NO_DECAY_NAMES = frozenset({"mask_token", "mask_embed", "cls_token", "dist_token", "pos_embed", "positions", "reg_tokens"})


def wants_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim > 1 and not name.endswith(".bias") and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def vit_layer_id(name: str, num_layers: int) -> int:
    """VideoMAE optim_factory.py `get_num_layer_for_vit`, on our names: the tokenizer and learned tokens
    are layer 0, encoder block i is layer i + 1, everything after (norms, head) is layer num_layers + 1."""
    if name.startswith("tokenizer.") or name.rsplit(".", 1)[-1] in NO_DECAY_NAMES - {"positions"}:
        return 0
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


def param_groups(
    model: nn.Module, weight_decay: float, layer_decay: float | None = None, num_layers: int | None = None
) -> list[dict]:
    """Decayed and undecayed groups, split by layer when `layer_decay` is set.

    Each group carries `wd_scale` (for a weight-decay schedule) and `lr_scale` =
    layer_decay ** (num_layers + 1 - layer id) (VideoMAE LayerDecayValueAssigner; the head is unscaled).
    """
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = vit_layer_id(name, num_layers) if layer_decay is not None and num_layers is not None else 0
        decay = wants_decay(name, param)
        group = groups.get((layer, decay))
        if group is None:
            scale = layer_decay ** (num_layers + 1 - layer) if layer_decay is not None and num_layers is not None else 1.0
            group = groups[(layer, decay)] = {
                "params": [], "weight_decay": weight_decay if decay else 0.0, "wd_scale": 1.0 if decay else 0.0,
                "lr_scale": scale, "name": f"layer{layer}_{'decay' if decay else 'no_decay'}" if layer_decay else
                ("decay" if decay else "no_decay"),
            }
        group["params"].append(param)
    return [groups[key] for key in sorted(groups, key=lambda k: (k[0], not k[1]))]


@dataclass(frozen=True)
class Schedule:
    """lr and weight decay as pure functions of the optimizer step (nothing to checkpoint but the step).

    Follows VideoMAE utils.cosine_scheduler: a linear warmup from `warmup_lr` to `lr` over
    `warmup_steps` (linspace including both ends), then a cosine from `lr` to `min_lr` over the rest.
    """

    lr: float
    warmup_lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int
    weight_decay: float
    weight_decay_end: float

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            if self.warmup_steps == 1:  # np.linspace(a, b, 1) == [a]
                return self.warmup_lr
            return self.warmup_lr + (self.lr - self.warmup_lr) * step / (self.warmup_steps - 1)
        return _cosine(self.lr, self.min_lr, step - self.warmup_steps, self.total_steps - self.warmup_steps)

    def weight_decay_at(self, step: int) -> float:
        return _cosine(self.weight_decay, self.weight_decay_end, step, self.total_steps)


def _cosine(start: float, end: float, step: int, steps: int) -> float:
    if steps <= 0:
        return end
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * min(step, steps) / steps))


def lr_scale_factor(cfg: OptimConfig, total_batch: int) -> float:
    """`base_lr` runs are scaled by total batch / 256 (VideoMAE run_mae_pretraining.py); `lr` runs are not."""
    return total_batch / 256.0 if cfg.base_lr is not None else 1.0


def make_schedule(cfg: OptimConfig, total_batch: int, steps_per_epoch: int, epochs: int, warmup_epochs: float) -> Schedule:
    scale = lr_scale_factor(cfg, total_batch)
    peak = cfg.base_lr if cfg.base_lr is not None else cfg.lr
    return Schedule(
        lr=peak * scale,
        warmup_lr=cfg.warmup_lr * scale,
        min_lr=cfg.min_lr * scale,
        warmup_steps=int(round(warmup_epochs * steps_per_epoch)),
        total_steps=epochs * steps_per_epoch,
        weight_decay=cfg.weight_decay,
        weight_decay_end=cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end,
    )


def make_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    fused = cfg.fused if cfg.fused is not None else device.type == "cuda"
    num_layers = getattr(getattr(model, "encoder", None), "depth", None)
    groups = param_groups(model, cfg.weight_decay, cfg.layer_decay, num_layers)
    return torch.optim.AdamW(
        groups, lr=0.0, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused or None
    )


def apply_schedule(optimizer: torch.optim.Optimizer, schedule: Schedule, step: int) -> float:
    lr, wd = schedule.lr_at(step), schedule.weight_decay_at(step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
        group["weight_decay"] = wd * group.get("wd_scale", 1.0)
    return lr
