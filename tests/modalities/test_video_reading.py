"""decord reading and VideoMAE's pretraining frame indices (MCG-NJU/VideoMAE:kinetics.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tessera.data.synthetic import write_mp4
from tessera.modalities.video.reading import (
    VideoReadError,
    count_frames,
    open_video,
    pretrain_clip_indices,
    read_clip,
)


def indices(n: int, clip: int, stride: int, seed: int = 0) -> list[int]:
    return pretrain_clip_indices(n, clip, stride, np.random.default_rng(seed))


# Hand-derived from the reference: 1-based offset starts at 1 when n < clip*stride; append offset-1;
# advance by stride only while offset + stride < n.
def test_short_video_repeats_last_reached_frame() -> None:
    # n=30, 16x4: offsets 1,5,...,29 (29+4=33 is not < 30) -> 0,4,...,28 then 28 eight more times.
    assert indices(30, 16, 4) == [0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8
    # n=29: from offset 25, 25+4=29 is not < 29, so frame 28 exists but is never reached.
    assert indices(29, 16, 4) == [0, 4, 8, 12, 16, 20, 24] + [24] * 9
    # n == clip*stride with stride 1: the start is 0 and the last frame (15) is never reached.
    assert indices(16, 16, 1) == list(range(15)) + [14]
    assert indices(1, 4, 2) == [0, 0, 0, 0]
    assert indices(5, 4, 2) == [0, 2, 2, 2]


def test_exact_span_starts_at_zero() -> None:
    assert all(indices(64, 16, 4, seed) == list(range(0, 64, 4)) for seed in range(20))


def test_long_video_start_is_uniform_over_the_valid_range() -> None:
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(2000):
        clip = pretrain_clip_indices(100, 16, 4, rng)
        assert clip == [clip[0] + 4 * k for k in range(16)]  # no repeats, no jitter
        starts.append(clip[0])
    # n - clip*stride = 36: starts 0..36, each about 2000/37 = 54 times.
    counts = np.bincount(starts, minlength=37)
    assert len(counts) == 37 and counts.min() > 25


def test_long_video_near_the_end() -> None:
    # n=66, 8x8 (span 64): starts 0..2; from start 2 the last index is 58 (offset 59; 51+8=59 < 66).
    seen = {tuple(indices(66, 8, 8, seed)) for seed in range(100)}
    assert seen == {tuple(range(s, s + 64, 8)) for s in range(3)}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        indices(0, 16, 4)
    with pytest.raises(ValueError):
        indices(10, 0, 4)


@pytest.fixture(scope="module")
def numbered_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frame i is a flat grey of 20*i, so a decoded frame tells its own index."""
    path = tmp_path_factory.mktemp("reading") / "numbered.mp4"
    frames = np.stack([np.full((48, 64, 3), 20 * i, np.uint8) for i in range(12)])
    write_mp4(path, frames)
    return path


def test_read_clip_returns_the_asked_frames(numbered_video: Path) -> None:
    assert count_frames(str(numbered_video)) == 12
    clip = read_clip(str(numbered_video), [0, 5, 5, 11])
    assert clip.shape == (4, 48, 64, 3) and clip.dtype == np.uint8
    assert np.allclose(clip.reshape(4, -1).mean(1), [0, 100, 100, 220], atol=3)


def test_out_of_range_index_names_the_file(numbered_video: Path) -> None:
    with pytest.raises(VideoReadError, match=r"numbered\.mp4.*index 12 is outside"):
        read_clip(str(numbered_video), [0, 12])


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "folder", "truncated"])
def test_unreadable_files_raise_video_read_error(tmp_path: Path, numbered_video: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "truncated":
        path.write_bytes(numbered_video.read_bytes()[:2000])
    with pytest.raises(VideoReadError) as caught:
        read_clip(str(path), [0])
    assert str(path) in str(caught.value) and caught.value.path == str(path)
    with pytest.raises(VideoReadError):
        open_video(str(path))


def test_corrupt_frames_become_video_read_error(tmp_path: Path) -> None:
    # decord 0.6 cannot convert 48-px-wide libx264 frames: it raises DECORDError (not a RuntimeError)
    # at get_batch, which must reach the caller as VideoReadError naming the file.
    path = tmp_path / "width48.mp4"
    write_mp4(path, np.zeros((4, 40, 48, 3), np.uint8))
    with pytest.raises(VideoReadError, match="width48.mp4"):
        read_clip(str(path), [0, 1])


def test_video_read_error_pickles_with_its_fields() -> None:
    error = pickle.loads(pickle.dumps(VideoReadError("a b.mp4", "moov atom not found")))
    assert (error.path, error.reason) == ("a b.mp4", "moov atom not found")
    assert str(error) == "cannot read video a b.mp4: moov atom not found"
