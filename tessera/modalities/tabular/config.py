"""The `data` section for tables (`data.modality: tabular`). Plain dataclasses: no torch at import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tessera.config import ConfigError

ColumnKind = Literal["numerical", "categorical"]


@dataclass
class SplitConfig:
    """Which rows train, select (val) and score (test). Stored in the checkpoint; fine-tuning reuses it.

    `column` names a column holding `train`, `val` or `test` per row; otherwise rows are shuffled with
    `seed` and cut by `fractions` (train, val, test).
    """

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    column: str | None = None

    def check(self) -> None:
        if min(self.fractions) < 0 or abs(sum(self.fractions) - 1) > 1e-6 or self.fractions[0] <= 0:
            raise ConfigError(
                f"data.split.fractions must be 3 shares (train, val, test) summing to 1 with train > 0, "
                f"got {list(self.fractions)}"
            )


@dataclass
class SyntheticTableConfig:
    """A generated table (tessera/data/synthetic_tables.py), written on first use when no path is given."""

    rows: int = 2000
    numerical: int = 8
    categorical: int = 4
    missing: float = 0.0  # share of feature cells left empty
    format: Literal["csv", "parquet"] = "csv"
    seed: int = 0
    dir: str | None = None  # null: a cache folder keyed by these settings ($TESSERA_CACHE or ~/.cache/tessera)


@dataclass
class TabularDataConfig:
    """A CSV or Parquet table, how its columns are read, and how rows are split.

    Column kinds are inferred: text, booleans and categories are categorical; integers with at most
    `max_categories` distinct values in the training rows are categorical; other numbers are numerical.
    `columns` overrides the inference per column. The target, the split column and `drop` are never
    features. Everything fitted (min-max ranges, category lists) is fitted on the training rows only.
    """

    modality: Literal["tabular"] = "tabular"
    path: str | None = None  # a .csv / .tsv / .parquet file
    synthetic: SyntheticTableConfig | None = None  # or a generated table
    format: Literal["auto", "csv", "parquet"] = "auto"  # auto: by the file's suffix
    target: str | None = None  # the column fine-tuning predicts (never a feature)
    task: Literal["auto", "classification", "regression"] = "auto"
    columns: dict[str, ColumnKind] = field(default_factory=dict)  # per-column kind overrides
    drop: list[str] = field(default_factory=list)  # columns that are not features (ids, leaks)
    max_categories: int = 20  # integer columns with at most this many distinct values are categorical
    na_values: list[str] = field(default_factory=list)  # extra cell texts read as missing (e.g. "?")
    # a missing cell: `token` replaces its feature token by a learned per-feature missing token;
    # `refuse` stops with the column and the rows
    missing: Literal["token", "refuse"] = "token"
    infinite: Literal["refuse", "missing"] = "refuse"  # +-inf cells: stop, or treat as missing
    # a column constant over the training rows carries nothing: keep it (with a warning), drop it
    # (with a warning), or stop
    constant: Literal["keep", "drop", "refuse"] = "keep"
    split: SplitConfig = field(default_factory=SplitConfig)
    pretrain_rows: Literal["train", "all"] = "train"  # all: every row (labels are never read)
    reg_tokens: int = 1  # regularization tokens prepended to each row (T-JEPA --n_cls_tokens)
    position_base: float = 100.0  # sin-cos base of the token positions (T-JEPA PositionalEncoding: 100)
    batch_size: int = 512
    num_workers: int = 0  # rows live in memory: the main process gathers them
    pin_memory: bool = False

    def check(self) -> None:
        if self.path is not None and self.synthetic is not None:
            raise ConfigError("set one data source, not data.path and data.synthetic")
        if self.max_categories < 1 or self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError("data.max_categories and data.batch_size must be >= 1, data.num_workers >= 0")
        if self.reg_tokens < 0:
            raise ConfigError(f"data.reg_tokens must be >= 0, got {self.reg_tokens}")
        if self.position_base <= 1:
            raise ConfigError(f"data.position_base must be > 1, got {self.position_base}")
        reserved = [c for c in (self.target, self.split.column) if c is not None and c in self.drop]
        if reserved:
            raise ConfigError(f"data.drop names {reserved[0]!r}, which is the target or the split column")
