"""`path label` lists and folder scans: awkward names, CRLF, and errors that name the place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.data.lists import DatasetError, VideoEntry, check_files_exist, read_path_label_list, scan_video_folder


def write_list(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_awkward_names_crlf_blank_lines_and_missing_labels(tmp_path: Path) -> None:
    text = ("a/clip one.mp4 3\r\n"
            "\r\n"
            "b/[brackets] (x).avi   7\r\n"
            "c/vidéo_ü_日本.mp4\t0\r\n"
            "   \n"
            "d/unlabeled.mp4\n"
            "e/unlabeled with spaces.MP4\n"
            "f/explicit.mp4 -1")
    entries = read_path_label_list(write_list(tmp_path / "train.csv", text))
    root = str(tmp_path)
    assert entries == [
        VideoEntry(os.path.join(root, "a/clip one.mp4"), 3),
        VideoEntry(os.path.join(root, "b/[brackets] (x).avi"), 7),
        VideoEntry(os.path.join(root, "c/vidéo_ü_日本.mp4"), 0),
        VideoEntry(os.path.join(root, "d/unlabeled.mp4"), -1),
        VideoEntry(os.path.join(root, "e/unlabeled with spaces.MP4"), -1),
        VideoEntry(os.path.join(root, "f/explicit.mp4"), -1),
    ]


def test_root_and_absolute_paths(tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "list.txt", f"rel.mp4 1\n{tmp_path}/abs.mp4 2\n")
    entries = read_path_label_list(list_file, root="/data/k400")
    assert entries == [VideoEntry("/data/k400/rel.mp4", 1), VideoEntry(f"{tmp_path}/abs.mp4", 2)]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "bad.csv", "ok.mp4 1\n\nbroken.mp4 cat\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:3.*broken\.mp4 cat"):
        read_path_label_list(list_file)
    with pytest.raises(DatasetError, match=r"bad2\.csv:1"):
        read_path_label_list(write_list(tmp_path / "bad2.csv", "x.mp4 1.5\n"))
    with pytest.raises(DatasetError, match=r"bad3\.csv:1.*negative"):
        read_path_label_list(write_list(tmp_path / "bad3.csv", "x.mp4 -2\n"))


def test_missing_and_empty_list_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nope.txt does not exist"):
        read_path_label_list(tmp_path / "nope.txt")
    with pytest.raises(DatasetError, match="names no videos"):
        read_path_label_list(write_list(tmp_path / "empty.txt", "\n\r\n  \n"))


def test_check_files_exist_reports_count_and_first_names(tmp_path: Path) -> None:
    present = tmp_path / "here.mp4"
    present.write_bytes(b"x")
    (tmp_path / "a_folder.mp4").mkdir()
    missing = [VideoEntry(str(tmp_path / f"gone{i}.mp4")) for i in range(6)]
    entries = [VideoEntry(str(present)), VideoEntry(str(tmp_path / "a_folder.mp4"))] + missing
    with pytest.raises(DatasetError) as caught:
        check_files_exist(entries, "train.csv")
    message = str(caught.value)
    assert message.startswith("6 of 8 files named in train.csv do not exist, first: ")
    assert "gone4.mp4" in message and "gone5.mp4" not in message
    # a folder named like a video exists: the robust reader replaces and counts it during training
    assert "a_folder.mp4" not in message
    check_files_exist(entries[:2], "train.csv")  # all present: no error


def test_scan_video_folder(tmp_path: Path) -> None:
    for name in ("b/two.MP4", "a/one.webm", "a/deep/three.mkv", "a/notes.txt", "c/four.M4V", "five.mov"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    entries = scan_video_folder(tmp_path)
    names = [os.path.relpath(e.path, tmp_path) for e in entries]
    assert names == sorted(names) and set(names) == {"b/two.MP4", "a/one.webm", "a/deep/three.mkv",
                                                      "c/four.M4V", "five.mov"}
    assert all(e.label == -1 for e in entries)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty holds no video files"):
        scan_video_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        scan_video_folder(tmp_path / "absent")
