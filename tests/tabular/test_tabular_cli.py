"""The tabular recipes end to end through the CLI: pretrain (CSV and Parquet), exact resume, finetune, embed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tessera.cli import main
from tessera.train.checkpoint import load_checkpoint

TINY = "tjepa-pretrain-tiny"
QUIET = ["train.progress=false"]


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path_factory.getbasetemp() / "tessera-cache"))


def losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """tjepa-pretrain-tiny for 2 epochs (16 steps), health monitors at steps 8 and 16."""
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    cache = tmp_path_factory.getbasetemp() / "tessera-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_CACHE", str(cache))
        assert main(["pretrain", TINY, "--run-dir", str(run_dir), "train.epochs=2", *QUIET]) == 0
    return run_dir


def test_pretraining_writes_a_checkpoint_with_the_table_and_health_metrics(pretrained):
    state = load_checkpoint(pretrained / "last.pt")  # weights_only, preprocessing included
    assert state["step"] == 16 and sorted(losses(pretrained)) == list(range(1, 17))
    table = state["model"]["_extra_state"]["metadata"]["table"]
    assert [c["name"] for c in table["numerical"]] == [f"num_{i}" for i in range(6)]
    assert [c["name"] for c in table["categorical"]] == ["cat_0", "cat_1", "cat_2"]
    assert table["split"].shape == (640,) and table["target"]["name"] == "label"
    assert any(k.startswith("target_encoder.tokenizer.") for k in state["model"])
    assert any(k.startswith("predictor.") for k in state["model"])
    records = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    health = [r for r in records if "eval/rankme" in r]
    assert [r["step"] for r in health] == [8, 16]
    assert all(1 < r["eval/rankme"] <= 256 and r["eval/collapsed"] == 0.0 for r in health)
    assert all(r["eval/rankme_centered"] > 1 and r["eval/relative_variance"] > 1e-4 for r in health)
    first, last = np.mean(list(losses(pretrained).values())[:4]), np.mean(list(losses(pretrained).values())[-4:])
    assert last < first


def test_stop_and_resume_reproduces_the_losses(tmp_path, pretrained):
    run_dir = tmp_path / "resumed"
    settings = ["train.epochs=2", *QUIET]
    assert main(["pretrain", TINY, "--run-dir", str(run_dir), "train.max_steps=5", *settings]) == 0
    assert load_checkpoint(run_dir / "last.pt")["sampler"]["position"] > 0  # mid-epoch (8 steps an epoch)
    assert main(["pretrain", TINY, "--run-dir", str(run_dir), *settings]) == 0
    assert losses(run_dir) == losses(pretrained)  # bit for bit
    a, b = load_checkpoint(run_dir / "last.pt")["model"], load_checkpoint(pretrained / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k]))  # teacher included


def test_finetune_classification_and_regression(tmp_path, pretrained, capsys):
    short = ["train.epochs=6", "objective.patience=3"]
    out = tmp_path / "cls"
    assert main(["finetune", "tjepa-finetune-classification-tiny", "--init", str(pretrained / "last.pt"),
                 "--run-dir", str(out), *short]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["rows"] == {"train": 512, "val": 64, "test": 64}  # the pretraining split, reused
    assert list(results["models"]) == ["tjepa", "tjepa_finetune", "mlp", "gbdt"]
    for entry in results["models"].values():
        assert set(entry["mean"]) == {"accuracy", "auc", "macro_f1"} and 0 <= entry["mean"]["accuracy"] <= 1
    assert results["models"]["gbdt"]["mean"]["auc"] > 0.75  # the table's label is learnable
    captured = capsys.readouterr()
    assert "| tjepa |" in captured.out and "its split is reused" in captured.err
    out = tmp_path / "reg"
    assert main(["finetune", "tjepa-finetune-regression-tiny", "--init", str(pretrained / "last.pt"),
                 "--run-dir", str(out), "objective.models=[tjepa,gbdt]", *short]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "regression" and set(results["models"]["tjepa"]["mean"]) == {"rmse", "r2"}
    assert results["models"]["gbdt"]["mean"]["r2"] > 0.3


def test_embed_reproduces_the_preprocessing(tmp_path, pretrained, capsys):
    state = load_checkpoint(pretrained / "last.pt")
    table = Path(state["model"]["_extra_state"]["metadata"]["table"]["source"])
    assert main(["embed", TINY, "--ckpt", str(pretrained / "last.pt"), "--out", str(tmp_path / "e.npy")]) == 0
    embeddings = np.load(tmp_path / "e.npy")
    assert embeddings.shape == (640, 1 + 9, 16)
    assert main(["embed", TINY, "--ckpt", str(pretrained / "last.pt"), "--out", str(tmp_path / "e.pt")]) == 0
    saved = torch.load(tmp_path / "e.pt", weights_only=True)
    assert np.allclose(saved["embeddings"].numpy(), embeddings)
    assert saved["tokens"][:2] == ["reg_0", "num_0"] and saved["split"].shape == (640,)
    # a new table: an unseen category goes to the bucket (with a note), extra columns are named, not used
    frame = pd.read_csv(table).head(5)
    frame.loc[0, "cat_0"] = "never-seen"
    new = tmp_path / "new.csv"
    frame.to_csv(new, index=False)
    capsys.readouterr()
    assert main(["embed", TINY, "--ckpt", str(pretrained / "last.pt"), "--out", str(tmp_path / "n.npy"),
                 f"data.path={new}", "data.synthetic=null"]) == 0
    err = capsys.readouterr().err
    assert "column 'cat_0': 1 cell(s) hold categories the training rows never had" in err
    assert "'label', 'value' are not features of the encoder" in err
    assert np.allclose(np.load(tmp_path / "n.npy")[1:], embeddings[:5][1:], atol=1e-5)


def test_parquet_table_pretrains(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["pretrain", TINY, "--run-dir", str(run_dir), "data.synthetic.format=parquet", "train.max_steps=2",
                 "eval.every=1000", *QUIET]) == 0
    source = load_checkpoint(run_dir / "last.pt")["model"]["_extra_state"]["metadata"]["table"]["source"]
    assert source.endswith("table.parquet")


def test_user_errors_are_one_line(tmp_path, pretrained, capsys):
    assert main(["pretrain", TINY, "--run-dir", str(tmp_path / "a"), "data.target=price"]) == 2
    err = capsys.readouterr().err
    assert "no target column 'price'" in err and "Traceback" not in err
    assert main(["finetune", "tjepa-finetune-classification-tiny", "--run-dir", str(tmp_path / "b")]) == 2
    assert "needs --init CKPT" in capsys.readouterr().err
    assert main(["finetune", "tjepa-finetune-classification-tiny", "--init", str(pretrained / "last.pt"),
                 "--run-dir", str(tmp_path / "c"), "data.target=num_0"]) == 2
    assert "pretrained with 'num_0' as a feature" in capsys.readouterr().err
    assert main(["embed", TINY, "--ckpt", str(pretrained / "last.pt"), "--out", str(tmp_path / "e.csv")]) == 2
    assert "a .npy or a .pt file" in capsys.readouterr().err


def test_resume_refuses_a_changed_table(tmp_path, capsys):
    path = tmp_path / "t.csv"
    from tessera.data.synthetic_tables import make_table

    make_table(200, 3, 1, seed=1).to_csv(path, index=False)
    settings = [f"data.path={path}", "data.synthetic=null", "train.max_steps=2", "eval.every=1000", *QUIET]
    assert main(["pretrain", TINY, "--run-dir", str(tmp_path / "run"), *settings]) == 0
    make_table(200, 3, 1, seed=2).to_csv(path, index=False)
    assert main(["pretrain", TINY, "--run-dir", str(tmp_path / "run"), *settings[:-3], "train.max_steps=3",
                 *settings[-2:]]) == 2
    assert "changed since" in capsys.readouterr().err


def test_finetune_on_another_table_with_the_same_columns(tmp_path, pretrained, capsys):
    from tessera.data.synthetic_tables import make_table

    path = tmp_path / "other.csv"
    make_table(300, 6, 3, missing=0.02, seed=5).to_csv(path, index=False)
    out = tmp_path / "ft"
    assert main(["finetune", "tjepa-finetune-classification-tiny", "--init", str(pretrained / "last.pt"),
                 "--run-dir", str(out), f"data.path={path}", "data.synthetic=null", "objective.models=[tjepa,gbdt]",
                 "data.split.fractions=[0.6,0.2,0.2]", "train.epochs=3"]) == 0
    assert "not the table" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["rows"] == {"train": 180, "val": 60, "test": 60}


def test_pretraining_rows_are_the_training_rows_unless_all(tmp_path):
    from tessera.recipes import load_recipe
    from tessera.recipes.tabular import setup_tjepa

    for rows, expected in (("train", 512), ("all", 640)):
        cfg = load_recipe(TINY, [f"data.pretrain_rows={rows}"])
        setup = setup_tjepa(cfg, torch.device("cpu"), tmp_path / rows)
        assert len(setup.dataset) == expected
    train = set(setup.objective.metadata["table"]["split"].eq(0).nonzero().flatten().tolist())
    cfg = load_recipe(TINY, [])
    assert set(setup_tjepa(cfg, torch.device("cpu"), tmp_path / "x").dataset.rows.tolist()) == train


def test_sigkill_mid_run_then_resume_gives_the_same_losses(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    settings = ["train.epochs=40", "train.checkpoint_every=7", "eval.every=1000", *QUIET]  # 320 steps, 8 an epoch
    reference = tmp_path / "reference"
    assert main(["pretrain", TINY, "--run-dir", str(reference), *settings]) == 0
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tessera", "pretrain", TINY, "--run-dir", str(killed), *settings]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics, deadline = killed / "metrics.jsonl", time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 30:
            break
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    state = load_checkpoint(killed / "last.pt")
    assert state["step"] % 7 == 0 and max(losses(killed)) < 320  # killed mid-run, after a checkpoint
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "resuming" in done.stderr, done.stderr
    assert losses(killed) == losses(reference)
