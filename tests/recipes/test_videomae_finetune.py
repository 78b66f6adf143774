"""VideoMAE fine-tuning, evaluation, probes and features through the CLI on generated .mp4 clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.cli import main
from tessera.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "TESSERA_CACHE": str(cache), "OMP_NUM_THREADS": "1"}


def tessera(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "tessera", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, env) -> Path:
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    tessera("pretrain", "videomae-pretrain-tiny", "--run-dir", str(run_dir), "train.max_steps=6", "eval.pictures=0",
            env=env)
    return run_dir / "last.pt"


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, env, pretrained) -> Path:
    run_dir = tmp_path_factory.mktemp("finetune") / "run"
    err = tessera("finetune", "videomae-finetune-tiny", "--init", str(pretrained), "--run-dir", str(run_dir), env=env)
    assert "loaded 29 tensors" in err and "missing (kept at their initial values): head.fc_norm.bias" in err
    assert "test: top-1" in err
    return run_dir


def test_finetune_keeps_the_best_validation_weights_and_tests_every_view(finetuned):
    records = [json.loads(line) for line in (finetuned / "metrics.jsonl").read_text().splitlines()]
    validations = [r["eval/val_top1"] for r in records if "eval/val_top1" in r]
    assert len(validations) == 4  # steps 6, 12, 18 and the last (21)
    best = load_checkpoint(finetuned / "best.pt")
    assert best["val_top1"] == max(validations)
    report = json.loads((finetuned / "test_scores.json").read_text())
    assert report["metrics"]["videos"] == 12 and report["metrics"]["views"] == 48  # 2 clips x 2 crops
    assert len(report["videos"]) == 12 and all(len(v["top5"]) == 5 for v in report["videos"])


def test_eval_reproduces_the_test_of_the_finetune_run(finetuned, env, tmp_path):
    out = tmp_path / "scores.json"
    err = tessera("eval", "videomae-finetune-tiny", "--ckpt", str(finetuned / "best.pt"), "--out", str(out), env=env)
    assert "test: top-1" in err
    assert json.loads(out.read_text())["metrics"] == json.loads((finetuned / "test_scores.json").read_text())["metrics"]


def test_probes_and_features_of_a_pretraining_checkpoint(pretrained, env, tmp_path, capsys, monkeypatch):
    for probe in ("knn", "linear"):
        out = tmp_path / f"{probe}.json"
        tessera("eval", "videomae-finetune-tiny", "--ckpt", str(pretrained), "--probe", probe, "--out", str(out),
                env=env)
        metrics = json.loads(out.read_text())["metrics"]
        assert 0 <= metrics["top1"] <= 1 and metrics["videos"] == 12
    tessera("embed", "videomae-finetune-tiny", "--ckpt", str(pretrained), "--out", str(tmp_path / "f.npy"), env=env)
    import numpy as np

    features = np.load(tmp_path / "f.npy")
    meta = json.loads((tmp_path / "f.json").read_text())
    assert features.shape == (48, 64) and len(meta["paths"]) == 48 and set(meta["splits"]) == {"train", "val", "test"}
    monkeypatch.setenv("TESSERA_CACHE", env["TESSERA_CACHE"])
    assert main(["eval", "videomae-finetune-tiny", "--ckpt", str(pretrained)]) == 2
    assert "no trained classification head" in capsys.readouterr().err


def test_missing_videos_in_a_split_are_refused_before_training(tmp_path, capsys):
    listing = tmp_path / "train.csv"
    listing.write_text("".join(f"v{i}.mp4 {i % 2}\n" for i in range(9)))
    code = main(["finetune", "videomae-finetune-tiny", "--run-dir", str(tmp_path / "run"), "data.synthetic=null",
                 f"data.list={listing}"])
    assert code == 2 and "9 of 9 files named in the training split" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["videomae-finetune-ssv2-tiny", "videomae-finetune-ucf101-tiny",
                                    "videomae-finetune-hmdb51-tiny"])
def test_each_tiny_variant_fine_tunes_and_tests(recipe, tmp_path, env):
    err = tessera("finetune", recipe, "--run-dir", str(tmp_path / "run"), "train.max_steps=2", env=env)
    assert "test: top-1" in err


def write_official_trees(folder: Path) -> tuple[Path, Path, Path]:
    """Generated clips laid out as UCF101 (classInd.txt, trainlist01/testlist01 with CRLF, .avi names)
    and HMDB51 (<class>_test_split1.txt) would ship them, with spaces and non-ASCII in the names."""
    from tessera.data.synthetic import write_synthetic_videos

    listing = write_synthetic_videos(folder / "generated", 24, frames=24, seed=5)
    classes = (listing.parent / "classes.txt").read_text().split()
    videos = folder / "videos"
    rows = []
    for line in listing.read_text().splitlines():
        path, label = line.rsplit(" ", 1)
        name = classes[int(label)]
        target = videos / name / f"v {Path(path).stem} é.avi"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((listing.parent / path).read_bytes())
        rows.append((name, target.name, int(label)))
    ucf = folder / "ucfTrainTestlist"
    ucf.mkdir()
    (ucf / "classInd.txt").write_bytes("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)).encode())
    train = [r for i, r in enumerate(rows) if i % 4]
    test = [r for i, r in enumerate(rows) if not i % 4]
    (ucf / "trainlist01.txt").write_bytes("".join(f"{c}/{n} {y + 1}\r\n" for c, n, y in train).encode())
    (ucf / "testlist01.txt").write_bytes("".join(f"{c}/{n}\r\n" for c, n, _ in test).encode())
    hmdb = folder / "testTrainMulti_7030_splits"
    hmdb.mkdir()
    for name in classes:
        lines = [f"{n} {1 if (c, n, y) in train else 2}\n" for c, n, y in rows if c == name]
        (hmdb / f"{name}_test_split1.txt").write_text("".join(lines))
    return videos, ucf, hmdb


def test_official_ucf101_and_hmdb51_layouts_through_the_cli(tmp_path, env):
    videos, ucf, hmdb = write_official_trees(tmp_path)
    for recipe, lists in (("videomae-finetune-ucf101-tiny", ucf), ("videomae-finetune-hmdb51-tiny", hmdb)):
        fmt = "ucf101" if "ucf" in recipe else "hmdb51"
        run_dir = tmp_path / fmt
        err = tessera("finetune", recipe, "--run-dir", str(run_dir), "data.synthetic=null", f"data.format={fmt}",
                      f"data.list={lists}", f"data.root={videos}", "train.max_steps=2", env=env)
        report = json.loads((run_dir / "test_scores.json").read_text())
        assert report["metrics"]["videos"] == 6, err
        assert all(v["path"].endswith(" é.avi") for v in report["videos"])
