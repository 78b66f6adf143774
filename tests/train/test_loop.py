"""The trainer on a tiny regression objective: accumulation, schedule, checkpoints, resume."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tessera.train.checkpoint import load_checkpoint
from tessera.train.config import OptimConfig, TrainConfig
from tessera.train.loop import Trainer, TrainHooks
from tessera.train.sampler import ResumableSampler


class Points(Dataset):
    def __init__(self, n: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key):
        index, _seed = key
        return {"x": self.x[index], "y": self.y[index], "index": index}


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 1)

    def forward(self, batch):
        error = self.head(batch["x"]).squeeze(-1) - batch["y"]
        return (error**2).mean(), {"abs_error": error.abs().mean()}


def trainer(tmp_path, batch_size=8, accumulate=1, epochs=2, **train) -> Trainer:
    dataset = Points()
    per_step = batch_size * accumulate
    sampler = ResumableSampler(len(dataset), len(dataset) // per_step * per_step, seed=0)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    train_cfg = TrainConfig(epochs=epochs, warmup_epochs=0, accumulate=accumulate, log_every=1, progress=False,
                            device="cpu", **train)
    optim_cfg = OptimConfig(lr=0.1, weight_decay=0.0)
    return Trainer(Regression(), loader, optim_cfg, train_cfg, tmp_path, config={"test": True})


def test_accumulation_equals_the_large_batch(tmp_path):
    big = trainer(tmp_path / "big", batch_size=8, accumulate=1, max_steps=3)
    small = trainer(tmp_path / "small", batch_size=4, accumulate=2, max_steps=3)
    big.fit(), small.fit()
    for p, q in zip(big.objective.parameters(), small.objective.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_metrics_schedule_and_checkpoints(tmp_path):
    run = trainer(tmp_path, epochs=3, checkpoint_every=2, keep_every=4)
    result = run.fit()
    assert result.step == 12 and result.epoch == 3
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [r["lr"] for r in records] == pytest.approx([run.schedule.lr_at(s) for s in range(12)])
    assert records[-1]["loss"] < records[0]["loss"] and "abs_error" in records[0]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["last.pt", "step_00000004.pt", "step_00000008.pt",
                                                             "step_00000012.pt"]
    state = load_checkpoint(tmp_path / "step_00000008.pt")
    assert state["step"] == 8 and state["sampler"] == {"epoch": 2, "position": 0, "seed": 0}


def test_resume_continues_exactly(tmp_path):
    whole = trainer(tmp_path / "whole", epochs=3)
    whole.fit()
    part = trainer(tmp_path / "part", epochs=3, max_steps=5, checkpoint_every=5)
    part.fit()
    rest = trainer(tmp_path / "part", epochs=3)
    assert rest.fit().resumed_from == 5
    for p, q in zip(whole.objective.parameters(), rest.objective.parameters()):
        assert torch.equal(p, q)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in lines] == [
        json.loads(x)["loss"] for x in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    ]


def test_eval_hook_runs_without_grad_and_is_logged(tmp_path):
    run = trainer(tmp_path, epochs=1)
    seen = []

    def on_eval(step):
        seen.append((step, torch.is_grad_enabled(), run.objective.training))
        return {"score": float(step)}

    run.hooks = TrainHooks(on_eval=on_eval, eval_every=2)
    run.fit()
    assert seen == [(2, False, False), (4, False, False)]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["eval/score"] for r in records if "eval/score" in r] == [2.0, 4.0]


def test_bf16_autocast_step_on_cpu(tmp_path):
    run = trainer(tmp_path, epochs=1, precision="bf16")
    assert run.bf16 and run.fit().step == 4


class PoisonedPoints(Points):
    """Index 3's target is NaN: the step that sees it has a non-finite loss and gradient."""

    def __getitem__(self, key):
        sample = super().__getitem__(key)
        if sample["index"] == 3:
            sample = {**sample, "y": torch.tensor(float("nan"))}
        return sample


def poisoned_trainer(tmp_path, fused: bool, **train) -> Trainer:
    dataset = PoisonedPoints()
    sampler = ResumableSampler(len(dataset), 32, seed=0)
    loader = DataLoader(dataset, batch_size=8, sampler=sampler)
    train_cfg = TrainConfig(epochs=2, warmup_epochs=0, log_every=1, progress=False, device="cpu", **train)
    optim_cfg = OptimConfig(lr=0.1, weight_decay=0.0, fused=fused)
    return Trainer(Regression(), loader, optim_cfg, train_cfg, tmp_path, config={})


@pytest.mark.parametrize("fused", [False, True])
def test_planted_nan_batch_is_skipped_and_counted(tmp_path, fused):
    run = poisoned_trainer(tmp_path, fused)
    before = []
    original_step = run._optimizer_step

    def watched_step():
        before.append([p.detach().clone() for p in run.objective.parameters()])
        return original_step()

    run._optimizer_step = watched_step
    result = run.fit()
    assert result.step == 8 and result.last_metrics["nonfinite_steps"] == 2  # index 3 once per epoch
    assert all(torch.isfinite(p).all() for p in run.objective.parameters())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    skipped = [r["step"] for r in records if r["grad_norm"] == 0.0]
    assert len(skipped) == 2
    for step in skipped:  # the parameters after a skipped step equal those before it
        after = before[step] if step < len(before) else list(run.objective.parameters())
        for p, q in zip(before[step - 1], after):
            assert torch.equal(p, q)


def test_too_many_nonfinite_steps_stop_and_keep_the_last_good_checkpoint(tmp_path):
    from tessera.train.signals import NonFiniteTraining

    run = poisoned_trainer(tmp_path, fused=False, max_nonfinite_steps=0, checkpoint_every=1)
    with pytest.raises(NonFiniteTraining, match="max_nonfinite_steps=0"):
        run.fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] < run.step and state["counters"]["nonfinite"] == 0
