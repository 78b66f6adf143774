"""Small tables written to disk, and the data config that reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.config import from_dict
from tessera.modalities.tabular.config import TabularDataConfig


def data_config(**settings) -> TabularDataConfig:
    return from_dict(TabularDataConfig, settings, "data")


@pytest.fixture
def config():
    """config(**settings) -> a validated TabularDataConfig."""
    return data_config


@pytest.fixture
def frame() -> pd.DataFrame:
    """20 rows: two numbers, an integer code, a text category, a label."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x": rng.normal(size=20),
        "y": np.arange(20) * 0.5 + 0.25,
        "code": rng.integers(0, 3, size=20),
        "color": rng.choice(["red", "green", "blue"], size=20),
        "label": rng.integers(0, 2, size=20),
    })


@pytest.fixture
def write(tmp_path):
    """write(frame, name) -> path of a CSV (or Parquet by suffix) in tmp_path."""

    def _write(frame: pd.DataFrame, name: str = "table.csv"):
        path = tmp_path / name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        return path

    return _write
