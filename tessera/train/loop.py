"""The training loop: steps, accumulation, schedules, checkpoints, logging, DDP and exact resume.

It knows nothing of modalities or losses: an objective maps a batch to `(loss, metrics)`, the recipe
builder hands in what must happen to a batch on the device and what an evaluation does. Nothing is
read back from the device inside a step; scalars are read at the logging cadence.
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
from tessera.train.distributed import DistInfo, all_reduce_sum, barrier
from tessera.train.logging import MetricsLogger, truncate_metrics
from tessera.train.optim import apply_schedule, make_optimizer, make_schedule
from tessera.train.parallel import gather_state, scatter_state, wrap
from tessera.train.rng import capture_rng, restore_rng
from tessera.train.sampler import ResumableSampler
from tessera.train.signals import NonFiniteTraining, StopRequested, StopSignals

Batch = dict[str, Any]


@dataclass
class TrainHooks:
    """What the recipe adds to the loop without the loop knowing the modality."""

    batch_transform: Callable[[Batch], Batch] | None = None  # on the device, after the copy (e.g. normalise)
    on_eval: Callable[[int], dict[str, float] | None] | None = None  # pictures, probes; returns metrics to log
    eval_every: int | None = None
    # called at the logging cadence with (replaced samples, samples seen) summed over ranks; may raise
    check_bad_samples: Callable[[int, int], None] | None = None


@dataclass
class FitResult:
    step: int
    epoch: int
    resumed_from: int | None
    last_metrics: dict[str, float]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Tensors, and lists of tensors (samples of different sizes), copied without blocking on CUDA."""
    non_blocking = device.type == "cuda"

    def move(value: Any) -> Any:
        if torch.is_tensor(value):
            return value.to(device, non_blocking=non_blocking)
        if isinstance(value, list) and value and torch.is_tensor(value[0]):
            return [v.to(device, non_blocking=non_blocking) for v in value]
        return value

    return {k: move(v) for k, v in batch.items()}


