"""Which frames, and which part of each frame, a fine-tuning or evaluation clip of VideoMAE uses.

Every function here reproduces the reference's arithmetic (MCG-NJU/VideoMAE @14ef8d8: kinetics.py
`VideoClsDataset.loadvideo_decord` / `__getitem__`, ssv2.py `SSVideoClsDataset`, functional.py
`get_resize_sizes`, video_transforms.py `CenterCrop`), including its float-to-int truncations, so a
model fine-tuned or tested here sees the very frames and pixels the reference shows it. Randomness
comes from the `np.random.Generator` passed in (the sample's own generator), never from global state.

Two sampling schemes (reference/videomae_ssast.md A1):
  * "dense" (I3D; K400, UCF101, HMDB51): a random window of clip_len * stride frames, clip_len
    indices spread over it by linspace including both ends;
  * "tsn" (SSv2): clip_len equal segments, one random frame in each.
"""

from __future__ import annotations

import numpy as np


def _check(num_frames: int, clip_len: int, stride: int = 1) -> None:
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len} and {stride}")


# --------------------------------------------------------------------------------------------------
# Training (and the reference's validation, which samples as in training)


def dense_train_indices(num_frames: int, clip_len: int, stride: int, rng: np.random.Generator) -> list[int]:
    """I3D dense sampling, kinetics.py `loadvideo_decord` (num_segment=1, as datasets.py sets it).

    window = clip_len * stride (64 for 16 x 4).
      * num_frames > window: end = randint(window, num_frames) (numpy's exclusive high, so
        end in [window, num_frames - 1]); start = end - window; linspace(start, end, clip_len)
        (both ends included, spacing window / (clip_len - 1), about 4.27), clipped to
        [start, end - 1], truncated to int. So the last index is end - 1, never `end`.
      * num_frames <= window (short video): linspace(0, n, n // stride) then padded up to clip_len
        with n, all clipped to [0, n - 1]: the frames spread over the whole video and the
        missing ones repeat the last frame. E.g. n=30, stride 4: 0,5,10,15,20,25,29, then 29 x 9.
    """
    _check(num_frames, clip_len, stride)
    window = clip_len * stride
    if num_frames <= window:
        count = num_frames // stride
        index = np.linspace(0, num_frames, num=count)
        index = np.concatenate((index, np.ones(clip_len - count) * num_frames))
        index = np.clip(index, 0, num_frames - 1).astype(np.int64)
    else:
        end = int(rng.integers(window, num_frames))
        start = end - window
        index = np.linspace(start, end, num=clip_len)
        index = np.clip(index, start, end - 1).astype(np.int64)
    return [int(i) for i in index]


def tsn_train_indices(num_frames: int, clip_len: int, rng: np.random.Generator) -> list[int]:
    """TSN segment sampling, ssv2.py `loadvideo_decord` (num_segment = num_frames = 16, clip_len 1).

    length = n // clip_len; index k = k * length + randint(length), one vectorised draw of clip_len
    offsets (as the reference's `np.random.randint(average_duration, size=num_segment)`). A video
    shorter than clip_len frames gives frame 0 clip_len times (the reference's `np.zeros` branch;
    its `len(vr) > num_segment` branch cannot be reached, since length 0 means n < clip_len).
    """
    _check(num_frames, clip_len)
    length = num_frames // clip_len
    if length > 0:
        index = np.arange(clip_len) * length + rng.integers(length, size=clip_len)
        return [int(i) for i in index]
    return [0] * clip_len


# --------------------------------------------------------------------------------------------------
# The multi-view test


