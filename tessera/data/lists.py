"""Dataset lists: the `path label` text files VideoMAE uses, and plain folders of videos.

Both produce the same `VideoEntry` list so a dataset never cares where its file names came from.
Every problem is reported with the file (and line) it came from, because a list with 240,000
lines is useless to debug from "invalid literal for int()".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
UNLABELED = -1

# Last whitespace run splits the path from the label, so a path may hold spaces itself.
# (The reference splits on the first single space, MCG-NJU/VideoMAE:kinetics.py `_make_dataset`,
# which breaks on such paths; we deliberately accept them.)
_PATH_LABEL = re.compile(r"^(?P<path>.*?\S)\s+(?P<label>\S+)$")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class VideoEntry:
    """One video file and its class; label -1 means unlabeled (pretraining lists)."""

    path: str
    label: int = UNLABELED


class DatasetError(ValueError):
    """A list or folder that cannot give a usable dataset (bad line, missing files, no videos)."""


def _is_video_name(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _parse_line(text: str, where: str) -> tuple[str, int]:
    match = _PATH_LABEL.match(text)
    if match is None:  # a single token: a path with no label
        return text, UNLABELED
    path, label = match.group("path"), match.group("label")
    if _INTEGER.match(label):
        value = int(label)
        if value < UNLABELED:
            raise DatasetError(f"{where}: label {value} is negative (only -1, unlabeled, is allowed): {text!r}")
        return path, value
    # No integer at the end: either an unlabeled path with spaces, or a broken label.
    if _is_video_name(text):
        return text, UNLABELED
    raise DatasetError(f"{where}: expected 'path label' with an integer label, got {text!r}")


def read_path_label_list(list_file: str | Path, root: str | Path | None = None) -> list[VideoEntry]:
    """Read a VideoMAE-style `path label` list (MCG-NJU/VideoMAE:DATASET.md: space separated).

    Relative paths are joined to `root`, else to the list file's own folder, so a list travels with
    its data. Blank lines and CRLF line ends are tolerated; a line holding only a path is unlabeled.
    """
    list_path = Path(list_file)
    if not list_path.is_file():
        raise DatasetError(f"list file {list_path} does not exist")
    base = Path(root) if root is not None else list_path.parent
    entries: list[VideoEntry] = []
    # utf-8-sig drops a byte-order mark; universal newlines turn CRLF into LF.
    with open(list_path, encoding="utf-8-sig", newline=None) as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            path, label = _parse_line(text, f"{list_path}:{number}")
            full = path if os.path.isabs(path) else os.path.join(base, path)
            entries.append(VideoEntry(full, label))
    if not entries:
        raise DatasetError(f"list file {list_path} names no videos")
    return entries


def scan_video_folder(folder: str | Path) -> list[VideoEntry]:
    """Every video under `folder`, recursively and sorted, unlabeled: the no-list pretraining case."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"video folder {root} does not exist or is not a folder")
    found = [
        os.path.join(directory, name)
        for directory, _, names in os.walk(root, followlinks=True)
        for name in names
        if _is_video_name(name)
    ]
    if not found:
        raise DatasetError(f"video folder {root} holds no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return [VideoEntry(path, UNLABELED) for path in sorted(found)]


def check_files_exist(entries: Sequence[VideoEntry], source: str, show: int = 5) -> None:
    """Fail before training rather than at sample 10,000 when files are missing.

    Something that exists but cannot be read (an empty file, a folder named like a video, a corrupt
    file) is left to the robust reader, which replaces, counts and logs it during training.
    """
    missing = [entry.path for entry in entries if not os.path.exists(entry.path)]
    if missing:
        first = ", ".join(missing[:show]) + (", …" if len(missing) > show else "")
        raise DatasetError(f"{len(missing)} of {len(entries)} files named in {source} do not exist, first: {first}")
