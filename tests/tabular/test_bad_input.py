"""Every bad table of the issue's list: refused with the file or column and the fix, or handled as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.modalities.tabular.preprocessing import TablePreprocessing, fit_preprocessing
from tessera.config import from_dict
from tessera.modalities.tabular.config import TabularDataConfig
from tessera.modalities.tabular.reading import TableError, read_table, table_fingerprint


def prepare(path, **settings) -> tuple[TablePreprocessing, object]:
    cfg = from_dict(TabularDataConfig, settings, "data")
    frame = read_table(path, cfg.format, cfg.na_values)
    prep = fit_preprocessing(frame, cfg, str(path), table_fingerprint(frame))
    return prep, prep.transform(frame, str(path))


def refused(match: str, path, **settings) -> str:
    with pytest.raises(TableError, match=match) as error:
        prepare(path, **settings)
    return str(error.value)


def test_not_a_table(tmp_path, frame, write):
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert str(binary) in refused("binary content, not a CSV", binary)
    parquet_named_csv = write(frame, "table.parquet").rename(tmp_path / "really_parquet.csv")
    refused("this is a Parquet file, not CSV text; name it .parquet", parquet_named_csv)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("a,b\n1,2\n")
    refused("not a readable Parquet table", garbage)
    unknown = tmp_path / "table.json"
    unknown.write_text('{"a": [1, 2]}')
    refused("cannot tell the table format from the suffix '.json'.*data.format=csv", unknown)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5,6\n")
    refused("not a readable CSV table", ragged)
    refused("no such table file", tmp_path / "absent.csv")
    semicolons = tmp_path / "european.csv"
    semicolons.write_text("a;b;c\n1,5;2;3\n")
    refused("seems to separate its columns with ';'", semicolons)


def test_empty_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused("the file is empty", empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b,c\n")
    message = refused(r"a header \(a, b, c\) but no rows", header)
    assert str(header) in message


def test_duplicated_column_names(tmp_path, write):
    csv = tmp_path / "dup.csv"
    csv.write_text("a,b,a\n1,2,3\n4,5,6\n")  # pandas alone would rename the second one to a.1
    assert "appears 2 times (columns 0, 2)" in refused("the column name 'a'", csv)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["v", "v"])
    pq.write_table(table, tmp_path / "dup.parquet")
    refused("the column name 'v' appears 2 times", tmp_path / "dup.parquet")


def test_target_column_that_does_not_exist(frame, write):
    message = refused("no target column 'price'", write(frame), target="price")
    assert "'x', 'y', 'code', 'color', 'label'" in message


def test_column_of_mixed_types(frame, write):
    frame["y"] = frame["y"].astype(object)
    frame.loc[3, "y"] = "unknown"
    message = refused("column 'y' mixes numbers", write(frame))
    assert "'unknown'" in message and "data.na_values" in message and "data.columns.y=categorical" in message
    # both fixes the message names work
    prep, tensors = prepare(write(frame), na_values=["unknown"])
    assert "y" in [c.name for c in prep.numerical] and tensors.missing[3, 1]
    prep, _ = prepare(write(frame), columns={"y": "categorical"})
    assert "y" in [c.name for c in prep.categorical]


def test_constant_column_policies(frame, write):
    frame["flat"] = 7.5
    path = write(frame)
    prep, tensors = prepare(path)  # default keep: documented, with a note naming it
    assert "flat" in prep.feature_names and any("'flat' is constant" in n and "kept" in n for n in prep.notes)
    assert tensors.num[:, prep.feature_names.index("flat")].eq(0).all()  # (x - min) / 1: no division by 0
    prep, _ = prepare(path, constant="drop")
    assert "flat" not in prep.feature_names and any("left out" in n for n in prep.notes)
    refused("column 'flat' is constant .*data.drop=\\[flat\\]", path, constant="refuse")


def test_all_missing_column(frame, write):
    frame["empty"] = np.nan
    refused(r"column 'empty' has no values in the training rows; leave it out with data.drop=\[empty\]", write(frame))
    prep, _ = prepare(write(frame), drop=["empty"])
    assert "empty" not in prep.feature_names


def test_infinities(frame, write):
    frame.loc[5, "x"] = np.inf
    path = write(frame)  # pandas writes "inf" and reads it back as float inf
    message = refused("column 'x' has 1 infinite value", path)
    assert "data row 6" in message and "data.infinite=missing" in message
    prep, tensors = prepare(path, infinite="missing")
    assert tensors.missing[5, 0] and tensors.num[5, 0] == 0


def test_missing_cells_policies(frame, write):
    frame.loc[2, "color"] = None
    frame.loc[4, "x"] = np.nan
    path = write(frame)
    prep, tensors = prepare(path)  # token: flagged, never NaN
    assert not tensors.num.isnan().any()
    assert tensors.missing[4, prep.feature_names.index("x")] and tensors.missing[2, prep.feature_names.index("color")]
    refused("column 'x' has 1 missing cell.*data.missing=token", path, missing="refuse")


def test_categorical_value_unseen_in_training_uses_the_bucket(frame, write, tmp_path):
    prep, _ = prepare(write(frame))
    new = frame.copy()
    new.loc[0, "color"] = "purple"
    tensors = prep.transform(new, "new.csv")
    column = prep.categorical[[c.name for c in prep.categorical].index("color")]
    j = prep.feature_names.index("color") - len(prep.numerical)
    assert tensors.cat[0, j] == len(column.categories)  # the unseen-category bucket
    assert tensors.unseen == {"color": 1} and not tensors.missing[0].any()


def test_new_table_lacking_a_feature_is_refused(frame, write):
    prep, _ = prepare(write(frame))
    with pytest.raises(TableError, match="lacks the feature column\\(s\\) 'color'"):
        prep.transform(frame.drop(columns=["color"]), "other.csv")


def test_too_few_features_and_dates(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": [1.5, 2.5, 3.5], "label": [0, 1, 0]}).to_csv(path, index=False)
    refused("1 feature column\\(s\\) left \\(a\\); T-JEPA needs at least 2", path, target="label")
    dates = tmp_path / "dates.parquet"
    when = pd.date_range("2024-01-01", periods=4)
    pd.DataFrame({"when": when, "a": [1.0, 2, 3, 4], "b": [1.0, 0, 1, 0]}).to_parquet(dates)
    refused("column 'when' holds dates or times.*data.drop=\\[when\\]", dates)


def test_split_column_values_are_checked(frame, write):
    frame["part"] = ["train"] * 14 + ["val"] * 3 + ["test"] * 2 + ["holdout"]
    refused("split column 'part' has value\\(s\\) 'holdout'", write(frame), split={"column": "part"})
    frame.loc[19, "part"] = "test"
    prep, _ = prepare(write(frame), split={"column": "part"})
    assert prep.split.tolist() == [0] * 14 + [1] * 3 + [2] * 3 and "part" not in prep.feature_names