def dense_test_indices(num_frames: int, clip_len: int, stride: int, num_clips: int) -> list[list[int]]:
    """The K400 / UCF101 / HMDB51 test clips, kinetics.py `loadvideo_decord` (mode 'test') + `__getitem__`.

    The whole video is taken at `stride` (0, s, 2s, ...), padded to clip_len with its last entry;
    with L entries, clip k starts at int(k * max((L - clip_len) / (num_clips - 1), 0)) in that list
    and takes clip_len consecutive entries. Section D: 100 frames at stride 4 give starts 0,2,4,6,9,
    300 frames 0,14,29,44,59; 64 frames or fewer give five identical clips.
    Deviation: for num_clips == 1 the reference divides by zero; we take the centre window,
    start (L - clip_len) // 2.
    """
    _check(num_frames, clip_len, stride)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    frames = list(range(0, num_frames, stride))
    while len(frames) < clip_len:
        frames.append(frames[-1])
    if num_clips == 1:
        starts = [(len(frames) - clip_len) // 2]
    else:
        step = max(1.0 * (len(frames) - clip_len) / (num_clips - 1), 0)
        starts = [int(k * step) for k in range(num_clips)]
    return [frames[s:s + clip_len] for s in starts]


def dense_test_starts(num_frames: int, clip_len: int, stride: int, num_clips: int) -> list[int]:
    """Where each test clip starts, counted in the stride-`stride` frame list (section D's numbers)."""
    return [clip[0] // stride for clip in dense_test_indices(num_frames, clip_len, stride, num_clips)]


def tsn_test_indices(num_frames: int, clip_len: int, num_clips: int) -> list[list[int]]:
    """The SSv2 test clips, ssv2.py `loadvideo_decord` (mode 'test') + `__getitem__`.

    tick = n / clip_len; the reference lists the segment centres int(tick / 2 + tick * k) and the
    segment starts int(tick * k), pads to clip_len * num_clips with the last entry, sorts, and clip c
    takes every second entry from position c (`buffer[c::2]`). Because start_k <= centre_k <=
    start_{k+1}, the sorted list interleaves them: clip 0 = the segment starts, clip 1 = the centres.
    num_clips 1 gives the starts; more than 2 clips would give clips of the wrong length in the
    reference (it only runs with 2), so they are refused.
    """
    _check(num_frames, clip_len)
    if not 1 <= num_clips <= 2:
        raise ValueError(f"TSN testing takes 1 or 2 clips (segment starts, centres), got {num_clips}")
    tick = num_frames / float(clip_len)
    index = [int(tick / 2.0 + tick * k) for k in range(clip_len)] + [int(tick * k) for k in range(clip_len)]
    while len(index) < clip_len * num_clips:
        index.append(index[-1])
    index.sort()
    return [index[c::2] for c in range(num_clips)]


def center_clip_indices(num_frames: int, clip_len: int, stride: int, sampling: str) -> list[int]:
    """A deterministic single clip: the centre dense window, or the TSN segment centres.

    Not the reference's validation (which samples as in training, with a random window); offered
    for a validation score that does not move between evaluations.
    """
    if sampling == "dense":
        return dense_test_indices(num_frames, clip_len, stride, 1)[0]
    if sampling == "tsn":
        return tsn_test_indices(num_frames, clip_len, 2)[1]
    raise ValueError(f"sampling must be 'dense' or 'tsn', got {sampling!r}")


# --------------------------------------------------------------------------------------------------
# Spatial positions of the evaluation views


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_h, new_w) with the short side at `size`, functional.py `get_resize_sizes`.

    The long side is int(size * long / short), truncated: 240x320 -> 224x298 (section D's 298).
    A square frame counts as "height is short" (the reference's `else` branch); the result is the same.
    """
    if height < 1 or width < 1 or size < 1:
        raise ValueError(f"need a positive frame and size, got {height}x{width} and {size}")
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


def spatial_crop_starts(long_side: int, crop: int, num_crops: int) -> list[int]:
    """Offsets along the long side of the test crops, kinetics.py / ssv2.py `__getitem__` (mode 'test').

    step = (long_side - crop) / (num_crops - 1); crop k starts at int(k * step): 298 px, crop 224,
    3 crops -> 0, 37, 74 (section D). Deviation: for one crop the reference divides by zero; we
    take the centre crop's offset (as `center_crop_box`).
    """
    if crop < 1 or num_crops < 1:
        raise ValueError(f"crop and num_crops must be >= 1, got {crop} and {num_crops}")
    if long_side < crop:
        raise ValueError(f"a {crop} px crop does not fit a {long_side} px side")
    if num_crops == 1:
        return [int(round((long_side - crop) / 2.0))]
    step = 1.0 * (long_side - crop) / (num_crops - 1)
    return [int(k * step) for k in range(num_crops)]


def spatial_view_box(height: int, width: int, crop: int, crop_index: int, num_crops: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of test crop `crop_index` in a frame already resized to short side `crop`.

    The reference slides a `crop`-long window along the long side and keeps the whole short side
    (`buffer[:, s:s + short_side_size]` when height >= width, else along the width).
    """
    if not 0 <= crop_index < num_crops:
        raise ValueError(f"crop_index must be in [0, {num_crops}), got {crop_index}")
    if height >= width:
        top = spatial_crop_starts(height, crop, num_crops)[crop_index]
        return top, 0, min(crop, height), width
    left = spatial_crop_starts(width, crop, num_crops)[crop_index]
    return 0, left, height, min(crop, width)


def center_crop_box(height: int, width: int, crop: int) -> tuple[int, int, int, int]:
    """(top, left, crop, crop), video_transforms.py `CenterCrop`: offsets int(round((side - crop) / 2)).

    Python's round halves to even, as the reference's: (299 - 224) / 2 = 37.5 -> 38, 36.5 -> 36.
    """
    if crop > height or crop > width:
        raise ValueError(f"a {crop}x{crop} centre crop does not fit a {height}x{width} frame")
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0)), crop, crop


__all__ = ["dense_train_indices", "tsn_train_indices", "dense_test_indices", "dense_test_starts",
           "tsn_test_indices", "center_clip_indices", "short_side_size", "spatial_crop_starts",
           "spatial_view_box", "center_crop_box"]
