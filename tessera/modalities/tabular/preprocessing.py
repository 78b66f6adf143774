"""The preprocessing of a table, fitted on the training rows only (column kinds: columns.py).

`fit_preprocessing` decides each column's kind, fits min-max ranges and category lists on the
training rows, and assigns every row to train / val / test. The result travels in checkpoints as
plain lists, numbers and one tensor (`to_state`), so `tessera embed` and `tessera finetune` turn a
table into the same tensors the encoder was trained on.

Deviation from T-JEPA (jose-melo/t-jepa src/utils/encode_utils.py `encode_data`): the reference fits
its MinMaxScaler on the whole table before any split, so validation and test rows shape the scaling;
here min and max come from the training rows only, and other rows may fall outside [0, 1] (not clipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tessera.modalities.tabular.config import TabularDataConfig
from tessera.modalities.tabular.columns import (
    TargetSpec, _row, as_text, column_kind, numbers, split_codes, target_spec,
)
from tessera.modalities.tabular.reading import TableError

SPLITS = ("train", "val", "test")
STATE_VERSION = 1


@dataclass
class NumericalColumn:
    name: str
    low: float  # min over the training rows
    high: float  # max over the training rows

    def scale(self, values: np.ndarray) -> np.ndarray:
        span = self.high - self.low
        return (values - self.low) / (span if span > 0 else 1.0)


@dataclass
class CategoricalColumn:
    name: str
    categories: list[str]  # the training rows' values as text, sorted; code len(categories) = unseen


@dataclass
class TableTensors:
    """One table as the batch contract's tensors (every row, in file order)."""

    num: Tensor  # (N, Dn) float32, min-max scaled, 0 where missing
    cat: Tensor  # (N, Dc) long codes, the unseen bucket where missing or unseen
    missing: Tensor  # (N, Dn + Dc) bool
    unseen: dict[str, int]  # categorical column -> cells whose value the training rows never had
    label: Tensor | None = None  # (N,) long class index, -1 where the target is missing
    target: Tensor | None = None  # (N, 1) float32 standardised, NaN where missing


