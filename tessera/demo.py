"""`tessera demo`: does VideoMAE pretraining pay off on generated action clips?

What it runs (recipes videomae-demo-pretrain and videomae-demo-finetune):

1. Data: generated moving-shape clips whose class is how the shape moves (tessera/data/synthetic.py):
   an unlabeled set for pretraining and, from another generator seed (so no clip is shared), a
   labelled set of 6 classes cut per class into train / validation / test clips. Few labels per
   class: that is where pretraining should help.
2. Pretraining: a tiny VideoMAE (tube masking, raw-pixel targets) on the unlabeled set; its run
   directory (`run_dir/pretrain`) gets the reconstruction pictures and `last.pt`.
3. Fine-tuning, two arms with the same recipe, budget and lr rule: from the pretrained weights and
   from scratch. Every (arm, lr, seed) of a small lr grid is fine-tuned; each run keeps its best
   weights by validation top-1 (one centre view, checked every `eval.every` steps).
   **The lr rule**: for each arm, the lr whose mean best validation top-1 over the seeds is highest
   (ties: the smaller lr). The test clips are never looked at before that choice.
4. Test: the chosen lr's runs (every seed) are scored on the held-out test clips with the
   multi-view protocol (softmax averaged over the views); the table gives mean +- std over seeds.

The budget: step counts follow from `minutes` through nominal speeds measured on 2 CPU cores
(so the same `minutes` runs the same steps on any machine and the table is reproducible);
a deadline per phase stops a run early on a machine slower than that (the table then says so).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from contextlib import redirect_stderr
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import torch

PRETRAIN_RECIPE = "videomae-demo-pretrain"
FINETUNE_RECIPE = "videomae-demo-finetune"


@dataclass
class DemoPlan:
    """What a budget buys: data sizes, step counts, the lr grid and the seeds."""

    minutes: float
    seeds: int
    lrs: tuple[float, ...]  # optim.base_lr grid of fine-tuning (x batch / 256)
    pretrain_steps: int
    finetune_steps: int
    eval_every: int
    pretrain_videos: int = 2000
    per_class: tuple[int, int, int] = (10, 10, 40)  # labelled clips per class: train, validation, test
    pretrain_seconds: float = 0.0  # the phases' deadlines (seconds of wall time)
    finetune_seconds: float = 0.0

    def pretrain_settings(self) -> list[str]:
        return [f"data.synthetic.num_videos={self.pretrain_videos}"]

    def finetune_settings(self) -> list[str]:
        total = sum(self.per_class)
        shares = [round(n / total, 7) for n in self.per_class]
        shares[-1] = round(1.0 - sum(shares[:-1]), 7)
        return [f"data.synthetic.num_videos={6 * total}", f"data.synthetic_split=[{','.join(map(str, shares))}]"]


# Nominal speeds: about 85% of what 2 quiet CPU cores measured (13.6 pretraining steps/s of 16 clips,
# 28.9 fine-tuning steps/s of 8, fp32, the demo recipes' sizes; BENCHMARKS.md). The step counts come
# from them, so the same `minutes` runs the same steps everywhere and a faster machine finishes sooner.
PRETRAIN_STEPS_PER_S = 11.5
FINETUNE_STEPS_PER_S = 24.0
FIXED_SECONDS = 75.0  # generating the clips the first time (about 20 ms each), starts, tests
PRETRAIN_SHARE = 0.5  # of the time left after the fixed costs
RUN_START_SECONDS = 4.0  # a fine-tuning run's start and its validations (measured: 11.3 s per run of 147 steps)
LR_GRID = (1.0e-2, 3.0e-2, 1.0e-1)


def plan_budget(minutes: float, seeds: int | None = None) -> DemoPlan:
    """The plan for `minutes` of wall time: half of what the fixed costs leave pretrains, half
    fine-tunes every (arm, lr, seed); under a minute, a smoke-sized run (tests)."""
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    if minutes < 1:
        plan = DemoPlan(minutes, seeds or 1, LR_GRID[1:2], pretrain_steps=4, finetune_steps=4, eval_every=2,
                        pretrain_videos=64, per_class=(2, 2, 2))
        plan.pretrain_seconds = plan.finetune_seconds = max(30.0, minutes * 60)
        return plan
    seeds = seeds or (3 if minutes >= 5 else 1)
    lrs = LR_GRID if minutes >= 3 else LR_GRID[1:2]
    left = max(minutes * 60.0 - FIXED_SECONDS, 30.0)
    pretrain_seconds = left * PRETRAIN_SHARE
    runs = 2 * len(lrs) * seeds
    per_run = max(2.0, (left - pretrain_seconds) / runs - RUN_START_SECONDS)
    finetune_steps = max(16, int(per_run * FINETUNE_STEPS_PER_S))
    plan = DemoPlan(minutes, seeds, lrs, pretrain_steps=max(16, int(pretrain_seconds * PRETRAIN_STEPS_PER_S)),
                    finetune_steps=finetune_steps, eval_every=max(2, finetune_steps // 8))
    # deadlines: a machine slower than the nominal speeds stops a phase early (the table says so)
    plan.pretrain_seconds = 1.25 * pretrain_seconds
    plan.finetune_seconds = 1.25 * (per_run + RUN_START_SECONDS)
    return plan


# --------------------------------------------------------------------------------------------------
def _log(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _deadline_check(check, trainer_ref: dict, deadline: float | None):
    """The robust reader's check, plus a stop at the deadline: read at the logging cadence, it ends
    the run at the current step (which is then saved and evaluated, as a last step is)."""

    def wrapped(bad: int, seen: int) -> None:
        if check is not None:
            check(bad, seen)
        trainer = trainer_ref.get("trainer")
        if deadline is not None and trainer is not None and time.perf_counter() > deadline:
            trainer.end_step = min(trainer.end_step, trainer.step)
            trainer_ref["stopped_early"] = True

    return wrapped


def _training_records(run_dir: Path) -> list[dict[str, Any]]:
    """The logged training windows of a run (evaluation records carry no samples_per_s)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "samples_per_s" in r]