class Trainer:
    """One rank's view of a run: single process, or one of several under torchrun (DDP)."""

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
        dist: DistInfo | None = None,
    ) -> None:
        if not isinstance(loader.sampler, ResumableSampler):
            raise TypeError("the training loader must use tessera.train.sampler.ResumableSampler (exact resume)")
        self.cfg = train_cfg
        self.run_dir = Path(run_dir)
        self.config = config
        self.hooks = hooks or TrainHooks()
        self.dist = dist or DistInfo()
        self.device = device or resolve_device(train_cfg.device, self.dist.local_rank)
        self.objective = objective.to(self.device)
        if hasattr(objective, "set_shard"):  # draw masks for the global batch, keep this rank's rows
            objective.set_shard(self.dist.rank, self.dist.world)
        model = wrap(objective, self.dist, train_cfg.strategy, self.device)
        self.model: nn.Module = torch.compile(model) if train_cfg.compile else model
        self.loader = loader
        self.sampler: ResumableSampler = loader.sampler
        self.batch_size = loader.batch_size
        self.samples_per_step = self.batch_size * self.dist.world * train_cfg.accumulate
        self.steps_per_epoch = self.sampler.samples_per_epoch // self.samples_per_step
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"an epoch of {self.sampler.samples_per_epoch} samples is shorter than one optimizer step "
                f"({self.samples_per_step} samples): lower data.batch_size or train.accumulate"
            )
        self.total_steps = train_cfg.epochs * self.steps_per_epoch
        self.end_step = min(self.total_steps, train_cfg.max_steps or self.total_steps)
        self.optimizer = make_optimizer(objective, optim_cfg, self.device)
        self.fused = bool(self.optimizer.defaults.get("fused"))
        self.schedule = make_schedule(
            optim_cfg, self.samples_per_step, self.steps_per_epoch, train_cfg.epochs, train_cfg.warmup_epochs
        )
        self.clip_grad = optim_cfg.clip_grad
        self.bf16 = use_bf16(train_cfg.precision, self.device)
        self.is_main = self.dist.is_main
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step = self.epoch = self.position = 0
        self.nonfinite = torch.zeros((), device=self.device)  # skipped steps, summed on the device
        self.nonfinite_total = 0  # as last read (logging cadence), over all ranks' view (identical)
        self.bad_samples = self.seen_samples = 0

    # ---------------------------------------------------------------------------------------------
    @property
    def sharded(self) -> bool:
        return self.dist.enabled and self.cfg.strategy == "fsdp"

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    def state_dict(self) -> dict[str, Any]:
        model, optimizer = gather_state(self.objective, self.optimizer, self.sharded)
        return {
            "model": model,
            "optimizer": optimizer,
            "scheduler": {"step": self.step, "total_steps": self.total_steps},
            "step": self.step,
            "epoch": self.epoch,
            "sampler": {"epoch": self.epoch, "position": self.position, "seed": self.sampler.seed},
            "counters": {"nonfinite": self.nonfinite_total, "bad_samples": self.bad_samples,
                         "seen_samples": self.seen_samples},
            "rng": capture_rng(),
            "config": self.config,
        }

    def save(self) -> None:
        self._check_nonfinite()  # never overwrite the last good checkpoint with a diverged run
        state = self.state_dict() if self.is_main or self.sharded else None  # gathering is collective
        if self.is_main:
            path = save_checkpoint(self.checkpoint_path, state)
            keep = self.cfg.keep_every
            if keep and self.step % keep == 0:
                numbered = self.run_dir / f"step_{self.step:08d}.pt"
                numbered.unlink(missing_ok=True)
                try:
                    os.link(path, numbered)  # the same bytes at no cost; last.pt is replaced, not rewritten
                except OSError:  # a filesystem without hard links
                    save_checkpoint(numbered, state)
        barrier(self.dist)

    def resume(self) -> int | None:
        """Continue from `last.pt` if the run dir has one: model, optimizer, step, sampler and RNG."""
        if not self.checkpoint_path.exists():
            return None
        state = load_checkpoint(self.checkpoint_path, map_location=self.device)
        scatter_state(self.objective, self.optimizer, state["model"], state["optimizer"], self.sharded)
        self.step, self.epoch = state["step"], state["epoch"]
        self.position = state["sampler"]["position"]
        counters = state.get("counters", {})
        self.nonfinite_total = counters.get("nonfinite", 0)
        self.nonfinite.fill_(self.nonfinite_total)
        self.bad_samples, self.seen_samples = counters.get("bad_samples", 0), counters.get("seen_samples", 0)
        restore_rng(state["rng"])
        if self.is_main:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        return self.step

    # ---------------------------------------------------------------------------------------------
    def _micro_step(self, batch: Batch, sync: bool) -> dict[str, torch.Tensor]:
        replaced = batch.pop("replaced", None)  # samples the robust reader had to replace (CPU)
        if replaced is not None:
            self.bad_samples += int(replaced.sum())
        self.seen_samples += self.batch_size
        batch = to_device(batch, self.device)
        if self.hooks.batch_transform is not None:
            batch = self.hooks.batch_transform(batch)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        no_sync = self.model.no_sync() if self.dist.enabled and not sync else nullcontext()
        with no_sync:
            with autocast:
                loss, metrics = self.model(batch)
            (loss / self.cfg.accumulate).backward()
        return {"loss": loss.detach().float(), **{k: v.detach().float() for k, v in metrics.items()}}

    def _optimizer_step(self) -> torch.Tensor:
        """Step unless the loss or a gradient is non-finite; the skip is decided on the device.

        The global norm is computed every step (it is the clipping norm too). Fused AdamW takes the
        `found_inf` flag as GradScaler hands it and skips on the device; other optimizers fall back to
        reading the flag, one sync per step.
        """
        max_norm = self.clip_grad if self.clip_grad is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.objective.parameters(), max_norm, foreach=True)
        if hasattr(grad_norm, "full_tensor"):  # FSDP: a replicated DTensor
            grad_norm = grad_norm.full_tensor()
        found_inf = (~torch.isfinite(grad_norm)).float()  # 0-dim, as the fused kernel's step counters
        if self.fused:
            self.optimizer.found_inf = found_inf
            self.optimizer.step()
        elif not found_inf.item():
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite += found_inf
        return grad_norm

    def _check_nonfinite(self) -> None:
        self.nonfinite_total = int(self.nonfinite.item())  # identical on every rank: grads are all-reduced
        limit = self.cfg.max_nonfinite_steps
        if self.nonfinite_total > limit:
            raise NonFiniteTraining(
                f"{self.nonfinite_total} optimizer steps had a non-finite loss or gradient (limit "
                f"train.max_nonfinite_steps={limit}); stopped at step {self.step} without saving, so "
                f"{self.checkpoint_path} is the last good checkpoint. Lower optim.lr or set optim.clip_grad."
            )

    def _read_metrics(self, sums: dict[str, torch.Tensor], window_steps: int, stop: bool) -> tuple[dict, bool]:
        """One device read per logging step: metrics averaged over steps and ranks, plus the stop vote."""
        names = sorted(sums)
        counts = torch.tensor([self.bad_samples, self.seen_samples, int(stop)], dtype=torch.float64)
        values = torch.cat([torch.stack([sums[k] for k in names]).double(), counts.to(self.device)])
        values = all_reduce_sum(values, self.dist).cpu()
        world = self.dist.world
        metrics = {k: v.item() / (window_steps * self.cfg.accumulate * world) for k, v in zip(names, values)}
        bad, seen, stop_votes = (int(v) for v in values[len(names):])
        if self.hooks.check_bad_samples is not None:
            self.hooks.check_bad_samples(bad, seen)
        metrics["bad_samples"] = bad
        self._check_nonfinite()
        metrics["nonfinite_steps"] = self.nonfinite_total
        return metrics, stop_votes > 0

    def fit(self) -> FitResult:
        resumed_from = self.resume()
        logger = MetricsLogger(self.run_dir, enabled=self.is_main)
        progress = self._progress_bar()
        last: dict[str, float] = {}
        try:
            with StopSignals() as stop:
                last = self._train(logger, progress, stop)
        finally:
            progress.close()
            logger.close()
        return FitResult(step=self.step, epoch=self.epoch, resumed_from=resumed_from, last_metrics=last)

    def _train(self, logger: MetricsLogger, progress, stop: StopSignals) -> dict[str, float]:
        sums: dict[str, torch.Tensor] = {}
        window_steps, window_start, data_wait = 0, time.perf_counter(), 0.0
        last: dict[str, float] = {}
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        while self.step < self.end_step:
            epoch = self.epoch
            self.sampler.start(self.epoch, self.position)
            batches = iter(self.loader)
            while self.epoch == epoch and self.step < self.end_step:
                lr = apply_schedule(self.optimizer, self.schedule, self.step)
                for micro in range(self.cfg.accumulate):
                    wait_start = time.perf_counter()
                    try:
                        batch = next(batches)
                    except RuntimeError:
                        if stop.requested:  # Ctrl-C also reached the loader's workers: stop cleanly
                            self.save()
                            raise StopRequested(stop.signum, self.step) from None
                        raise
                    data_wait += time.perf_counter() - wait_start
                    values = self._micro_step(batch, sync=micro == self.cfg.accumulate - 1)
                    for key, value in values.items():
                        value = torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)
                        sums[key] = sums[key] + value if key in sums else value
                grad_norm = self._optimizer_step()
                sums["grad_norm"] = sums.get("grad_norm", 0) + torch.nan_to_num(grad_norm.float()) * self.cfg.accumulate
                self.step += 1
                self.position += self.samples_per_step
                if self.position >= self.sampler.samples_per_epoch:
                    self.epoch, self.position = self.epoch + 1, 0
                window_steps += 1
                progress.update(self.samples_per_step)
                stop_now = stop.requested and not self.dist.enabled
                if self.step % self.cfg.log_every == 0 or self.step == self.end_step:
                    elapsed = time.perf_counter() - window_start
                    last, stop_now = self._read_metrics(sums, window_steps, stop.requested)
                    last.update(
                        lr=lr,
                        epoch=self.epoch + self.position / self.sampler.samples_per_epoch,
                        samples_per_s=window_steps * self.samples_per_step / elapsed,
                        data_wait=data_wait / elapsed,
                    )
                    if self.device.type == "cuda":
                        last["max_memory_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
                    logger.log(self.step, last)
                    progress.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{lr:.2e}")
                    sums, window_steps, data_wait, window_start = {}, 0, 0.0, time.perf_counter()
                if stop_now:
                    self.save()
                    raise StopRequested(stop.signum or 15, self.step)
                if self.step % self.cfg.checkpoint_every == 0 or self.step == self.end_step:
                    self.save()
                every = self.hooks.eval_every
                if self.hooks.on_eval and ((every and self.step % every == 0) or self.step == self.end_step):
                    self._evaluate(logger, progress)
                    window_start = time.perf_counter()
            del batches
        return last

    def _evaluate(self, logger: MetricsLogger, progress) -> None:
        """Rank 0 runs the hook. Under FSDP every rank runs it (each block gathers its shards, a
        collective) with the root unit's parameters gathered first; only rank 0 keeps the results."""
        if not (self.is_main or self.sharded):
            return
        if self.sharded:
            self.objective.unshard()
        metrics = {}
        self.objective.eval()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        try:
            with torch.no_grad(), autocast:
                metrics = self.hooks.on_eval(self.step) or {}
        finally:
            self.objective.train()
            if self.sharded:
                self.objective.reshard()
        if not self.is_main:
            return
        if metrics:
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
            desc=f"train {self.run_dir.name}",
        )
