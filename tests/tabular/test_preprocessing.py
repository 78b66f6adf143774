"""Column kinds, preprocessing fitted on the training rows only, and its round trip through a checkpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tessera.modalities.tabular.preprocessing import TablePreprocessing, fit_preprocessing
from tessera.modalities.tabular.reading import table_fingerprint
from tessera.train.checkpoint import load_checkpoint, save_checkpoint


def fit(frame, config, **settings) -> TablePreprocessing:
    return fit_preprocessing(frame, config(**settings), "t.csv", table_fingerprint(frame))


def test_column_kinds_by_dtype_and_max_categories(frame, config):
    prep = fit(frame, config, target="label")
    assert [c.name for c in prep.numerical] == ["x", "y"]
    assert [c.name for c in prep.categorical] == ["code", "color"]  # 3 integer values <= 20; text
    assert prep.target.task == "classification" and prep.target.classes == ["0", "1"]
    prep = fit(frame, config, target="label", max_categories=2, columns={"color": "categorical", "y": "categorical"})
    assert [c.name for c in prep.numerical] == ["x", "code"] and prep.feature_names[-2:] == ["y", "color"]
    assert fit(frame, config, target="x").target.task == "regression"


def test_scaling_and_categories_are_fitted_on_training_rows_only(config):
    frame = pd.DataFrame({"a": np.arange(10, dtype=float) + 0.5, "b": list("ppppppppqr"), "c": np.linspace(0, 1, 10)})
    part = ["train"] * 8 + ["val", "test"]
    frame["part"] = part
    prep = fit(frame, config, split={"column": "part"})
    a = prep.numerical[0]
    assert (a.low, a.high) == (0.5, 7.5)  # not 9.5: rows 8 and 9 are val / test
    assert prep.categorical[0].categories == ["p"]  # q and r appear in val / test only
    tensors = prep.transform(frame, "t.csv")
    assert torch.allclose(tensors.num[:, 0], torch.tensor((frame["a"].to_numpy() - 0.5) / 7.0, dtype=torch.float32))
    assert tensors.num[9, 0] > 1  # outside [0, 1], not clipped
    assert tensors.cat[:, 0].tolist() == [0] * 8 + [1, 1]  # q, r -> the unseen bucket
    assert tensors.unseen == {"b": 2}


def test_seeded_split_fractions(frame, config):
    prep = fit(frame, config, split={"fractions": [0.6, 0.2, 0.2], "seed": 3})
    counts = [int((prep.split == i).sum()) for i in range(3)]
    assert counts == [12, 4, 4]
    assert torch.equal(prep.split, fit(frame, config, split={"fractions": [0.6, 0.2, 0.2], "seed": 3}).split)
    assert not torch.equal(prep.split, fit(frame, config, split={"fractions": [0.6, 0.2, 0.2], "seed": 4}).split)
    assert sorted(torch.cat([prep.rows(s) for s in ("train", "val", "test")]).tolist()) == list(range(20))


def test_state_survives_a_weights_only_checkpoint(frame, config, tmp_path):
    frame.loc[3, "x"] = np.nan
    prep = fit(frame, config, target="y")
    path = save_checkpoint(tmp_path / "c.pt", {"model": {"_extra_state": {"metadata": {"table": prep.to_state()}}},
                                              "step": 0, "config": {}})
    restored = TablePreprocessing.from_state(load_checkpoint(path)["model"]["_extra_state"]["metadata"]["table"])
    assert restored.feature_names == prep.feature_names and restored.fingerprint == prep.fingerprint
    assert restored.target == prep.target and torch.equal(restored.split, prep.split)
    a, b = prep.transform(frame, "t"), restored.transform(frame, "t")
    for name in ("num", "cat", "missing", "target"):
        assert torch.equal(getattr(a, name).nan_to_num(), getattr(b, name).nan_to_num()), name
    train = prep.rows("train")
    assert abs(float(a.target[train].mean())) < 1e-6  # standardised with the training rows' mean and std


def test_integer_column_with_gaps_reads_as_categorical_codes(config, tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("n,m\n1,0.5\n2,1.5\n,2.5\n1,3.5\n")  # pandas reads n as float (1.0, 2.0, NaN)
    frame = pd.read_csv(path)
    prep = fit(frame, config, split={"fractions": [1.0, 0.0, 0.0]})
    assert prep.categorical[0].categories == ["1", "2"]  # not "1.0", "2.0"
    tensors = prep.transform(frame, "gaps.csv")
    assert tensors.cat[:, 0].tolist() == [0, 1, 2, 0] and tensors.missing[2, 1]
