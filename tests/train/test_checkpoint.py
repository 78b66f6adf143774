"""Atomic checkpoints read with weights_only=True, and refusals of files that are not ours."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tessera.train import checkpoint as ckpt
from tessera.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tessera.train.rng import capture_rng, restore_rng


def state(step: int) -> dict:
    return {"model": {"w": torch.full((3,), float(step))}, "step": step, "config": {"name": "x", "list": [1, 2]}}


def test_round_trip_with_weights_only(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {**state(3), "rng": capture_rng()})
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and torch.equal(loaded["model"]["w"], torch.full((3,), 3.0))
    assert loaded["config"] == {"name": "x", "list": [1, 2]}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, state(1))
    real_save = torch.save

    def torn_save(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 partial")  # a crash half way through the write
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, state(2))
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_truncated_file_is_refused_with_path_and_reason(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", state(1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_files_are_refused(tmp_path):
    plain = tmp_path / "weights.pth"
    torch.save({"model": {"w": torch.zeros(1)}}, plain)  # e.g. a reference release
    with pytest.raises(CheckpointError, match="not a Tessera checkpoint"):
        load_checkpoint(plain)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_pickled_objects_are_refused(tmp_path):
    from fractions import Fraction  # any class outside weights_only's allow-list (a Path, numpy, a user class)

    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION, "model": Fraction(1, 3), "step": 0, "config": {}}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_rng_capture_restores_every_generator(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    path = save_checkpoint(tmp_path / "rng.pt", {**state(0), "rng": capture_rng()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
