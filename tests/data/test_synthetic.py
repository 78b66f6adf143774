"""Synthetic motion videos: real files decord reads, balanced labels, and a class only motion tells."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import decord
import numpy as np
import pytest

from tessera.data.lists import read_path_label_list
from tessera.data.synthetic import (
    DONE_MARKER,
    MOTION_CLASSES,
    ensure_synthetic_videos,
    render_clip,
    write_mp4,
    write_synthetic_videos,
)

FRAMES, HEIGHT, WIDTH = 16, 64, 80
NUM = 30  # five clips per class


def decode(path: str | Path) -> np.ndarray:
    reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def shape_mask(frames: np.ndarray) -> np.ndarray:
    """The generator keeps the background in [55, 195] and gives every shape a channel <=25 or >=230."""
    return (frames.min(-1) < 40) | (frames.max(-1) > 212)


def circular_centroid(mask: np.ndarray) -> tuple[float, float]:
    """Centroid on the torus (motion wraps around the frame), as (x, y) in pixels."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    out = []
    for coords, period in ((xs, width), (ys, height)):
        angle = 2 * math.pi * (coords + 0.5) / period
        mean = math.atan2(np.sin(angle).mean(), np.cos(angle).mean())
        out.append((mean % (2 * math.pi)) * period / (2 * math.pi))
    return out[0], out[1]


def wrapped(delta: float, period: float) -> float:
    return (delta + period / 2) % period - period / 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    list_path = write_synthetic_videos(out, NUM, frames=FRAMES, height=HEIGHT, width=WIDTH, seed=3)
    assert list_path == out / "list.txt"
    return out


