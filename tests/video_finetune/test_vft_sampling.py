"""Fine-tuning and test frame indices and view positions, against reference section D and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.modalities.video.sampling import (center_clip_indices, center_crop_box, dense_test_indices,
                                               dense_test_starts, dense_train_indices, short_side_size,
                                               spatial_crop_starts, spatial_view_box, tsn_test_indices,
                                               tsn_train_indices)


class FixedRng:
    """Stands in for np.random.Generator where a test fixes the draw."""

    def __init__(self, value):
        self.value = value

    def integers(self, *args, size=None):
        return self.value if size is None else np.asarray(self.value)


# ---- section D: the K400 test views (5 clips x 3 crops, short side 224)

def test_dense_test_starts_match_section_d():
    assert dense_test_starts(100, 16, 4, 5) == [0, 2, 4, 6, 9]
    assert dense_test_starts(300, 16, 4, 5) == [0, 14, 29, 44, 59]
    for n in (64, 63, 40, 10, 1):  # 64 frames or fewer: five identical clips
        clips = dense_test_indices(n, 16, 4, 5)
        assert all(c == clips[0] for c in clips) and len(clips) == 5


def test_dense_test_clips_hold_strided_frames():
    clips = dense_test_indices(100, 16, 4, 5)
    assert clips[0] == list(range(0, 64, 4))
    assert clips[4] == list(range(36, 100, 4))  # start 9 in the stride-4 list is frame 36
    assert all(len(c) == 16 for c in clips)
    # a short video: the stride-4 list padded with its last entry
    assert dense_test_indices(30, 16, 4, 5)[0] == [0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8


def test_spatial_test_crops_match_section_d():
    assert short_side_size(240, 320, 224) == (224, 298)  # int(224 * 320 / 240) = 298
    assert short_side_size(320, 240, 224) == (298, 224)
    assert short_side_size(256, 340, 224) == (224, 297)
    assert spatial_crop_starts(298, 224, 3) == [0, 37, 74]
    # landscape crops slide along the width, portrait along the height, the short side whole
    assert [spatial_view_box(224, 298, 224, k, 3) for k in range(3)] == [(0, 0, 224, 224), (0, 37, 224, 224),
                                                                       (0, 74, 224, 224)]
    assert spatial_view_box(298, 224, 224, 2, 3) == (74, 0, 224, 224)
    assert spatial_crop_starts(224, 224, 3) == [0, 0, 0]


def test_center_crop_rounds_like_the_reference():
    assert center_crop_box(224, 298, 224) == (0, 37, 224, 224)
    assert center_crop_box(224, 299, 224)[1] == 38  # round(37.5) -> 38 (half to even)
    assert center_crop_box(224, 297, 224)[1] == 36  # round(36.5) -> 36
    with pytest.raises(ValueError):
        center_crop_box(200, 298, 224)


# ---- I3D dense training sampling

def test_dense_train_hand_derived():
    # end = 100 drawn: window [36, 100], linspace step 64/15, the end clipped to 99, truncated
    assert dense_train_indices(200, 16, 4, FixedRng(100)) == [36, 40, 44, 48, 53, 57, 61, 65, 70, 74, 78, 82,
                                                              87, 91, 95, 99]
    # exactly 64 frames: the short-video branch, linspace(0, 64, 16) clipped to 63
    assert dense_train_indices(64, 16, 4, FixedRng(None)) == [0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51,
                                                              55, 59, 63]


def test_dense_train_short_video_is_padded_with_last_frame():
    # 30 frames: linspace(0, 30, 7) = 0,5,...,30 -> clipped to 29, then 9 more of the last frame
    assert dense_train_indices(30, 16, 4, np.random.default_rng(0)) == [0, 5, 10, 15, 20, 25, 29] + [29] * 9
    assert dense_train_indices(3, 16, 4, np.random.default_rng(0)) == [2] * 16  # 3 // 4 = 0 spread frames
    assert dense_train_indices(1, 16, 4, np.random.default_rng(0)) == [0] * 16


def test_dense_train_window_range():
    rng = np.random.default_rng(0)
    ends = set()
    for _ in range(300):
        idx = dense_train_indices(70, 16, 4, rng)
        assert len(idx) == 16 and idx == sorted(idx)
        start, last = idx[0], idx[-1]
        assert 0 <= start <= 70 - 1 - 64 and last == start + 63  # end - 1, end in [64, 69]
        ends.add(start + 64)
    assert ends == set(range(64, 70))


# ---- TSN (SSv2)

def test_tsn_train_one_frame_per_segment():
    rng = np.random.default_rng(1)
    for n in (16, 50, 123):
        length = n // 16
        for _ in range(20):
            idx = tsn_train_indices(n, 16, rng)
            assert all(k * length <= i < (k + 1) * length for k, i in enumerate(idx))
    assert tsn_train_indices(50, 16, FixedRng(np.arange(16) % 3)) == [k * 3 + k % 3 for k in range(16)]


def test_tsn_short_video_repeats_frame_zero():
    assert tsn_train_indices(10, 16, np.random.default_rng(0)) == [0] * 16


def test_tsn_test_sets_are_segment_starts_then_centres():
    starts, centres = tsn_test_indices(50, 16, 2)  # tick = 3.125
    assert starts == [int(3.125 * k) for k in range(16)]
    assert centres == [int(1.5625 + 3.125 * k) for k in range(16)]
    assert starts == [0, 3, 6, 9, 12, 15, 18, 21, 25, 28, 31, 34, 37, 40, 43, 46]
    assert centres == [1, 4, 7, 10, 14, 17, 20, 23, 26, 29, 32, 35, 39, 42, 45, 48]
    assert tsn_test_indices(50, 16, 1) == [starts]
    short = tsn_test_indices(8, 16, 2)  # fewer frames than segments still indexes inside the video
    assert all(0 <= i < 8 for clip in short for i in clip) and all(len(c) == 16 for c in short)
    with pytest.raises(ValueError):
        tsn_test_indices(50, 16, 3)


def test_single_clip_and_crop_take_the_centre():
    assert dense_test_indices(100, 16, 4, 1)[0][0] == (25 - 16) // 2 * 4
    assert spatial_crop_starts(298, 224, 1) == [37]
    assert center_clip_indices(50, 16, 4, "tsn") == tsn_test_indices(50, 16, 2)[1]
    assert center_clip_indices(100, 16, 4, "dense") == dense_test_indices(100, 16, 4, 1)[0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        dense_train_indices(0, 16, 4, np.random.default_rng(0))
    with pytest.raises(ValueError):
        dense_test_indices(10, 16, 4, 0)
    with pytest.raises(ValueError):
        spatial_crop_starts(100, 224, 3)
