"""What each column of a table is: numerical or categorical, the split, the target.

Decided from the training rows only, with a clear refusal naming the column for what cannot be used
(text in a numerical column, dates, an unknown split value, a target with one class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tessera.modalities.tabular.config import TabularDataConfig
from tessera.modalities.tabular.reading import TableError

_SPLIT_ALIASES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def _row(i: int) -> str:
    return f"data row {i + 1}"


@dataclass
class TargetSpec:
    name: str
    task: str  # classification | regression
    classes: list[str] = field(default_factory=list)  # classification: label i is classes[i]
    mean: float = 0.0  # regression: standardisation fitted on the training rows
    std: float = 1.0


def numbers(series, name: str, source: str, what: str = "column") -> np.ndarray:
    """float64 values, NaN where missing; a cell of text in a numerical column is refused."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(series.dtype):
        return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()
    parsed = pd.to_numeric(series, errors="coerce")
    text = series.notna() & parsed.isna()
    if text.any():
        first = int(np.argmax(text.to_numpy()))
        raise TableError(
            f"{source}: {what} {name!r} is numerical but has text (e.g. {series.iloc[first]!r} at {_row(first)}): "
            f"if that text marks a missing value add it to data.na_values, if the column is categorical set "
            f"data.columns.{name}=categorical"
        )
    return parsed.astype("float64").to_numpy()


def _text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))  # 3.0 (an integer column with gaps, read as float) and 3 are one category
    return str(value)


def as_text(series) -> list[str | None]:
    """Each cell as the text that names its category; None where missing."""
    absent = series.isna().to_numpy()
    return [None if gone else _text(v) for v, gone in zip(series.tolist(), absent)]


# --------------------------------------------------------------------------------------------------
# Fitting.


def split_codes(frame, cfg: TabularDataConfig, source: str) -> np.ndarray:
    """0 train / 1 val / 2 test for every row: from the split column, or shuffled by the seed."""
    n = len(frame)
    split = cfg.split
    if split.column is not None:
        if split.column not in frame.columns:
            raise TableError(f"{source}: the split column {split.column!r} is not in the table; columns: "
                             f"{', '.join(map(str, list(frame.columns)[:12]))}")
        texts = [t.strip().lower() if t is not None else None for t in as_text(frame[split.column])]
        bad = sorted({str(t) for t in texts if t not in _SPLIT_ALIASES})
        if bad:
            raise TableError(f"{source}: split column {split.column!r} has value(s) {', '.join(map(repr, bad[:5]))}; "
                             f"each row must say train, val or test")
        codes = np.array([_SPLIT_ALIASES[t] for t in texts], dtype=np.int8)
    else:
        order = np.random.default_rng(split.seed).permutation(n)
        n_test, n_val = round(n * split.fractions[2]), round(n * split.fractions[1])
        codes = np.zeros(n, dtype=np.int8)
        codes[order[:n_test]] = 2
        codes[order[n_test:n_test + n_val]] = 1
    if not (codes == 0).any():
        raise TableError(f"{source}: no training rows in the split ({n} rows); give the train share more rows")
    return codes


def _is_integral(values: np.ndarray) -> bool:
    present = values[~np.isnan(values)]
    return bool(present.size) and bool(np.all(np.isfinite(present))) and bool(np.all(present == np.round(present)))


def column_kind(series, name: str, train: np.ndarray, cfg: TabularDataConfig, source: str) -> str:
    """categorical or numerical, by dtype and, for integers, by the number of values in the training rows."""
    import pandas as pd

    if name in cfg.columns:
        return cfg.columns[name]
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise TableError(f"{source}: column {name!r} holds dates or times; turn them into numbers (e.g. days since "
                         f"a fixed day) or leave the column out with data.drop=[{name}]")
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if not pd.api.types.is_numeric_dtype(dtype):
        present = series.dropna()
        parsed = pd.to_numeric(present, errors="coerce")
        if parsed.notna().all():  # digits stored as text (e.g. a string column of a Parquet file)
            values = parsed.astype("float64").to_numpy()
        elif parsed.notna().any():
            number_at = int(np.argmax(parsed.notna().to_numpy()))
            text_at = int(np.argmax(parsed.isna().to_numpy()))
            raise TableError(
                f"{source}: column {name!r} mixes numbers (e.g. {present.iloc[number_at]!r}) and text (e.g. "
                f"{present.iloc[text_at]!r}): if the text marks missing values add it to data.na_values; if the "
                f"column is categorical set data.columns.{name}=categorical; otherwise clean the column"
            )
        else:
            return "categorical"
    else:
        values = numbers(series, name, source)
    if _is_integral(values) and len(np.unique(values[train & ~np.isnan(values)])) <= cfg.max_categories:
        return "categorical"
    return "numerical"


def target_spec(frame, cfg: TabularDataConfig, train: np.ndarray, source: str) -> TargetSpec | None:
    import pandas as pd

    name = cfg.target
    if name is None:
        return None
    if name not in frame.columns:
        raise TableError(f"{source}: no target column {name!r}; the columns are: "
                         f"{', '.join(map(repr, list(frame.columns)[:20]))}{' ...' if frame.shape[1] > 20 else ''}")
    series = frame[name]
    task = cfg.task
    if task == "auto":
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
        if not numeric:
            task = "classification"
        else:
            values = numbers(series, name, source, what="target column")
            distinct = len(np.unique(values[~np.isnan(values)]))
            task = "classification" if _is_integral(values) and distinct <= cfg.max_categories else "regression"
    if task == "classification":
        texts = {t for t in as_text(series) if t is not None}

        def order(text: str):
            try:
                return (0, float(text), text)
            except ValueError:
                return (1, 0.0, text)

        classes = sorted(texts, key=order)
        if len(classes) < 2:
            raise TableError(f"{source}: target column {name!r} has {len(classes)} class(es); "
                             f"classification needs 2 or more")
        return TargetSpec(name, "classification", classes=classes)
    values = numbers(series, name, source, what="target column")
    fit = values[train & np.isfinite(values)]
    if fit.size == 0:
        raise TableError(f"{source}: target column {name!r} has no values in the training rows")
    std = float(fit.std())
    return TargetSpec(name, "regression", mean=float(fit.mean()), std=std if std > 0 else 1.0)