def test_files_decode_and_labels_balance(dataset: Path) -> None:
    classes = (dataset / "classes.txt").read_text().split()
    assert tuple(classes) == MOTION_CLASSES
    entries = read_path_label_list(dataset / "list.txt")
    assert len(entries) == NUM
    assert Counter(e.label for e in entries) == {label: NUM // len(classes) for label in range(len(classes))}
    for entry in entries:
        name = Path(entry.path).name
        assert Path(entry.path).parent.name == classes[entry.label] and name.startswith(classes[entry.label])
        assert decode(entry.path).shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert json.loads((dataset / DONE_MARKER).read_text())["num_videos"] == NUM


def test_labels_are_shuffled_not_in_class_order(dataset: Path) -> None:
    labels = [e.label for e in read_path_label_list(dataset / "list.txt")]
    assert labels != [i % len(MOTION_CLASSES) for i in range(NUM)]


@pytest.mark.parametrize("height,width", [(48, 64), (64, 80), (32, 40), (128, 160)])
def test_every_size_we_generate_reads_back(tmp_path: Path, height: int, width: int) -> None:
    list_path = write_synthetic_videos(tmp_path, 2, frames=8, height=height, width=width)
    for entry in read_path_label_list(list_path):
        assert decode(entry.path).shape == (8, height, width, 3)


def test_size_decord_cannot_read_is_refused(tmp_path: Path) -> None:
    # decord 0.6 reads 48-px-wide libx264 video as 4 channels / fails: say so at generation.
    with pytest.raises(ValueError, match="48x40"):
        write_synthetic_videos(tmp_path, 1, frames=4, height=40, width=48)
    assert not (tmp_path / DONE_MARKER).exists()


def test_deterministic_for_a_seed(dataset: Path, tmp_path: Path) -> None:
    write_synthetic_videos(tmp_path / "a", NUM, frames=FRAMES, height=HEIGHT, width=WIDTH, seed=3)
    assert (tmp_path / "a" / "list.txt").read_text() == (dataset / "list.txt").read_text()
    for entry in read_path_label_list(tmp_path / "a" / "list.txt"):
        relative = Path(entry.path).relative_to(tmp_path / "a")
        assert Path(entry.path).read_bytes() == (dataset / relative).read_bytes()  # same bytes
    write_synthetic_videos(tmp_path / "a", 6, frames=FRAMES, height=HEIGHT, width=WIDTH, seed=3)
    write_synthetic_videos(tmp_path / "b", 6, frames=FRAMES, height=HEIGHT, width=WIDTH, seed=4)
    a = [Path(e.path).read_bytes() for e in read_path_label_list(tmp_path / "a" / "list.txt")]
    b = [Path(e.path).read_bytes() for e in read_path_label_list(tmp_path / "b" / "list.txt")]
    assert a != b


def test_motion_matches_the_class(dataset: Path) -> None:
    classes = (dataset / "classes.txt").read_text().split()
    for entry in read_path_label_list(dataset / "list.txt"):
        motion = classes[entry.label]
        masks = shape_mask(decode(entry.path))
        if motion in ("grow", "shrink"):
            area = masks.reshape(FRAMES, -1).sum(1).astype(float)
            rising = np.mean(area[3:] > area[:-3])  # lag 3; one wrap-around jump at most
            assert (rising > 0.6) if motion == "grow" else (rising < 0.4), (entry.path, area)
            continue
        centres = [circular_centroid(m) for m in masks]
        dx = np.median([wrapped(b[0] - a[0], WIDTH) for a, b in zip(centres, centres[1:])])
        dy = np.median([wrapped(b[1] - a[1], HEIGHT) for a, b in zip(centres, centres[1:])])
        expected = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[motion]
        for step, sign in ((dx, expected[0]), (dy, expected[1])):
            if sign:
                assert sign * step > 0.5, (entry.path, motion, dx, dy)  # at least ~1 px per frame
            else:
                assert abs(step) < 0.3, (entry.path, motion, dx, dy)


def test_one_frame_does_not_tell_the_class() -> None:
    """Position, size: the first frame's distribution is the same whatever the class (KS distance)."""
    features: dict[str, np.ndarray] = {}
    for motion in MOTION_CLASSES:
        rows = []
        for i in range(60):
            first = render_clip(motion, np.random.default_rng([11, i]), 2, HEIGHT, WIDTH)[0]
            mask = shape_mask(first)
            rows.append((*circular_centroid(mask), math.log(mask.sum())))
        features[motion] = np.array(rows)
    pooled = np.concatenate(list(features.values()))
    for motion, values in features.items():
        for column in range(3):
            grid = np.sort(pooled[:, column])
            own = np.searchsorted(np.sort(values[:, column]), grid, side="right") / len(values)
            everyone = np.searchsorted(grid, grid, side="right") / len(grid)
            assert np.abs(own - everyone).max() < 0.3, (motion, column)


def test_rotation_direction_on_screen() -> None:
    """Clockwise on screen (y down) means the long axis angle, measured with y down, grows."""
    checked = 0
    for i in range(40):
        for motion, sign in (("clockwise", 1), ("counterclockwise", -1)):
            video = render_clip(motion, np.random.default_rng([5, i]), 6, HEIGHT, WIDTH,
                                shapes=("ellipse",))
            angles = []
            for mask in shape_mask(video):
                cx, cy = circular_centroid(mask)
                ys, xs = np.nonzero(mask)
                dx = np.array([wrapped(x + 0.5 - cx, WIDTH) for x in xs])
                dy = np.array([wrapped(y + 0.5 - cy, HEIGHT) for y in ys])
                angles.append(0.5 * math.atan2(2 * (dx * dy).mean(), (dx * dx).mean() - (dy * dy).mean()))
            turns = [wrapped(b - a, math.pi) for a, b in zip(angles, angles[1:])]
            assert sign * np.median(turns) > 0, (motion, i, turns)
            checked += 1
        if checked >= 6:
            break


def test_ensure_reuses_complete_sets_and_redoes_partial_ones(tmp_path: Path) -> None:
    settings = dict(frames=6, height=48, width=64, seed=1)
    list_path = ensure_synthetic_videos(tmp_path, 6, **settings)
    clip = Path(read_path_label_list(list_path)[0].path)
    stamp = clip.stat().st_mtime_ns
    assert ensure_synthetic_videos(tmp_path, 6, **settings) == list_path
    assert clip.stat().st_mtime_ns == stamp  # complete and same settings: nothing rewritten
    (tmp_path / DONE_MARKER).unlink()  # as if interrupted before the end
    ensure_synthetic_videos(tmp_path, 6, **settings)
    assert clip.stat().st_mtime_ns != stamp and (tmp_path / DONE_MARKER).is_file()
    ensure_synthetic_videos(tmp_path, 3, **settings)  # other settings: regenerated, stale clips gone
    videos = sorted(p.name for p in (tmp_path / "videos").rglob("*.mp4"))
    assert len(videos) == 3 == len(read_path_label_list(tmp_path / "list.txt"))


def test_write_mp4_refuses_odd_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "odd.mp4", np.zeros((2, 33, 40, 3), np.uint8))
