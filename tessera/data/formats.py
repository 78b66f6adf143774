"""Labelled video datasets in their official layouts: each reader returns `(entries, class_names)`.

* UCF101 (`ucfTrainTestlist/`): `classInd.txt` lines "1 ApplyEyeMakeup" (1-based ids);
  `trainlist0N.txt` lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (1-based labels);
  `testlist0N.txt` lines with the path only, the class being the path's folder. The files ship
  with CRLF line ends. Videos lie under `<root>/<class>/<video>.avi`.
* HMDB51 (`testTrainMulti_7030_splits/`): one file per class and split, `<class>_test_split<N>.txt`,
  lines "<video> <0|1|2>": 1 = training, 2 = testing, 0 = not used in this split. The class comes
  from the file name; classes are numbered in sorted order. Videos under `<root>/<class>/<video>`.
* A folder per class: `<root>/<class>/<video>`, classes sorted by name (torchvision ImageFolder's rule).
* VideoMAE's `path label` lists (K400, SSv2) with an optional class-name file.

Names may hold spaces, brackets and non-ASCII characters (files are read as UTF-8; a BOM and CRLF
are tolerated). A label outside the class list is refused naming `file:line`. Whether the named
files exist is not checked here: `tessera.data.lists.check_files_exist` does that, once, with the
count and the first names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Literal, Sequence

from tessera.data.lists import (UNLABELED, VIDEO_EXTENSIONS, DatasetError, VideoEntry, read_path_label_list)

_INTEGER = re.compile(r"^[+-]?\d+$")
_HMDB_SPLIT_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<split>\d+)\.txt$")
HMDB_SUBSETS = {"unused": 0, "train": 1, "test": 2}


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of each non-blank line; utf-8-sig drops a BOM, newline=None folds CRLF."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if text:
                yield number, text


def _split_last(text: str) -> tuple[str, str | None]:
    """'a b c 3' -> ('a b c', '3'); a single token -> (token, None). The last whitespace run splits."""
    parts = text.rsplit(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (text, None)


def _join(root: str | Path, relative: str) -> str:
    return relative if os.path.isabs(relative) else os.path.join(os.fspath(root), relative)


def _class_of_path(relative: str) -> str:
    """The first folder of a list path ('ApplyEyeMakeup/v_x.avi' -> 'ApplyEyeMakeup'), '' if none."""
    parts = [p for p in re.split(r"[\\/]", relative) if p]
    return parts[0] if len(parts) > 1 else ""


# --------------------------------------------------------------------------------------------------
# Class names


def read_class_names(path: str | Path) -> list[str]:
    """One class name per line (blank lines skipped, surrounding spaces stripped); duplicates refused."""
    path = Path(path)
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        if text in seen:
            raise DatasetError(f"{path}:{number}: class {text!r} is listed twice (first at line {seen[text]})")
        seen[text] = number
        names.append(text)
    if not names:
        raise DatasetError(f"{path} names no classes")
    return names


def read_ucf101_class_index(path: str | Path) -> list[str]:
    """`classInd.txt`: "<id> <name>" with ids 1..N (any order); returns names by id (label = id - 1)."""
    path = Path(path)
    by_id: dict[int, tuple[str, int]] = {}
    for number, text in _lines(path):
        parts = text.split(None, 1)
        if len(parts) != 2 or not _INTEGER.match(parts[0]):
            raise DatasetError(f"{path}:{number}: expected '<id> <class name>', got {text!r}")
        class_id, name = int(parts[0]), parts[1].strip()
        if class_id in by_id:
            raise DatasetError(f"{path}:{number}: class id {class_id} already given at line {by_id[class_id][1]}")
        by_id[class_id] = (name, number)
    if not by_id:
        raise DatasetError(f"{path} names no classes")
    expected = set(range(1, len(by_id) + 1))
    if set(by_id) != expected:
        wrong = sorted(set(by_id) - expected)
        raise DatasetError(f"{path}: class ids must be 1..{len(by_id)} (1-based, no gaps); "
                           f"{wrong[0]} at line {by_id[wrong[0]][1]} is outside")
    names = [by_id[i][0] for i in range(1, len(by_id) + 1)]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DatasetError(f"{path}: class {dup!r} is listed twice")
    return names


# --------------------------------------------------------------------------------------------------
# UCF101


def read_ucf101_list(list_file: str | Path, class_names: Sequence[str], root: str | Path) -> list[VideoEntry]:
    """A UCF101 train or test list: "path label" (1-based) or "path" alone (class from the folder,
    matched exactly, else ignoring case).

    A path may hold spaces: the last whitespace-separated token is the label only when it is an
    integer. Labels are returned 0-based.
    """
    list_path = Path(list_file)
    index = {name: i for i, name in enumerate(class_names)}
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(class_names)))}
    entries: list[VideoEntry] = []
    for number, text in _lines(list_path):
        where = f"{list_path}:{number}"
        path, last = _split_last(text)
        if last is not None and _INTEGER.match(last):
            label = int(last)
            if not 1 <= label <= len(class_names):
                raise DatasetError(f"{where}: label {label} is outside the {len(class_names)} classes "
                                   f"(UCF101 ids are 1-based, 1..{len(class_names)}): {text!r}")
            label -= 1
        else:  # the test lists: path only, the class is the folder name
            path = text
            folder = _class_of_path(path)
            label = index.get(folder, folded.get(folder.casefold(), -1))  # case differences forgiven
            if label < 0:
                raise DatasetError(f"{where}: no label, and the folder {folder!r} of {path!r} is not a class "
                                   f"of the class index")
        entries.append(VideoEntry(_join(root, path), label))
    if not entries:
        raise DatasetError(f"{list_path} names no videos")
    return entries


def read_ucf101(annotations: str | Path, root: str | Path, split: int = 1,
                subset: Literal["train", "test"] = "train") -> tuple[list[VideoEntry], list[str]]:
    """UCF101 split `split` (1-3): `annotations/classInd.txt` and `trainlist0N.txt` / `testlist0N.txt`."""
    if split not in (1, 2, 3):
        raise DatasetError(f"UCF101 has splits 1, 2 and 3, got {split}")
    if subset not in ("train", "test"):
        raise DatasetError(f"UCF101 subset must be 'train' or 'test', got {subset!r}")
    annotations = Path(annotations)
    class_names = read_ucf101_class_index(annotations / "classInd.txt")
    entries = read_ucf101_list(annotations / f"{subset}list{split:02d}.txt", class_names, root)
    return entries, class_names


# --------------------------------------------------------------------------------------------------
# HMDB51


def hmdb51_split_files(splits_dir: str | Path, split: int) -> dict[str, Path]:
    """{class name: its `<class>_test_split<N>.txt`} for split N, classes sorted."""
    splits_dir = Path(splits_dir)
    if not splits_dir.is_dir():
        raise DatasetError(f"HMDB51 split folder {splits_dir} does not exist")
    found: dict[str, Path] = {}
    for path in splits_dir.iterdir():
        match = _HMDB_SPLIT_FILE.match(path.name)
        if match and int(match.group("split")) == split and path.is_file():
            found[match.group("name")] = path
    if not found:
        raise DatasetError(f"{splits_dir} holds no HMDB51 split files '<class>_test_split{split}.txt'")
    return {name: found[name] for name in sorted(found)}


def read_hmdb51(splits_dir: str | Path, root: str | Path, split: int = 1,
                subset: Literal["train", "test", "unused"] = "train") -> tuple[list[VideoEntry], list[str]]:
    """HMDB51 split `split` (1-3): the videos marked 1 (train) or 2 (test) in each class's split file."""
    if split not in (1, 2, 3):
        raise DatasetError(f"HMDB51 has splits 1, 2 and 3, got {split}")
    if subset not in HMDB_SUBSETS:
        raise DatasetError(f"HMDB51 subset must be one of {sorted(HMDB_SUBSETS)}, got {subset!r}")
    wanted = HMDB_SUBSETS[subset]
    files = hmdb51_split_files(splits_dir, split)
    class_names = list(files)
    entries: list[VideoEntry] = []
    for label, (name, path) in enumerate(files.items()):
        for number, text in _lines(path):
            video, mark = _split_last(text)
            if mark is None or mark not in ("0", "1", "2"):
                raise DatasetError(f"{path}:{number}: expected '<video> <0|1|2>' (1 train, 2 test, 0 unused), "
                                   f"got {text!r}")
            if int(mark) == wanted:
                entries.append(VideoEntry(os.path.join(os.fspath(root), name, video), label))
    if not entries:
        raise DatasetError(f"the HMDB51 split {split} files in {splits_dir} mark no {subset} videos")
    return entries, class_names


