"""A seeded generator on the objective's device, saved in its state_dict: masks and mixes resume exactly."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class GeneratorState(nn.Module):
    """Base for objectives that draw random numbers on the device (masks, mixup boxes).

    The generator is created lazily on the device of the first batch, and its state travels in the
    module's `_extra_state`, so a checkpoint restores the exact next draw.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.generator: torch.Generator | None = None
        self._pending_generator_state: Tensor | None = None

    def device_generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(self.seed)
            if self._pending_generator_state is not None:
                self.generator.set_state(self._pending_generator_state)
                self._pending_generator_state = None
        return self.generator

    def get_extra_state(self) -> dict[str, Any]:
        state = self.generator.get_state() if self.generator is not None else self._pending_generator_state
        return {"generator": state, "seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        self.generator = None
        self._pending_generator_state = state["generator"]
