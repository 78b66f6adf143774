"""T-JEPA: from a context subset of a row's features, predict the EMA teacher's latents of target subsets.

Thimonier, De Melo Costa et al., "T-JEPA: augmentation-free self-supervised learning for tabular data"
(ICLR 2025); reference code jose-melo/t-jepa (src/train.py, run.py). Per step: the context encoder
(tokenizer + encoder) sees the regularization tokens and the context features; the target encoder, an
EMA copy of both, sees the full row; the predictor regresses the target encoder's final-LayerNorm
outputs at each target set; the loss is the mean squared error over all of them (nn.MSELoss).

Without touching the trainer, three of the reference's step details live here:
- EMA after every optimizer step, momentum linear 0.996 -> 1.0 over the run. The update "after step k"
  is the update "before forward k + 1": each training forward first catches the teacher up with the
  optimizer steps already taken (counted as forwards // accumulate), and so does `state_dict()`, so a
  checkpoint holds the teacher after its last step and a resumed run continues exactly.
- element-wise gradient clamping to [-c, c] of the tokenizer and encoder (the reference registers the
  same hooks on its context encoder, not on its predictor); a non-finite gradient stays non-finite so
  the trainer still skips that step.
- masks drawn on the device from the objective's generator; their sizes from a CPU generator (they set
  tensor shapes). Both are in the state_dict.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tessera.core.ema import EMATeacher, MomentumSchedule
from tessera.core.masking import gather_tokens, shard_rows
from tessera.objectives.generator import GeneratorState

_SIZE_SEED_OFFSET = 7919  # the size generator's seed differs from the mask generator's (same device on a CPU)


def clamp_gradient(grad: Tensor, limit: float) -> Tensor:
    # clamp(inf) would be a finite +-limit; adding (g - g), which is NaN exactly where g is not finite,
    # keeps such a step visible to the trainer's non-finite skip
    return grad.clamp(-limit, limit) + (grad - grad)


class TJEPAObjective(GeneratorState):
    """`forward(batch) -> (loss, metrics)` on a batch of rows (num, cat, missing)."""

    def __init__(
        self,
        tokenizer: nn.Module,
        encoder: nn.Module,
        predictor: nn.Module,
        sampler,
        total_steps: int,
        ema: tuple[float, float] = (0.996, 1.0),
        accumulate: int = 1,
        grad_clamp: float | None = 1.0,
        seed: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(seed)
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = EMATeacher({"tokenizer": tokenizer, "encoder": encoder})
        self.sampler = sampler
        self.momentum = MomentumSchedule(ema[0], ema[1], total_steps)
        self.accumulate = accumulate
        self.forwards = 0  # training forwards so far
        self.ema_updates = 0  # teacher updates applied (one per optimizer step taken)
        self.size_generator = torch.Generator().manual_seed(seed + _SIZE_SEED_OFFSET)
        self.metadata = dict(metadata or {})  # plain values stored with the weights (the table's preprocessing)
        self.rank, self.world = 0, 1
        if grad_clamp is not None:
            for module in (tokenizer, encoder):
                for param in module.parameters():
                    param.register_hook(partial(clamp_gradient, limit=float(grad_clamp)))

    def set_shard(self, rank: int, world: int) -> None:
        """Under DDP: draw masks for the global batch and keep this rank's rows (world-size invariant)."""
        self.rank, self.world = rank, world

    @property
    def students(self) -> dict[str, nn.Module]:
        return {"tokenizer": self.tokenizer, "encoder": self.encoder}

    def sync_teacher(self) -> None:
        """Apply the EMA updates of the optimizer steps taken so far (forwards // accumulate)."""
        done = self.forwards // self.accumulate
        while self.ema_updates < done:
            self.target_encoder.update(self.students, self.momentum(self.ema_updates))
            self.ema_updates += 1

    # ---------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        if self.training:
            self.sync_teacher()
            self.forwards += 1
        some = batch["num"] if batch["num"].shape[1] else batch["cat"]
        device, b = some.device, some.shape[0]
        sizes = self.sampler.draw_sizes(self.size_generator)
        mask = self.sampler(b * self.world, self.device_generator(device), device, sizes)
        mask = shard_rows(mask, self.rank, self.world)
        pred, target = self.predict(batch, mask.context, mask.targets)
        loss = F.mse_loss(pred.float(), target.float())
        metrics = {
            "momentum": torch.tensor(self.momentum(self.ema_updates), device=device),
            "context_features": torch.tensor(float(sizes[0]), device=device),
            "target_features": torch.tensor(float(sizes[1]), device=device),
        }
        return loss, metrics

    def predict(self, batch: dict[str, Tensor], context: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Predictions and teacher latents (B, M, Nt, dim) for feature indices context (B, Nc), targets (B, M, Nt)."""
        prefix = self.tokenizer.num_prefix
        tokens = self.tokenizer(batch)
        seen = torch.cat([tokens[:, :prefix], gather_tokens(tokens[:, prefix:], context)], dim=1)
        states, _ = self.encoder(seen)
        b, m, nt = targets.shape
        with torch.no_grad():
            full, _ = self.target_encoder.encoder(self.target_encoder.tokenizer(batch))
            target = gather_tokens(full[:, prefix:], targets.reshape(b, m * nt)).reshape(b, m, nt, -1)
        prefix_slots = torch.arange(prefix, device=context.device).expand(b, prefix)
        context_slots = torch.cat([prefix_slots, context + prefix], dim=1)
        pred = self.predictor(states, context_slots, targets + prefix)
        return pred, target

    @torch.no_grad()
    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """The downstream representation: the target encoder on full rows -> (B, P + N, dim)."""
        states, _ = self.target_encoder.encoder(self.target_encoder.tokenizer(batch))
        return states

    # ---------------------------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        self.sync_teacher()  # runs before the children are saved: the teacher saved is up to date
        state = super().get_extra_state()
        state.update(
            size_generator=self.size_generator.get_state(), forwards=self.forwards, ema_updates=self.ema_updates,
            total_steps=self.momentum.total_steps, metadata=self.metadata,
        )
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        self.size_generator.set_state(state["size_generator"])
        self.forwards, self.ema_updates = int(state["forwards"]), int(state["ema_updates"])
        self.metadata = dict(state.get("metadata", {}))
