"""`tessera demo` (tessera/demo.py): a smoke-sized run of the whole comparison, seconds on 2 CPU cores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tessera.demo import choose_lr, plan_budget, video_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[str, Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("TESSERA_CACHE", str(tmp_path_factory.mktemp("cache")))
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    try:
        table = video_demo(minutes=0.05, run_dir=run_dir, seeds=1)
    finally:
        mp.undo()
    return table, run_dir


def test_the_table_compares_both_arms(demo_run):
    table, run_dir = demo_run
    assert (run_dir / "table.txt").read_text().strip() == table.strip()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| fine-tuned")]
    assert [row.split("|")[1].strip() for row in rows] == ["pretrained", "scratch"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6
        lr, val, test, speed, seconds = cells[1:]
        assert float(lr) > 0
        for accuracy in (val, test):  # one seed: a single percentage
            assert re.fullmatch(r"\d+\.\d%", accuracy) and 0 <= float(accuracy[:-1]) <= 100
        assert float(speed) > 0
        assert re.fullmatch(r"(\d+ min )?\d+ s( \(deadline\))?", seconds)
    assert "pretrained - scratch:" in table and "wall time" in table


def test_both_arms_ran_and_were_tested(demo_run):
    _, run_dir = demo_run
    record = json.loads((run_dir / "demo.json").read_text())
    assert record["pretrain"]["steps"] >= 1
    for arm in ("pretrained", "scratch"):
        result = record["arms"][arm]
        assert len(result["runs"]) == 1 and result["runs"][0]["steps"] >= 1
        assert len(result["test"]) == 1 and 0 <= result["test"][0] <= 1
        runs = list((run_dir / "finetune" / arm).iterdir())
        assert len(runs) == 1
        assert (runs[0] / "best.pt").is_file() and (runs[0] / "test_scores.json").is_file()
    # only the pretrained arm started from the pretraining checkpoint
    assert list((run_dir / "finetune" / "pretrained").glob("*/init_report.txt"))
    assert not list((run_dir / "finetune" / "scratch").glob("*/init_report.txt"))


def test_the_pretraining_run_wrote_reconstruction_pictures(demo_run):
    _, run_dir = demo_run
    assert (run_dir / "pretrain" / "last.pt").is_file()
    assert sorted((run_dir / "pretrain" / "pictures").rglob("clip*.png"))


def test_the_lr_is_picked_on_validation_means_ties_to_the_smaller():
    runs = [{"lr": 0.1, "val_top1": 0.5}, {"lr": 0.1, "val_top1": 0.3}, {"lr": 0.03, "val_top1": 0.4},
            {"lr": 0.03, "val_top1": 0.4}, {"lr": 0.01, "val_top1": 0.2}, {"lr": 0.01, "val_top1": 0.3}]
    assert choose_lr(runs) == 0.03  # 0.4 == 0.4 in mean: the smaller lr


def test_the_budget_scales_and_the_default_fits_ten_minutes():
    small, default, longer = plan_budget(0.05), plan_budget(10), plan_budget(30)
    assert small.seeds == 1 and len(small.lrs) == 1
    assert default.seeds == 3 and len(default.lrs) == 3
    assert longer.pretrain_steps > default.pretrain_steps and longer.finetune_steps > default.finetune_steps
    assert plan_budget(10, seeds=5).seeds == 5
