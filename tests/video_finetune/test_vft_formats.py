"""Official dataset layouts on miniature trees: UCF101 lists, HMDB51 split files, a folder per class."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.data.formats import (read_class_folders, read_class_names, read_hmdb51, read_labeled_list, read_ucf101,
                                  read_ucf101_class_index)
from tessera.data.lists import DatasetError


def _write(path: Path, lines: list[str], crlf: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    path.write_bytes(end.join(lines).encode("utf-8") + end.encode())
    return path


UCF_CLASSES = ["ApplyEyeMakeup", "Band Marching", "Café [x] (ü)"]


@pytest.fixture
def ucf(tmp_path: Path) -> Path:
    notes = tmp_path / "ucfTrainTestlist"
    _write(notes / "classInd.txt", [f"{i} {name}" for i, name in enumerate(UCF_CLASSES, start=1)])
    _write(notes / "trainlist01.txt", ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
                                       "Band Marching/v_Band Marching_g01 (2).avi 2",
                                       "", "Café [x] (ü)/vidéo ü.avi 3"])
    _write(notes / "testlist01.txt", ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
                                      "Café [x] (ü)/clip [1].avi", "band marching/v 2.avi"])
    return notes


def test_ucf101_train_list_1_based_crlf(ucf: Path, tmp_path: Path):
    entries, names = read_ucf101(ucf, tmp_path / "UCF-101", split=1, subset="train")
    assert names == UCF_CLASSES
    assert [e.label for e in entries] == [0, 1, 2]
    assert entries[1].path == os.path.join(str(tmp_path / "UCF-101"), "Band Marching/v_Band Marching_g01 (2).avi")
    assert entries[2].path.endswith("Café [x] (ü)/vidéo ü.avi")  # no \r left, non-ASCII kept


def test_ucf101_unlabeled_test_list_takes_the_folder(ucf: Path, tmp_path: Path):
    entries, names = read_ucf101(ucf, tmp_path, split=1, subset="test")
    assert [e.label for e in entries] == [0, 2, 1]
    assert entries[1].path.endswith("clip [1].avi")


def test_ucf101_bad_labels_name_the_line(ucf: Path, tmp_path: Path):
    _write(ucf / "trainlist02.txt", ["ApplyEyeMakeup/a.avi 1", "ApplyEyeMakeup/b.avi 4"])
    with pytest.raises(DatasetError, match=r"trainlist02\.txt:2: label 4 is outside the 3 classes"):
        read_ucf101(ucf, tmp_path, split=2)
    _write(ucf / "trainlist03.txt", ["ApplyEyeMakeup/a.avi 0"])  # 0 is not a 1-based id
    with pytest.raises(DatasetError, match=r"trainlist03\.txt:1"):
        read_ucf101(ucf, tmp_path, split=3)
    _write(ucf / "testlist02.txt", ["ApplyEyeMakeup/a.avi", "Juggling/b.avi"])
    with pytest.raises(DatasetError, match=r"testlist02\.txt:2: .*'Juggling'"):
        read_ucf101(ucf, tmp_path, split=2, subset="test")
    _write(ucf / "classInd.txt", ["1 A", "3 C"])
    with pytest.raises(DatasetError, match="1..2"):
        read_ucf101_class_index(ucf / "classInd.txt")


HMDB = {
    "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 ", "Blonde_being_brushed_f_nm_np2_ri_med_0.avi 2 ",
                   "unused_clip_0.avi 0 "],
    "sword [exercise] é": ["(Bruce_Lee)_fights_sword_f_cm_np1_le_bad_1.avi 1", "Ökö clip!_2.avi 2"],
    "climb": ["Rock climbing & more_climb_f_cm_np1_ba_med_0.avi 2"],
}


@pytest.fixture
def hmdb(tmp_path: Path) -> Path:
    splits = tmp_path / "testTrainMulti_7030_splits"
    for name, lines in HMDB.items():
        _write(splits / f"{name}_test_split1.txt", lines)
        _write(splits / f"{name}_test_split2.txt", [line.replace(" 1", " 9") for line in lines[:1]])
    return splits


def test_hmdb51_split_files(hmdb: Path, tmp_path: Path):
    root = tmp_path / "hmdb51"
    train, names = read_hmdb51(hmdb, root, split=1, subset="train")
    assert names == ["brush_hair", "climb", "sword [exercise] é"]  # sorted, from the file names
    assert [(Path(e.path).parent.name, Path(e.path).name, e.label) for e in train] == [
        ("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
        ("sword [exercise] é", "(Bruce_Lee)_fights_sword_f_cm_np1_le_bad_1.avi", 2)]
    test, _ = read_hmdb51(hmdb, root, split=1, subset="test")
    assert [(Path(e.path).name, e.label) for e in test] == [("Blonde_being_brushed_f_nm_np2_ri_med_0.avi", 0),
                                                            ("Rock climbing & more_climb_f_cm_np1_ba_med_0.avi", 1),
                                                            ("Ökö clip!_2.avi", 2)]
    assert test[0].path == os.path.join(str(root), "brush_hair", "Blonde_being_brushed_f_nm_np2_ri_med_0.avi")
    unused, _ = read_hmdb51(hmdb, root, split=1, subset="unused")
    assert [Path(e.path).name for e in unused] == ["unused_clip_0.avi"]


def test_hmdb51_bad_mark_names_the_line(hmdb: Path, tmp_path: Path):
    with pytest.raises(DatasetError, match=r"_test_split2\.txt:1: expected '<video> <0\|1\|2>'"):
        read_hmdb51(hmdb, tmp_path, split=2)
    with pytest.raises(DatasetError, match="no HMDB51 split files"):
        read_hmdb51(hmdb, tmp_path, split=3)


def test_folder_per_class(tmp_path: Path):
    root = tmp_path / "videos"
    for rel in ["B class/x 1.mp4", "a[1]/y.avi", "ü/z.MKV", "ü/notes.txt", ".hidden/w.mp4", "empty/.keep"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    entries, names = read_class_folders(root)
    assert names == ["B class", "a[1]", "empty", "ü"]
    assert [(Path(e.path).name, e.label) for e in entries] == [("x 1.mp4", 0), ("y.avi", 1), ("z.MKV", 3)]
    entries, names = read_class_folders(root, class_names=["ü", "a[1]", "B class", "empty", "other"])
    assert [(Path(e.path).name, e.label) for e in entries] == [("z.MKV", 0), ("y.avi", 1), ("x 1.mp4", 2)]
    with pytest.raises(DatasetError, match="'empty' is not one of"):
        read_class_folders(root, class_names=["ü", "a[1]", "B class"])


def test_class_names_file(tmp_path: Path):
    path = tmp_path / "classes.txt"
    path.write_bytes("\ufeffabseiling\r\n\r\nair drumming\r\nKöln [x]\r\n".encode("utf-8"))
    assert read_class_names(path) == ["abseiling", "air drumming", "Köln [x]"]
    _write(path, ["a", "b", "a"])
    with pytest.raises(DatasetError, match=r"classes\.txt:3"):
        read_class_names(path)


def test_videomae_list_label_outside_class_list(tmp_path: Path):
    names = _write(tmp_path / "names.txt", ["a", "b", "c"], crlf=False)
    lst = _write(tmp_path / "train.csv", ["x/1 a.mp4 0", "", "y/2.mp4 2"])
    entries, got = read_labeled_list(lst, class_names=names)
    assert got == ["a", "b", "c"] and [e.label for e in entries] == [0, 2]
    bad = _write(tmp_path / "val.csv", ["x/1.mp4 1", "", "y/2.mp4 3"])
    with pytest.raises(DatasetError, match=r"val\.csv:3: label 3 is outside the 3 classes"):
        read_labeled_list(bad, class_names=names)
    assert len(read_labeled_list(bad)[1]) == 4  # no class list: as many as the largest label + 1
