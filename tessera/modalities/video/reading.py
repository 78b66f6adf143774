"""Decoding frames with decord, and VideoMAE's pretraining choice of which frames to decode.

decord reports trouble three ways (RuntimeError on open, `decord.DECORDError` on a corrupt frame,
often only at get_batch, IndexError out of range); callers see one `VideoReadError` naming the file,
which the robust dataset wrapper can count and skip.
"""

from __future__ import annotations

import os
from typing import Sequence

import decord
import numpy as np

# decord.DECORDError derives from Exception, not RuntimeError, so it is listed on its own.
_DECORD_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, decord.DECORDError, IndexError, ValueError)


class VideoReadError(RuntimeError):
    """A video that cannot be opened or decoded; `path` and `reason` are kept for the bad-file report.

    `args` holds (path, reason) so the error pickles; a one-argument call is accepted because a
    DataLoader re-raises a worker's error as `type(msg)` and would otherwise fall back to RuntimeError.
    """

    def __init__(self, path: str, reason: str | None = None) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        if self.reason is None:  # a ready message, re-raised from a DataLoader worker
            return str(self.path)
        return f"cannot read video {self.path}: {self.reason}"


def open_video(path: str) -> decord.VideoReader:
    """Open on the CPU with one thread, as the reference does (MCG-NJU/VideoMAE:kinetics.py, DATASET.md).

    Parallelism comes from DataLoader workers; more decoder threads per worker only oversubscribe.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoReadError(path, "file does not exist")
    if not os.path.isfile(path):
        raise VideoReadError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "file is empty (0 bytes)")
    try:
        return decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
    except _DECORD_ERRORS as error:
        raise VideoReadError(path, f"decord cannot open it ({_first_line(error)})") from error


def pretrain_clip_indices(num_frames: int, clip_len: int, stride: int, rng: np.random.Generator) -> list[int]:
    """Frame indices of one pretraining clip, exactly as VideoMAE picks them.

    Reproduces MCG-NJU/VideoMAE:kinetics.py `VideoMAE._sample_train_indices` followed by
    `_video_TSN_decord_batch_loader` with num_segments=1 and no temporal jitter:
      * span = clip_len * stride; if num_frames >= span the (1-based) offset is 1 + randint(n - span + 1),
        i.e. a 0-based start uniform in [0, n - span]; otherwise the start is 0.
      * each step appends (offset - 1), then advances the offset by `stride` only while
        offset + stride < num_frames (strict, 1-based), so once that fails the last frame reached
        repeats. A consequence kept on purpose: stepping never lands on the video's last frame
        (0-based n - 1), e.g. n=16, clip 16, stride 1 gives 0..14 then 14 again.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len} and {stride}")
    span = clip_len * stride
    start = int(rng.integers(num_frames - span + 1)) if num_frames >= span else 0
    offset = start + 1  # the reference counts frames from 1 here
    indices = []
    for _ in range(clip_len):
        indices.append(offset - 1)
        if offset + stride < num_frames:
            offset += stride
    return indices


def read_frames(reader: decord.VideoReader, path: str, indices: Sequence[int]) -> np.ndarray:
    """Decode `indices` from an open reader as uint8 (T, H, W, 3); any decord failure names `path`."""
    indices = [int(i) for i in indices]
    total = len(reader)
    outside = [i for i in indices if not 0 <= i < total]
    if outside:
        raise VideoReadError(path, f"frame index {outside[0]} is outside the video's {total} frames")
    try:
        frames = reader.get_batch(indices).asnumpy()
    except _DECORD_ERRORS as error:
        raise VideoReadError(path, f"decoding frames failed ({_first_line(error)})") from error
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        # decord 0.6 has returned 4-channel frames for some widths (e.g. 48 px wide libx264).
        raise VideoReadError(path, f"decoded {frames.shape} {frames.dtype}, expected (T, H, W, 3) uint8")
    return frames


def read_clip(path: str, indices: Sequence[int]) -> np.ndarray:
    """Open `path` and decode `indices` as uint8 (T, H, W, 3)."""
    return read_frames(open_video(path), os.fspath(path), indices)


def count_frames(path: str) -> int:
    """Number of frames decord reports (from the container index, so cheap)."""
    return len(open_video(path))


def _first_line(error: BaseException) -> str:
    """decord messages carry a C++ stack trace; its first line says what went wrong."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
