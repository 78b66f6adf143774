"""The tiny VideoMAE recipe end to end through the CLI, and exact resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tessera.cli import main
from tessera.train.checkpoint import load_checkpoint

RECIPE = "videomae-pretrain-tiny"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "TESSERA_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def tessera(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tessera", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_tiny_recipe_end_to_end(tmp_path, env):
    run_dir = tmp_path / "run"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), "train.epochs=2", "train.warmup_epochs=1",
                   "eval.every=6", env=env)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "done: step 12" in err and "sample/s" in err  # the progress bar with throughput
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] == 12 and state["config"]["model"]["dim"] == 64
    assert any(k.startswith("encoder.") for k in state["model"]) and any(k.startswith("decoder.") for k in state["model"])
    assert sorted(losses(run_dir)) == list(range(1, 13))
    pictures = sorted((run_dir / "pictures").rglob("*.png"))
    assert len(pictures) == 4 and all(p.stat().st_size > 1000 for p in pictures)  # 2 clips at steps 6 and 12
    assert (run_dir / "config.yaml").exists() and list((run_dir / "tensorboard").iterdir())


def test_sigkill_mid_epoch_then_resume_gives_the_same_losses(tmp_path, env):
    # 6 steps an epoch, a checkpoint every 5: every checkpoint before step 30 is mid-epoch
    settings = ["train.epochs=6", "train.checkpoint_every=5", "eval.every=100", "eval.pictures=0"]
    reference = tmp_path / "reference"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(reference), *settings, env=env)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    expected = losses(reference)
    assert len(expected) == 36

    killed = tmp_path / "killed"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(killed), *settings, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = killed / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 12:  # past the step-10 checkpoint
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    state = load_checkpoint(killed / "last.pt")
    assert 10 <= state["step"] < 30 and state["sampler"]["position"] > 0  # mid-epoch
    assert max(losses(killed)) < 36

    proc = tessera("pretrain", RECIPE, "--run-dir", str(killed), *settings, env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err
    resumed = losses(killed)
    assert sorted(resumed) == sorted(expected)
    for step in expected:
        assert abs(resumed[step] - expected[step]) <= 1e-6, (step, resumed[step], expected[step])


def test_resume_with_another_config_is_refused(tmp_path, env, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), "train.max_steps=2", env=env)
    assert proc.wait(timeout=240) == 0
    monkeypatch.setenv("TESSERA_CACHE", env["TESSERA_CACHE"])
    assert main(["pretrain", RECIPE, "--run-dir", str(run_dir), "train.max_steps=2", "model.depth=3"]) == 2
    assert "model.depth: 2 -> 3" in capsys.readouterr().err


def test_missing_videos_are_reported_before_training(tmp_path, capsys):
    listing = tmp_path / "train.csv"
    listing.write_text("".join(f"clips/missing_{i}.mp4 {i % 3}\n" for i in range(7)))
    code = main(["pretrain", RECIPE, "--run-dir", str(tmp_path / "run"), "data.synthetic=null", f"data.list={listing}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "7 of 7" in err and "missing_0.mp4" in err and str(listing) in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_cli_show_and_refusals(capsys):
    assert main(["show", "videomae-pretrain", "model.depth=6"]) == 0
    assert "depth: 6" in capsys.readouterr().out
    assert main(["show", "videomae-pretrain", "model.detph=6"]) == 2
    err = capsys.readouterr().err
    assert "model.detph" in err and "valid keys at model" in err and "depth" in err
    assert main(["list"]) == 0
    assert "videomae-pretrain-ucf101" in capsys.readouterr().out


def test_foreign_checkpoint_in_run_dir_is_refused(tmp_path, capsys, env, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("TESSERA_CACHE", env["TESSERA_CACHE"])
    assert main(["pretrain", RECIPE, "--run-dir", str(run_dir), "train.max_steps=1"]) == 2
    assert "last.pt: not a readable checkpoint" in capsys.readouterr().err