@dataclass
class TablePreprocessing:
    numerical: list[NumericalColumn]
    categorical: list[CategoricalColumn]
    target: TargetSpec | None
    split: Tensor  # (N,) int8: 0 train, 1 val, 2 test, per row of the table it was fitted on
    fingerprint: str  # of that table (reading.table_fingerprint)
    source: str
    missing: str = "token"
    infinite: str = "refuse"
    notes: list[str] = field(default_factory=list)  # what fitting decided that a user should know

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.numerical] + [c.name for c in self.categorical]

    @property
    def cardinalities(self) -> list[int]:
        return [len(c.categories) for c in self.categorical]

    def rows(self, which: str) -> Tensor:
        """Row indices of a split: `train`, `val`, `test`, or `all`."""
        if which == "all":
            return torch.arange(len(self.split))
        return torch.nonzero(self.split == SPLITS.index(which)).flatten()

    # ---------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Plain lists, numbers, strings and one tensor: what `torch.load(weights_only=True)` accepts."""
        return {
            "version": STATE_VERSION,
            "numerical": [{"name": c.name, "low": float(c.low), "high": float(c.high)} for c in self.numerical],
            "categorical": [{"name": c.name, "categories": list(c.categories)} for c in self.categorical],
            "target": None if self.target is None else {
                "name": self.target.name, "task": self.target.task, "classes": list(self.target.classes),
                "mean": float(self.target.mean), "std": float(self.target.std),
            },
            "split": self.split.clone(),
            "fingerprint": self.fingerprint,
            "source": self.source,
            "missing": self.missing,
            "infinite": self.infinite,
            "notes": list(self.notes),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TablePreprocessing":
        if state.get("version") != STATE_VERSION:
            raise TableError(f"table preprocessing version {state.get('version')} is not supported")
        target = state["target"]
        return cls(
            numerical=[NumericalColumn(**c) for c in state["numerical"]],
            categorical=[CategoricalColumn(c["name"], list(c["categories"])) for c in state["categorical"]],
            target=None if target is None else TargetSpec(**target),
            split=state["split"], fingerprint=state["fingerprint"], source=state["source"],
            missing=state["missing"], infinite=state["infinite"], notes=list(state.get("notes", [])),
        )

    # ---------------------------------------------------------------------------------------------
    def transform(self, frame, source: str) -> TableTensors:
        """The feature tensors of `frame` (the fitted table or a new one with the same columns)."""
        absent = [name for name in self.feature_names if name not in frame.columns]
        if absent:
            raise TableError(
                f"{source}: lacks the feature column(s) {', '.join(map(repr, absent[:6]))} that the encoder was "
                f"trained on ({len(self.feature_names)} features from {self.source})"
            )
        n = len(frame)
        num = np.zeros((n, len(self.numerical)), dtype=np.float32)
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        missing = np.zeros((n, len(self.feature_names)), dtype=bool)
        unseen: dict[str, int] = {}
        for j, column in enumerate(self.numerical):
            values = numbers(frame[column.name], column.name, source)
            values = self._infinite(values, column.name, source)
            absent_cells = np.isnan(values)
            self._check_missing(absent_cells, column.name, source)
            num[:, j] = np.where(absent_cells, 0.0, column.scale(np.nan_to_num(values)))
            missing[:, j] = absent_cells
        offset = len(self.numerical)
        for j, column in enumerate(self.categorical):
            texts = as_text(frame[column.name])
            absent_cells = np.array([t is None for t in texts], dtype=bool)
            self._check_missing(absent_cells, column.name, source)
            lookup = {c: i for i, c in enumerate(column.categories)}
            bucket = len(column.categories)
            codes = np.array([lookup.get(t, bucket) if t is not None else bucket for t in texts], dtype=np.int64)
            count = int(((codes == bucket) & ~absent_cells).sum())
            if count:
                unseen[column.name] = count
            cat[:, j] = codes
            missing[:, offset + j] = absent_cells
        out = TableTensors(torch.from_numpy(num), torch.from_numpy(cat), torch.from_numpy(missing), unseen)
        if self.target is not None and self.target.name in frame.columns:
            self._targets(frame[self.target.name], source, out)
        return out

    def _infinite(self, values: np.ndarray, name: str, source: str) -> np.ndarray:
        infinite = np.isinf(values)
        if not infinite.any():
            return values
        if self.infinite == "missing":
            return np.where(infinite, np.nan, values)
        first = int(np.argmax(infinite))
        raise TableError(
            f"{source}: column {name!r} has {int(infinite.sum())} infinite value(s) (first at {_row(first)}): "
            f"replace them, or set data.infinite=missing to read them as missing cells"
        )

    def _check_missing(self, absent: np.ndarray, name: str, source: str) -> None:
        if self.missing == "refuse" and absent.any():
            first = int(np.argmax(absent))
            raise TableError(
                f"{source}: column {name!r} has {int(absent.sum())} missing cell(s) (first at {_row(first)}) and "
                f"data.missing=refuse: fill them, or set data.missing=token (a learned per-feature missing token)"
            )

    def _targets(self, series, source: str, out: TableTensors) -> None:
        spec = self.target
        if spec.task == "classification":
            lookup = {c: i for i, c in enumerate(spec.classes)}
            texts = as_text(series)
            new = sorted({t for t in texts if t is not None and t not in lookup})
            if new:
                raise TableError(
                    f"{source}: target column {spec.name!r} has classes the encoder's table did not have "
                    f"({', '.join(map(repr, new[:5]))}); known classes: {', '.join(map(repr, spec.classes[:10]))}"
                )
            out.label = torch.tensor([lookup[t] if t is not None else -1 for t in texts], dtype=torch.long)
        else:
            values = numbers(series, spec.name, source, what="target column")
            values = np.where(np.isinf(values), np.nan, values)
            out.target = torch.from_numpy(((values - spec.mean) / spec.std).astype(np.float32)).unsqueeze(1)

    def target_values(self, standardized: Tensor) -> Tensor:
        """Regression predictions back on the target's original scale."""
        return standardized * self.target.std + self.target.mean


# --------------------------------------------------------------------------------------------------
# Cell conversions shared by fitting and transforming.


def fit_preprocessing(frame, cfg: TabularDataConfig, source: str, fingerprint: str) -> TablePreprocessing:
    """Kinds, ranges and categories from the training rows; refuses what cannot be used, naming the fix."""
    for kind, names in (("data.drop", cfg.drop), ("data.columns", list(cfg.columns))):
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise TableError(f"{source}: {kind} names {', '.join(map(repr, unknown))}, not a column of the table; "
                             f"columns: {', '.join(map(repr, list(frame.columns)[:12]))}")
    split = split_codes(frame, cfg, source)
    train = split == 0
    target = target_spec(frame, cfg, train, source)
    skip = {cfg.target, cfg.split.column, *cfg.drop}
    features = [c for c in frame.columns if c not in skip]
    numerical: list[NumericalColumn] = []
    categorical: list[CategoricalColumn] = []
    notes: list[str] = []
    for name in features:
        series = frame[name]
        kind = column_kind(series, name, train, cfg, source)
        if kind == "numerical":
            values = numbers(series, name, source)
            fit = values[train & np.isfinite(values)]
            if fit.size == 0:
                raise TableError(f"{source}: column {name!r} has no values in the training rows; leave it out with "
                                 f"data.drop=[{name}]")
            low, high = float(fit.min()), float(fit.max())
            constant = low == high
            value = low
        else:
            texts = as_text(series)
            seen = sorted({t for t, keep in zip(texts, train) if keep and t is not None})
            if not seen:
                raise TableError(f"{source}: column {name!r} has no values in the training rows; leave it out with "
                                 f"data.drop=[{name}]")
            constant = len(seen) == 1
            value = seen[0]
        if constant:
            if cfg.constant == "refuse":
                raise TableError(f"{source}: column {name!r} is constant ({value!r}) over the training rows; leave it "
                                 f"out with data.drop=[{name}], or set data.constant=keep")
            if cfg.constant == "drop":
                notes.append(f"column {name!r} is constant ({value!r}) over the training rows: left out "
                             f"(data.constant=drop)")
                continue
            notes.append(f"column {name!r} is constant ({value!r}) over the training rows: kept, it carries no "
                         f"information (data.constant=drop leaves it out)")
        if kind == "numerical":
            numerical.append(NumericalColumn(name, low, high))
        else:
            categorical.append(CategoricalColumn(name, seen))
    if len(numerical) + len(categorical) < 2:
        raise TableError(
            f"{source}: {len(numerical) + len(categorical)} feature column(s) left "
            f"({', '.join(c.name for c in (*numerical, *categorical)) or 'none'}); T-JEPA needs at least 2 "
            f"(one to see, one to predict)"
        )
    return TablePreprocessing(numerical, categorical, target, torch.from_numpy(split.copy()), fingerprint, source,
                              missing=cfg.missing, infinite=cfg.infinite, notes=notes)


def describe(prep: TablePreprocessing) -> str:
    """One line for the console: what the table became."""
    split = prep.split
    counts = ", ".join(f"{int((split == i).sum())} {name}" for i, name in enumerate(SPLITS))
    target = "" if prep.target is None else (
        f"; target {prep.target.name!r} ({prep.target.task}"
        + (f", {len(prep.target.classes)} classes)" if prep.target.task == "classification" else ")")
    )
    return (f"{prep.source}: {len(split)} rows ({counts}); {len(prep.numerical)} numerical and "
            f"{len(prep.categorical)} categorical features{target}")