def _speed(train: list[dict[str, Any]], batch_size: int) -> float:
    """Training steps/s over the logged windows but the first (it holds the start); evaluations and
    the start are not in it (the wall time is reported beside it)."""
    if not train:
        return float("nan")
    steps = [r["step"] for r in train]
    rows = list(zip([b - a for a, b in zip([0, *steps[:-1]], steps)], train))
    rows = rows[1:] or rows
    seconds = sum(w * batch_size / r["samples_per_s"] for w, r in rows)
    return sum(w for w, _ in rows) / seconds


def pretrain(plan: DemoPlan, run_dir: Path, deadline: float | None) -> dict[str, Any]:
    """Pretrain on the unlabeled set; pictures and last.pt in run_dir."""
    from tessera.config import to_dict
    from tessera.recipes import load_recipe
    from tessera.recipes.build import PRETRAINING_BUILDERS, make_loader
    from tessera.train.loop import Trainer, TrainHooks, resolve_device
    from tessera.train.rng import seed_everything

    cfg = load_recipe(PRETRAIN_RECIPE, plan.pretrain_settings())
    per_epoch = cfg.data.synthetic.num_videos // cfg.data.batch_size
    epochs = max(1, math.ceil(plan.pretrain_steps / per_epoch))
    steps = min(plan.pretrain_steps, epochs * per_epoch)
    warmup = min(cfg.train.warmup_epochs, 0.1 * steps / per_epoch)
    cfg = load_recipe(PRETRAIN_RECIPE, [*plan.pretrain_settings(), f"train.epochs={epochs}", f"train.max_steps={steps}",
                                        f"train.warmup_epochs={warmup}", f"eval.every={steps}"])
    # the cosine schedule spans whole epochs; with max_steps inside the last one it ends a little above min_lr
    config = to_dict(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    setup = PRETRAINING_BUILDERS[("video", "mae")](cfg, device, run_dir)
    loader = make_loader(cfg, setup.dataset, device)
    ref: dict[str, Any] = {}
    hooks = TrainHooks(batch_transform=setup.batch_transform, on_eval=setup.on_eval, eval_every=cfg.eval.every,
                       check_bad_samples=_deadline_check(setup.check_bad_samples, ref, deadline))
    trainer = Trainer(setup.objective, loader, cfg.optim, cfg.train, run_dir, config, hooks=hooks, device=device)
    ref["trainer"] = trainer
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    train = _training_records(run_dir)
    speed = _speed(train, cfg.data.batch_size)
    losses = [r["loss"] for r in train]
    return {"steps": result.step, "planned": steps, "seconds": seconds, "steps_per_s": speed,
            "loss_first": losses[0] if losses else float("nan"), "loss_last": losses[-1] if losses else float("nan"),
            "stopped_early": ref.get("stopped_early", False), "checkpoint": run_dir / "last.pt",
            "pictures": sorted((run_dir / "pictures").rglob("*.png"))}


def finetune(plan: DemoPlan, init: Path | None, lr: float, seed: int, run_dir: Path,
             deadline: float | None) -> dict[str, Any]:
    """One fine-tuning run; best.pt by validation top-1. No test here: the lr is not chosen yet."""
    from tessera.config import to_dict
    from tessera.eval.classification import topk_accuracy
    from tessera.recipes import load_recipe
    from tessera.recipes.build import make_loader, robust
    from tessera.recipes.video_finetune import build_classifier, labelled_splits, load_initial, predict, video_dataset
    from tessera.train.checkpoint import save_checkpoint
    from tessera.train.loop import Trainer, TrainHooks, resolve_device
    from tessera.train.rng import seed_everything

    cfg = load_recipe(FINETUNE_RECIPE, plan.finetune_settings())
    splits = labelled_splits(cfg)
    per_epoch = len(splits.train) // cfg.data.batch_size
    epochs = max(1, math.ceil(plan.finetune_steps / per_epoch))
    steps = epochs * per_epoch  # whole epochs: the cosine schedule ends where the run ends
    warmup = min(cfg.train.warmup_epochs, 0.1 * epochs)
    cfg = load_recipe(FINETUNE_RECIPE, [*plan.finetune_settings(), f"train.epochs={epochs}", f"train.warmup_epochs={warmup}",
                                        f"optim.base_lr={lr}", f"train.seed={seed}", f"eval.every={plan.eval_every}"])
    config = to_dict(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    objective = build_classifier(cfg, len(splits.class_names))
    if init is not None:
        report = StringIO()
        with redirect_stderr(report):
            load_initial(objective, init)
        (run_dir / "init_report.txt").write_text(report.getvalue())
    train_set, check = robust(video_dataset(cfg, splits.train, "train"), cfg.data, run_dir)
    loader = make_loader(cfg, train_set, device)
    val_set = video_dataset(cfg, splits.val, "val")
    best = {"top1": -1.0, "step": 0}
    history: list[tuple[int, float]] = []

    def on_eval(step: int) -> dict[str, float]:
        raw = predict(objective, val_set, cfg, device)
        top1 = topk_accuracy(raw["scores"], raw["label"])["top1"]
        history.append((step, top1))
        if top1 > best["top1"]:
            best.update(top1=top1, step=step)
            save_checkpoint(run_dir / "best.pt", {"model": objective.state_dict(), "step": step, "config": config,
                                                  "val_top1": top1})
        objective.train()
        return {"val_top1": top1}

    ref: dict[str, Any] = {}
    hooks = TrainHooks(check_bad_samples=_deadline_check(check, ref, deadline), eval_every=cfg.eval.every,
                       on_eval=on_eval)
    trainer = Trainer(objective, loader, cfg.optim, cfg.train, run_dir, config, hooks=hooks, device=device)
    ref["trainer"] = trainer
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    speed = _speed(_training_records(run_dir), cfg.data.batch_size)
    return {"lr": lr, "seed": seed, "val_top1": best["top1"], "best_step": best["step"], "steps": result.step,
            "planned": steps, "seconds": seconds, "steps_per_s": speed, "history": history,
            "stopped_early": ref.get("stopped_early", False), "run_dir": run_dir}


def test(plan: DemoPlan, run: dict[str, Any]) -> dict[str, float]:
    """The multi-view test of a run's best.pt on the held-out clips."""
    from tessera.recipes import load_recipe
    from tessera.recipes.video_finetune import build_classifier, labelled_splits, score_views, video_dataset
    from tessera.train.checkpoint import load_checkpoint, load_weights
    from tessera.train.loop import resolve_device

    cfg = load_recipe(FINETUNE_RECIPE, plan.finetune_settings())
    splits = labelled_splits(cfg)
    device = resolve_device(cfg.train.device)
    objective = build_classifier(cfg, len(splits.class_names))
    best = run["run_dir"] / "best.pt"
    load_weights(objective, load_checkpoint(best)["model"], str(best))
    objective.to(device)
    metrics, report = score_views(objective, video_dataset(cfg, splits.test, "test"), cfg, device, splits.test,
                                  splits.class_names)
    (run["run_dir"] / "test_scores.json").write_text(json.dumps(report, indent=1))
    return metrics


def choose_lr(runs: list[dict[str, Any]]) -> float:
    """The lr rule: highest mean best-validation top-1 over seeds; ties go to the smaller lr."""
    by_lr: dict[float, list[float]] = {}
    for run in runs:
        by_lr.setdefault(run["lr"], []).append(run["val_top1"])
    return max(sorted(by_lr), key=lambda lr: statistics.fmean(by_lr[lr]))


# --------------------------------------------------------------------------------------------------
def mean_std(values: list[float]) -> str:
    """'mean ± std %' over seeds (sample std), or the one value."""
    if len(values) == 1:
        return f"{100 * values[0]:.1f}%"
    return f"{100 * statistics.fmean(values):.1f} ± {100 * statistics.stdev(values):.1f}%"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def _data(plan: DemoPlan) -> dict[str, Any]:
    """Generate (first use) or find both sets; the labelled one's split sizes."""
    from tessera.recipes import load_recipe
    from tessera.recipes.build import synthetic_videos
    from tessera.recipes.video_finetune import labelled_splits

    unlabeled = synthetic_videos(load_recipe(PRETRAIN_RECIPE, plan.pretrain_settings()).data.synthetic)
    splits = labelled_splits(load_recipe(FINETUNE_RECIPE, plan.finetune_settings()))
    return {"unlabeled": unlabeled.parent, "train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
            "classes": splits.class_names}


def video_demo(minutes: float = 10.0, run_dir: Path | str = Path("runs/demo"), seeds: int | None = None) -> str:
    """Generate the action set, pretrain, fine-tune pretrained and from scratch, test; the table.

    The table (also in run_dir/table.txt, every number in run_dir/demo.json) is returned and printed.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_budget(minutes, seeds)
    start = time.perf_counter()
    _log(f"budget {minutes:g} min: {plan.pretrain_steps} pretraining steps, then {2 * len(plan.lrs) * plan.seeds} "
         f"fine-tuning runs of {plan.finetune_steps} steps; run directory {run_dir}")
    data = _data(plan)
    data_seconds = time.perf_counter() - start
    _log(f"data ready in {data_seconds:.0f} s: {plan.pretrain_videos} unlabeled clips, {data['train']} / "
         f"{data['val']} / {data['test']} labelled train / validation / test clips of {len(data['classes'])} classes")

    t = time.perf_counter()
    pre = pretrain(plan, run_dir / "pretrain", deadline=t + plan.pretrain_seconds)
    _log(f"pretrained {pre['steps']} steps in {pre['seconds']:.0f} s ({pre['steps_per_s']:.1f} steps/s), loss "
         f"{pre['loss_first']:.4f} -> {pre['loss_last']:.4f}; pictures in {run_dir / 'pretrain' / 'pictures'}")

    arms = {"pretrained": pre["checkpoint"], "scratch": None}
    results: dict[str, dict[str, Any]] = {}
    for arm, init in arms.items():
        runs = []
        for lr in plan.lrs:
            for seed in range(plan.seeds):
                t = time.perf_counter()
                run = finetune(plan, init, lr, seed, run_dir / "finetune" / arm / f"lr{lr:g}-seed{seed}",
                               deadline=t + plan.finetune_seconds)
                run["wall"] = time.perf_counter() - t
                runs.append(run)
                _log(f"{arm} lr {lr:g} seed {seed}: best validation top-1 {100 * run['val_top1']:.1f}% "
                     f"({run['steps']} steps, {run['steps_per_s']:.1f} steps/s)")
        lr = choose_lr(runs)
        chosen = [r for r in runs if r["lr"] == lr]
        t = time.perf_counter()
        tests = [test(plan, r)["top1"] for r in chosen]
        results[arm] = {"lr": lr, "runs": runs, "val": [r["val_top1"] for r in chosen], "test": tests,
                        "test_seconds": time.perf_counter() - t}
        _log(f"{arm}: lr {lr:g} picked on validation; test top-1 {mean_std(tests)}")
    wall = time.perf_counter() - start
    table = _table(plan, data, pre, results, wall, data_seconds)
    (run_dir / "table.txt").write_text(table + "\n")
    (run_dir / "demo.json").write_text(json.dumps(_record(plan, data, pre, results, wall, data_seconds), indent=1,
                                                  default=str))
    print(table)
    return table


def _table(plan: DemoPlan, data: dict, pre: dict, results: dict, wall: float, data_seconds: float) -> str:
    n_seeds = plan.seeds
    header = "| fine-tuned from | lr (picked on val) | val top-1 | test top-1 | fine-tune steps/s | time |"
    lines = [
        f"VideoMAE demo: does pretraining pay off? ({plan.minutes:g} min budget, {torch.get_num_threads()} CPU "
        f"threads, torch {torch.__version__})",
        f"data: {plan.pretrain_videos} unlabeled clips; {len(data['classes'])} motion classes x "
        f"{plan.per_class[0]} train / {plan.per_class[1]} validation / {plan.per_class[2]} test labelled clips",
        f"pretraining: {pre['steps']} steps of {_pretrain_batch(plan)} clips in {_minutes(pre['seconds'])}, "
        f"{pre['steps_per_s']:.1f} steps/s, loss {pre['loss_first']:.4f} -> {pre['loss_last']:.4f}"
        + (" (stopped at its deadline)" if pre["stopped_early"] else ""),
        f"fine-tuning: {plan.finetune_steps} steps per run (or the next whole epoch), base lr in "
        f"{{{', '.join(f'{lr:g}' for lr in plan.lrs)}}} x {n_seeds} seed{'s' * (n_seeds > 1)} per arm; "
        f"the lr with the best mean validation top-1 is tested",
        "",
        header,
        "|---|---|---|---|---|---|",
    ]
    for arm, res in results.items():
        runs = res["runs"]
        speed = statistics.fmean(r["steps_per_s"] for r in runs)
        seconds = sum(r["wall"] for r in runs) + res["test_seconds"]
        early = " (deadline)" if any(r["stopped_early"] for r in runs) else ""
        lines.append(f"| {arm} | {res['lr']:g} | {mean_std(res['val'])} | {mean_std(res['test'])} | "
                     f"{speed:.1f} | {_minutes(seconds)}{early} |")
    gain = statistics.fmean(results["pretrained"]["test"]) - statistics.fmean(results["scratch"]["test"])
    over = f"mean of {n_seeds} seeds" if n_seeds > 1 else "1 seed"
    lines += [
        "",
        f"pretrained - scratch: {100 * gain:+.1f} points of test top-1 ({over}; chance is "
        f"{100 / len(data['classes']):.1f}%, {data['test']} test clips)",
        f"wall time {_minutes(wall)} (data {_minutes(data_seconds)}, pretraining {_minutes(pre['seconds'])}); "
        f"reconstructions: {pre['pictures'][-1].parent if pre['pictures'] else 'none'}",
    ]
    return "\n".join(lines)


def _pretrain_batch(plan: DemoPlan) -> int:
    from tessera.recipes import load_recipe

    return load_recipe(PRETRAIN_RECIPE, plan.pretrain_settings()).data.batch_size


def _record(plan: DemoPlan, data: dict, pre: dict, results: dict, wall: float, data_seconds: float) -> dict:
    strip = lambda run: {k: v for k, v in run.items() if k != "run_dir"}  # noqa: E731
    return {"plan": plan.__dict__, "data": {k: str(v) if isinstance(v, Path) else v for k, v in data.items()},
            "pretrain": {k: v for k, v in pre.items() if k != "pictures"}, "wall_seconds": wall,
            "data_seconds": data_seconds,
            "arms": {arm: {**{k: v for k, v in res.items() if k != "runs"}, "runs": [strip(r) for r in res["runs"]]}
                     for arm, res in results.items()}}


__all__ = ["video_demo", "plan_budget", "DemoPlan", "pretrain", "finetune", "test", "choose_lr", "mean_std"]
