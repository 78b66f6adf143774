"""The training loop: steps, accumulation, schedules, checkpoints, logging and exact resume.

It knows nothing of modalities or losses: an objective maps a batch to `(loss, metrics)`, the recipe
builder hands in what must happen to a batch on the device and what an evaluation does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from tessera.train.checkpoint import load_checkpoint, save_checkpoint
from tessera.train.config import OptimConfig, TrainConfig
from tessera.train.logging import MetricsLogger, truncate_metrics
from tessera.train.optim import apply_schedule, make_optimizer, make_schedule
from tessera.train.rng import capture_rng, restore_rng
from tessera.train.sampler import ResumableSampler

Batch = dict[str, Any]


@dataclass
class TrainHooks:
    """What the recipe adds to the loop without the loop knowing the modality."""

    batch_transform: Callable[[Batch], Batch] | None = None  # on the device, after the copy (e.g. normalise)
    on_eval: Callable[[int], dict[str, float] | None] | None = None  # pictures, probes; returns metrics to log
    eval_every: int | None = None


@dataclass
class FitResult:
    step: int
    epoch: int
    resumed_from: int | None
    last_metrics: dict[str, float]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def to_device(batch: Batch, device: torch.device) -> Batch:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """One process's view of a run (DDP wrapping arrives with the scale-out issue)."""

    def __init__(
        self,
        objective: nn.Module,
        loader: DataLoader,
        optim_cfg: OptimConfig,
        train_cfg: TrainConfig,
        run_dir: Path,
        config: dict,
        hooks: TrainHooks | None = None,
        device: torch.device | None = None,
    ) -> None:
        if not isinstance(loader.sampler, ResumableSampler):
            raise TypeError("the training loader must use tessera.train.sampler.ResumableSampler (exact resume)")
        self.cfg = train_cfg
        self.run_dir = Path(run_dir)
        self.config = config
        self.hooks = hooks or TrainHooks()
        self.device = device or resolve_device(train_cfg.device)
        self.objective = objective.to(self.device)
        self.model: nn.Module = torch.compile(objective) if train_cfg.compile else objective
        self.loader = loader
        self.sampler: ResumableSampler = loader.sampler
        self.batch_size = loader.batch_size
        self.samples_per_step = self.batch_size * self.sampler.world * train_cfg.accumulate
        self.steps_per_epoch = self.sampler.samples_per_epoch // self.samples_per_step
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"an epoch of {self.sampler.samples_per_epoch} samples is shorter than one optimizer step "
                f"({self.samples_per_step} samples): lower data.batch_size or train.accumulate"
            )
        self.total_steps = train_cfg.epochs * self.steps_per_epoch
        self.end_step = min(self.total_steps, train_cfg.max_steps or self.total_steps)
        self.optimizer = make_optimizer(objective, optim_cfg, self.device)
        self.schedule = make_schedule(
            optim_cfg, self.samples_per_step, self.steps_per_epoch, train_cfg.epochs, train_cfg.warmup_epochs
        )
        self.clip_grad = optim_cfg.clip_grad
        self.bf16 = use_bf16(train_cfg.precision, self.device)
        self.is_main = self.sampler.rank == 0
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step = self.epoch = self.position = 0

    # ---------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step, "total_steps": self.total_steps},
            "step": self.step,
            "epoch": self.epoch,
            "sampler": {"epoch": self.epoch, "position": self.position, "seed": self.sampler.seed},
            "rng": capture_rng(),
            "config": self.config,
        }

    def save(self) -> None:
        if not self.is_main:
            return
        state = self.state_dict()
        path = save_checkpoint(self.checkpoint_path, state)
        keep = self.cfg.keep_every
        if keep and self.step % keep == 0:
            numbered = self.run_dir / f"step_{self.step:08d}.pt"
            numbered.unlink(missing_ok=True)
            try:
                os.link(path, numbered)  # the same bytes at no cost; last.pt is later replaced, not rewritten
            except OSError:  # a filesystem without hard links
                save_checkpoint(numbered, state)

    def resume(self) -> int | None:
        """Continue from `last.pt` if the run dir has one: model, optimizer, step, sampler and RNG."""
        if not self.checkpoint_path.exists():
            return None
        state = load_checkpoint(self.checkpoint_path, map_location=self.device)
        self.objective.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.position = state["sampler"]["position"]
        restore_rng(state["rng"])
        if self.is_main:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        return self.step

    # ---------------------------------------------------------------------------------------------
    def _micro_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        batch = to_device(batch, self.device)
        if self.hooks.batch_transform is not None:
            batch = self.hooks.batch_transform(batch)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with autocast:
            loss, metrics = self.model(batch)
        (loss / self.cfg.accumulate).backward()
        return {"loss": loss.detach().float(), **{k: v.detach().float() for k, v in metrics.items()}}

    def _optimizer_step(self) -> torch.Tensor | None:
        grad_norm = None
        if self.clip_grad is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.clip_grad)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def fit(self) -> FitResult:
        resumed_from = self.resume()
        logger = MetricsLogger(self.run_dir, enabled=self.is_main)
        progress = self._progress_bar()
        sums: dict[str, torch.Tensor] = {}
        window_steps, window_start, data_wait = 0, time.perf_counter(), 0.0
        last: dict[str, float] = {}
        try:
            while self.step < self.end_step:
                epoch = self.epoch
                self.sampler.start(self.epoch, self.position)
                batches = iter(self.loader)
                while self.epoch == epoch and self.step < self.end_step:
                    lr = apply_schedule(self.optimizer, self.schedule, self.step)
                    for _ in range(self.cfg.accumulate):
                        wait_start = time.perf_counter()
                        batch = next(batches)
                        data_wait += time.perf_counter() - wait_start
                        for key, value in self._micro_step(batch).items():
                            sums[key] = sums[key] + value if key in sums else value
                    grad_norm = self._optimizer_step()
                    if grad_norm is not None:
                        sums["grad_norm"] = sums.get("grad_norm", 0) + grad_norm.detach().float() * self.cfg.accumulate
                    self.step += 1
                    self.position += self.samples_per_step
                    if self.position >= self.sampler.samples_per_epoch:
                        self.epoch, self.position = self.epoch + 1, 0
                    window_steps += 1
                    progress.update(self.samples_per_step)
                    if self.step % self.cfg.log_every == 0 or self.step == self.end_step:
                        elapsed = time.perf_counter() - window_start
                        last = {k: v.item() / (window_steps * self.cfg.accumulate) for k, v in sums.items()}
                        last.update(
                            lr=lr,
                            epoch=self.epoch + self.position / self.sampler.samples_per_epoch,
                            samples_per_s=window_steps * self.samples_per_step / elapsed,
                            data_wait=data_wait / elapsed,
                        )
                        logger.log(self.step, last)
                        progress.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{lr:.2e}")
                        sums, window_steps, data_wait, window_start = {}, 0, 0.0, time.perf_counter()
                    if self.step % self.cfg.checkpoint_every == 0 or self.step == self.end_step:
                        self.save()
                    every = self.hooks.eval_every
                    if self.hooks.on_eval and ((every and self.step % every == 0) or self.step == self.end_step):
                        self._evaluate(logger, progress)
                        window_start = time.perf_counter()
                del batches
        finally:
            progress.close()
            logger.close()
        return FitResult(step=self.step, epoch=self.epoch, resumed_from=resumed_from, last_metrics=last)

    def _evaluate(self, logger: MetricsLogger, progress) -> None:
        self.objective.eval()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        try:
            with torch.no_grad(), autocast:
                metrics = self.hooks.on_eval(self.step) or {}
        finally:
            self.objective.train()
        if metrics and self.is_main:
            logger.log(self.step, {f"eval/{k}": v for k, v in metrics.items()})
            progress.write(f"eval step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))

    def _progress_bar(self):
        from tqdm.auto import tqdm

        return tqdm(
            total=self.end_step * self.samples_per_step,
            initial=self.step * self.samples_per_step,
            unit="sample",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not (self.cfg.progress and self.is_main),
            desc=f"pretrain {self.run_dir.name}",
        )
