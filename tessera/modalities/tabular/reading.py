"""Reading a CSV or Parquet table, with every refusal naming the file, the column and what to do.

pandas would accept much of what we refuse: it renames duplicated headers (`a`, `a.1`), reads a
header-only file as an empty table, and parses a binary file as garbage text. We check first.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Sequence

from tessera.data.lists import DatasetError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"


class TableError(DatasetError):
    """A table that cannot give a usable dataset; the message names the file or column and the fix."""


def table_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise TableError(
        f"{path}: cannot tell the table format from the suffix {suffix or '(none)'!r}; use a .csv, .tsv or "
        f".parquet file, or set data.format=csv or data.format=parquet"
    )


def _check_unique(names: Sequence[str], path: Path) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        name = repeated[0]
        where = [i for i, n in enumerate(names) if n == name]
        raise TableError(
            f"{path}: the column name {name!r} appears {len(where)} times (columns {', '.join(map(str, where))}"
            f"{'; also ' + ', '.join(map(repr, repeated[1:4])) if len(repeated) > 1 else ''}): "
            f"give every column its own name"
        )


def _read_csv(path: Path, na_values: Sequence[str]):
    import pandas as pd

    head = path.read_bytes()[:8192]
    if not head.strip():
        raise TableError(f"{path}: the file is empty; a table needs a header line and at least one row")
    if head.startswith(_PARQUET_MAGIC):
        raise TableError(f"{path}: this is a Parquet file, not CSV text; name it .parquet or set data.format=parquet")
    if b"\x00" in head:
        raise TableError(f"{path}: binary content, not a CSV text table (NUL bytes in the first 8 KiB)")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle, delimiter=sep))
    except UnicodeDecodeError as error:
        reason = f"{error.reason} at byte {error.start}"
        raise TableError(f"{path}: not UTF-8 text ({reason}); save the CSV as UTF-8") from None
    except (StopIteration, csv.Error) as error:
        raise TableError(f"{path}: cannot read a header line ({error or 'no lines'})") from None
    _check_unique([h.strip() for h in header], path)
    if len(header) == 1:
        other = next((d for d in (";", "\t", "|") if d in header[0]), None)
        if other is not None:
            raise TableError(f"{path}: the header is one column ({header[0][:60]!r}) that holds {other!r}: the file "
                             f"seems to separate its columns with {other!r}; use commas (or tabs in a .tsv file)")
    try:
        frame = pd.read_csv(path, sep=sep, na_values=list(na_values) or None, low_memory=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file is empty; a table needs a header line and at least one row") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        raise TableError(f"{path}: not a readable CSV table ({reason})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_parquet(path: Path, na_values: Sequence[str]):
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        _check_unique(names, path)
        frame = pd.read_parquet(path)
    except TableError:
        raise
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TableError(f"{path}: not a readable Parquet table ({reason})") from None
    if na_values:
        frame = frame.replace(list(na_values), None)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def read_table(path: str | Path, fmt: str = "auto", na_values: Sequence[str] = ()):
    """A pandas DataFrame of the whole file; refuses empty, header-only and duplicate-header tables."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such table file")
    fmt = table_format(path, fmt)
    frame = _read_csv(path, na_values) if fmt == "csv" else _read_parquet(path, na_values)
    if frame.shape[1] == 0:
        raise TableError(f"{path}: no columns; a table needs a header line naming its columns")
    if len(frame) == 0:
        shown = ", ".join(map(str, list(frame.columns)[:8])) + (", ..." if frame.shape[1] > 8 else "")
        raise TableError(f"{path}: a header ({shown}) but no rows; the table needs at least one row of values")
    return frame


def table_fingerprint(frame) -> str:
    """A short hash of the table's columns and values: fine-tuning checks it before reusing a stored split."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha1()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(str(len(frame)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
