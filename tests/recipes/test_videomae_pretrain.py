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


# 6 steps an epoch, a checkpoint every 5: every checkpoint before step 30 is mid-epoch
SETTINGS = ["train.epochs=6", "train.checkpoint_every=5", "eval.every=100", "eval.pictures=0"]


@pytest.fixture(scope="module")
def reference_losses(tmp_path_factory, env) -> dict[int, float]:
    """An uninterrupted single-process run of 36 steps, batch 8."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), *SETTINGS, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    expected = losses(run_dir)
    assert sorted(expected) == list(range(1, 37))
    return expected


def wait_for_steps(proc: subprocess.Popen, run_dir: Path, steps: int) -> None:
    deadline = time.monotonic() + 240
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= steps:
            return
        time.sleep(0.005)
    raise AssertionError(f"the run ended or stalled before step {steps}: {proc.stderr.read() if proc.stderr else ''}")


def assert_same_losses(run_dir: Path, expected: dict[int, float], tolerance: float = 1e-6) -> None:
    got = losses(run_dir)
    assert sorted(got) == sorted(expected)
    for step in expected:
        assert abs(got[step] - expected[step]) <= tolerance, (step, got[step], expected[step])


def resume_to_the_end(run_dir: Path, env: dict[str, str]) -> str:
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), *SETTINGS, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err
    return err


def test_sigkill_mid_epoch_then_resume_gives_the_same_losses(tmp_path, env, reference_losses):
    killed = tmp_path / "killed"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(killed), *SETTINGS, env=env)
    wait_for_steps(proc, killed, 12)  # past the step-10 checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(killed / "last.pt")
    assert 10 <= state["step"] < 30 and state["sampler"]["position"] > 0  # mid-epoch
    assert max(losses(killed)) < 36
    resume_to_the_end(killed, env)
    assert_same_losses(killed, reference_losses)


def test_sigterm_writes_a_checkpoint_at_the_current_step_and_resumes(tmp_path, env, reference_losses):
    run_dir = tmp_path / "preempted"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), *SETTINGS, env=env)
    wait_for_steps(proc, run_dir, 8)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM at step" in err and "Traceback" not in err
    stopped_at = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert load_checkpoint(run_dir / "last.pt")["step"] == stopped_at == max(losses(run_dir))
    resume_to_the_end(run_dir, env)
    assert_same_losses(run_dir, reference_losses)


def torchrun(*args: str, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "tessera", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ddp_two_processes_match_one_process_and_resume(tmp_path, env, reference_losses):
    run_dir = tmp_path / "ddp"
    half_batch = ["data.batch_size=4", *SETTINGS]  # 2 ranks x 4 = the reference's global batch of 8
    proc = torchrun("pretrain", RECIPE, "--run-dir", str(run_dir), *half_batch, "train.max_steps=14", env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "on 2 processes" in err
    assert load_checkpoint(run_dir / "last.pt")["step"] == 14
    proc = torchrun("pretrain", RECIPE, "--run-dir", str(run_dir), *half_batch, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err
    assert_same_losses(run_dir, reference_losses, tolerance=1e-4)


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


def test_crop_on_device_computes_the_same_run(tmp_path, env):
    """The accelerator-side crop is the workers' crop moved: the same losses, step for step."""
    runs = {}
    for where in ("worker", "device"):
        run_dir = tmp_path / where
        proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), "train.max_steps=4", "eval.pictures=1",
                       f"data.crop_on={where}", env=env)
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        runs[where] = losses(run_dir)
    assert runs["worker"] == runs["device"]


def test_fsdp_two_processes_match_one_process_and_resume(tmp_path, env, reference_losses):
    run_dir = tmp_path / "fsdp"
    settings = ["data.batch_size=4", "train.strategy=fsdp", *SETTINGS]
    proc = torchrun("pretrain", RECIPE, "--run-dir", str(run_dir), *settings, "train.max_steps=14", env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] == 14 and "encoder.blocks.0.attn.qkv.weight" in state["model"]  # full, unsharded names
    assert state["model"]["encoder.blocks.0.attn.qkv.weight"].shape == (192, 64)
    proc = torchrun("pretrain", RECIPE, "--run-dir", str(run_dir), *settings, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert_same_losses(run_dir, reference_losses, tolerance=1e-4)


def broken_list(folder: Path) -> Path:
    """8 good clips and 4 broken files: empty, a directory, text named .mp4, a truncated mp4."""
    from tessera.data.synthetic import write_synthetic_videos

    good = write_synthetic_videos(folder / "good", 8, frames=24, seed=3)
    lines = [f"good/{line}" for line in good.read_text().splitlines()]
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "folder.mp4").mkdir()
    (folder / "notes.mp4").write_text("not a video")
    first = folder / "good" / lines[0].split()[0][len("good/"):]
    (folder / "cut [1].mp4").write_bytes(first.read_bytes()[:2000])
    lines += ["empty.mp4 0", "folder.mp4 0", "notes.mp4 0", "cut [1].mp4 0"]
    listing = folder / "train.csv"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def test_broken_files_are_replaced_counted_and_logged(tmp_path, env):
    listing = broken_list(tmp_path / "data")
    source = ["data.synthetic=null", f"data.list={listing}", "data.batch_size=4", "eval.pictures=1"]
    run_dir = tmp_path / "run"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(run_dir), *source, "data.max_bad_fraction=0.5",
                   "train.epochs=3", env=env)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    logged = [json.loads(line) for line in (run_dir / "bad_samples.jsonl").read_text().splitlines()]
    assert sorted({Path(r["path"]).name for r in logged}) == ["cut [1].mp4", "empty.mp4", "folder.mp4", "notes.mp4"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    assert train[-1]["step"] == 9 and train[-1]["bad_samples"] >= 12  # every bad file, every epoch

    strict = tmp_path / "strict"
    proc = tessera("pretrain", RECIPE, "--run-dir", str(strict), *source, "data.max_bad_fraction=0.01", env=env)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err
    assert "data.max_bad_fraction=0.01" in err and "bad_samples.jsonl" in err and "Traceback" not in err
