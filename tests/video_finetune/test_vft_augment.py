"""The fine-tuning train transform (crop, flip, erasing) and the evaluation views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tessera.modalities.video.augment import (FinetuneTrainTransform, random_erasing_box, random_resized_crop_box,
                                              resize_short_side, spatial_view, val_view)

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _gradient_clip(frames: int = 4, height: int = 40, width: int = 48) -> np.ndarray:
    """Brightness grows left to right: a flip turns the horizontal gradient negative."""
    x = np.linspace(0, 255, width).astype(np.uint8)
    return np.broadcast_to(x[None, None, :, None], (frames, height, width, 3)).copy()


def test_train_output_shape_dtype_and_determinism():
    clip = np.random.default_rng(0).integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
    tf = FinetuneTrainTransform(input_size=32)
    out = tf(clip, np.random.default_rng(7))
    assert out.shape == (3, 8, 32, 32) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, tf(clip, np.random.default_rng(7)))
    assert not torch.equal(out, tf(clip, np.random.default_rng(8)))
    # normalised: a mid-grey input maps near (0.5 - mean) / std
    grey = np.full((2, 40, 40, 3), 128, np.uint8)
    plain = FinetuneTrainTransform(input_size=16, randaug=None, erase_prob=0)(grey, np.random.default_rng(0))
    expected = (128 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(plain[:, 0, 0, 0], expected, atol=1e-5)


def test_flip_never_applied_when_off():
    clip = _gradient_clip()
    on = FinetuneTrainTransform(input_size=24, randaug=None, erase_prob=0, flip=True, mean=ZERO, std=ONE)
    off = FinetuneTrainTransform(input_size=24, randaug=None, erase_prob=0, flip=False, mean=ZERO, std=ONE)
    flips_on = 0
    for seed in range(60):
        out = off(clip, np.random.default_rng(seed))
        assert off.last_params["flipped"] is False
        assert (out[0, 0, 0, -1] > out[0, 0, 0, 0]).item()  # still increasing left to right
        out = on(clip, np.random.default_rng(seed))
        flips_on += on.last_params["flipped"]
        assert (out[0, 0, 0, -1] < out[0, 0, 0, 0]).item() == on.last_params["flipped"]
    assert 15 < flips_on < 45


def test_random_resized_crop_box_ranges():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(240, 320, (0.08, 1.0), (0.75, 1.3333), rng)
        assert 0 <= top <= 240 - h and 0 <= left <= 320 - w and h > 0 and w > 0
        if (h, w) != (240, 320):  # not the fallback
            assert 0.08 * 0.95 <= h * w / (240 * 320) <= 1.0
            assert 0.75 * 0.97 <= w / h <= 1.3333 * 1.03
    # a frame too narrow for any try falls back to the centre crop narrowed to the ratio range
    assert random_resized_crop_box(100, 10, (2.0, 3.0), (0.75, 1.3333), rng) == (43, 0, 13, 10)


def test_random_erasing_box_area_and_shape():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_erasing_box(224, 224, rng)
        assert h < 224 and w < 224 and 0 <= top <= 224 - h and 0 <= left <= 224 - w
        share = h * w / 224 ** 2
        assert 0.02 * 0.9 <= share <= (1 / 3) * 1.1
        assert 0.3 * 0.9 <= h / w <= (1 / 0.3) * 1.1


def test_random_erasing_probability_box_per_clip_noise_per_frame():
    clip = np.full((4, 32, 32, 3), 128, np.uint8)
    tf = FinetuneTrainTransform(input_size=32, randaug=None, flip=False, scale=(1, 1), ratio=(1, 1),
                                erase_prob=0.25, mean=(128 / 255,) * 3, std=ONE)
    erased = 0
    for seed in range(400):
        out = tf(clip, np.random.default_rng(seed))  # the un-erased clip is exactly zero
        box = tf.last_params["erase_box"]
        mask = out != 0
        assert bool(mask.any()) == (box is not None)
        if box is None:
            continue
        erased += 1
        top, left, h, w = box
        expected = torch.zeros(32, 32, dtype=torch.bool)
        expected[top:top + h, left:left + w] = True
        assert torch.equal(mask.any(0).any(0), expected)  # the same box in every frame
        for t in range(4):
            assert torch.equal(mask[:, t].any(0), expected)
        region = out[:, :, top:top + h, left:left + w]
        assert not torch.equal(region[:, 0], region[:, 1])  # fresh noise for each frame
    assert 70 < erased < 130  # p = 0.25 of 400 (sd ~ 8.7)
    never = FinetuneTrainTransform(input_size=32, randaug=None, erase_prob=0.0, mean=(128 / 255,) * 3, std=ONE)
    assert all(not never(clip, np.random.default_rng(s)).any() for s in range(20))


def _column_clip(height: int, width: int) -> np.ndarray:
    """Channel 0 holds the column mod 256, channel 1 the column // 256: a crop tells where it starts."""
    cols = np.arange(width)
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = cols % 256
    frame[..., 1] = cols // 256
    return np.stack([frame, frame])


def _first_column(video: torch.Tensor) -> int:
    values = (video[:, 0, 0, 0] * 255).round().long()
    return int(values[0] + 256 * values[1])


def test_eval_views_at_reference_positions():
    clip = _column_clip(224, 298)  # already at short side 224: no resize
    starts = [_first_column(spatial_view(clip, k, 3, 224, ZERO, ONE)) for k in range(3)]
    assert starts == [0, 37, 74]
    view = val_view(clip, 224, 224, ZERO, ONE)
    assert view.shape == (3, 2, 224, 224) and _first_column(view) == 37
    portrait = np.ascontiguousarray(_column_clip(224, 298).transpose(0, 2, 1, 3))  # 298 high, 224 wide
    rows = [spatial_view(portrait, k, 3, 224, ZERO, ONE) for k in range(3)]
    assert [int((r[0, 0, 0, 0] * 255).round()) for r in rows] == [0, 37, 74]


def test_resize_short_side_sizes():
    clip = np.full((2, 240, 320, 3), 77, np.uint8)
    out = resize_short_side(clip, 224)
    assert out.shape == (2, 224, 298, 3) and out.dtype == torch.uint8 and int(out.min()) == int(out.max()) == 77
    assert resize_short_side(clip[:, :224], 224).shape == (2, 224, 320, 3)  # short side already 224
    assert spatial_view(clip, 1, 3, 224).shape == (3, 2, 224, 224)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        FinetuneTrainTransform(erase_mode="boxes")
    with pytest.raises(ValueError):
        FinetuneTrainTransform(erase_prob=1.5)
    with pytest.raises(ValueError):
        FinetuneTrainTransform()(np.zeros((2, 8, 8, 3), np.float32), np.random.default_rng(0))
    assert math.isclose(0.25, FinetuneTrainTransform().erase_prob)