# --------------------------------------------------------------------------------------------------
# A folder per class


def read_class_folders(root: str | Path, class_names: Sequence[str] | None = None,
                       extensions: Sequence[str] = VIDEO_EXTENSIONS) -> tuple[list[VideoEntry], list[str]]:
    """`<root>/<class>/<video>`: the video files directly in each class folder, sorted.

    Classes are the sub-folders sorted by name (hidden ones skipped), unless `class_names` fixes the
    numbering (e.g. a validation folder read with the training classes); then a folder that is not a
    listed class is refused.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"class folder root {root} does not exist or is not a folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        names = folders
    else:
        names = list(class_names)
        unknown = [f for f in folders if f not in set(names)]
        if unknown:
            raise DatasetError(f"{root}: folder {unknown[0]!r} is not one of the {len(names)} classes given")
    if not names:
        raise DatasetError(f"{root} has no class folders")
    suffixes = tuple(e.lower() for e in extensions)
    entries: list[VideoEntry] = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.is_file() and file.name.lower().endswith(suffixes):
                entries.append(VideoEntry(str(file), label))
    if not entries:
        raise DatasetError(f"{root}: the class folders hold no video files ({', '.join(extensions)})")
    return entries, names


# --------------------------------------------------------------------------------------------------
# VideoMAE `path label` lists


def read_labeled_list(list_file: str | Path, root: str | Path | None = None,
                      class_names: Sequence[str] | str | Path | None = None,
                      num_classes: int | None = None) -> tuple[list[VideoEntry], list[str]]:
    """A VideoMAE `path label` list (0-based labels, MCG-NJU/VideoMAE DATASET.md) with its classes.

    The classes are `class_names` (a list, or a file of one name per line), else `num_classes`
    names "0".."K-1", else as many as the largest label + 1. Each label must be one of them (an
    unlabeled line, label -1, is refused too): the error names `file:line`.
    """
    list_path = Path(list_file)
    entries = read_path_label_list(list_path, root)
    if isinstance(class_names, (str, Path)):
        names = read_class_names(class_names)
    elif class_names is not None:
        names = list(class_names)
    elif num_classes is not None:
        names = [str(i) for i in range(num_classes)]
    else:
        names = [str(i) for i in range(max(e.label for e in entries) + 1)]
    if num_classes is not None and len(names) != num_classes:
        raise DatasetError(f"{len(names)} class names given for num_classes={num_classes}")
    # read_path_label_list keeps one entry per non-blank line, in order: pair them up for line numbers.
    for (number, text), entry in zip(_lines(list_path), entries):
        if not 0 <= entry.label < len(names) or entry.label == UNLABELED:
            raise DatasetError(f"{list_path}:{number}: label {entry.label} is outside the {len(names)} classes "
                               f"(0..{len(names) - 1}): {text!r}")
    return entries, names


__all__ = ["read_class_names", "read_ucf101_class_index", "read_ucf101_list", "read_ucf101",
           "hmdb51_split_files", "read_hmdb51", "read_class_folders", "read_labeled_list", "HMDB_SUBSETS"]
