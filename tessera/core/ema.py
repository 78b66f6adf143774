"""An exponential-moving-average teacher: a frozen copy of student modules that trails their weights.

Used by T-JEPA (target encoder) and reusable by any self-distillation objective (I-JEPA, data2vec,
DINO-style teachers). The momentum schedule is linear from `start` to `end` over the run's optimizer
steps (I-JEPA / T-JEPA: 0.996 -> 1.0; jose-melo/t-jepa run.py `momentum_scheduler`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MomentumSchedule:
    """Momentum of the update after optimizer step `k` (0-based): start + k (end - start) / total.

    The reference draws these from a generator over range(total + 1), one per step, so step 0 uses
    `start` exactly and the last step (total - 1) stops one increment short of `end`.
    """

    start: float = 0.996
    end: float = 1.0
    total_steps: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.start <= 1.0 or not 0.0 <= self.end <= 1.0:
            raise ValueError(f"EMA momenta must be in [0, 1], got {self.start} -> {self.end}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")

    def __call__(self, step: int) -> float:
        return self.start + min(step, self.total_steps) * (self.end - self.start) / self.total_steps


class EMATeacher(nn.Module):
    """Deep copies of the named student modules (`teacher.<name>`), without gradients.

    `update(students, m)`: teacher <- m * teacher + (1 - m) * student, parameter by parameter in
    registration order (buffers are copied at creation and left alone, as the reference does).
    """

    def __init__(self, students: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not students:
            raise ValueError("an EMA teacher needs at least one student module")
        self.names = list(students)
        for name, module in students.items():
            teacher = copy.deepcopy(module)
            teacher.requires_grad_(False)
            self.add_module(name, teacher)

    def _pairs(self, students: Mapping[str, nn.Module]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if list(students) != self.names:
            raise ValueError(f"the teacher follows {self.names}, got students {list(students)}")
        teacher, student = [], []
        for name in self.names:
            t_params, s_params = list(getattr(self, name).parameters()), list(students[name].parameters())
            if len(t_params) != len(s_params):
                raise ValueError(f"teacher {name!r} has {len(t_params)} parameters, its student {len(s_params)}")
            teacher += t_params
            student += [p.detach() for p in s_params]
        return teacher, student

    @torch.no_grad()
    def update(self, students: Mapping[str, nn.Module], momentum: float) -> None:
        teacher, student = self._pairs(students)
        # the reference's arithmetic: param_k.mul_(m).add_((1 - m) * param_q)
        torch._foreach_mul_(teacher, momentum)
        torch._foreach_add_(teacher, student, alpha=1.0 - momentum)
