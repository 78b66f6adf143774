"""GroupMultiScaleCrop boxes (MCG-NJU/VideoMAE:transforms.py), resize, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.modalities.video.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    crop_resize_clip,
    fixed_crop_offsets,
    multiscale_crop_box,
    multiscale_crop_sizes,
    normalize_clip_batch,
)

SCALES = (1, .875, .75, .66)


def test_crop_sizes_match_reference_runs() -> None:
    # Reference section D: 320x240 -> 240/210/180/158; 340x256 -> 256/224/192/168.
    assert multiscale_crop_sizes(240, 224, SCALES) == [240, 210, 180, 158]
    assert multiscale_crop_sizes(256, 224, SCALES) == [256, 224, 192, 168]
    # Snap only when strictly less than 3 px away (`abs(x - size) < 3`).
    assert multiscale_crop_sizes(226, 224, (1,)) == [224]
    assert multiscale_crop_sizes(227, 224, (1,)) == [227]


def test_ten_pairs_and_thirteen_offsets_all_inside() -> None:
    rng = np.random.default_rng(0)
    boxes = [multiscale_crop_box(240, 320, 224, SCALES, 1, rng) for _ in range(4000)]
    sizes = [240, 210, 180, 158]
    expected_pairs = {(sizes[i], sizes[j]) for i in range(4) for j in range(4) if abs(i - j) <= 1}
    assert len(expected_pairs) == 10
    assert {(h, w) for _, _, h, w in boxes} == expected_pairs
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 240 and 0 <= left and left + w <= 320
    corners = {(t, l) for t, l, h, w in boxes if (h, w) == (180, 210)}
    assert corners == set(fixed_crop_offsets(240, 320, 180, 210)) and len(corners) == 13


def test_offset_order_is_the_reference_order() -> None:
    # w_step = (320-210)//4 = 27, h_step = (240-180)//4 = 15; reference lists (w, h) offsets.
    ws, hs = 27, 15
    expected_wh = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs),
                   (0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                   (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
    assert fixed_crop_offsets(240, 320, 180, 210) == [(h, w) for w, h in expected_wh]


@pytest.mark.parametrize("height,width,out", [(64, 80, 32), (64, 80, 224), (222, 300, 224), (256, 340, 224)])
def test_boxes_fit_any_frame(height: int, width: int, out: int) -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        top, left, h, w = multiscale_crop_box(height, width, out, SCALES, 1, rng)
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width and h > 0 and w > 0


def test_same_seed_same_box() -> None:
    draw = lambda seed: multiscale_crop_box(240, 320, 224, SCALES, 1, np.random.default_rng(seed))  # noqa: E731
    assert draw(7) == draw(7)
    assert len({draw(s) for s in range(50)}) > 10


def test_crop_resize_shape_and_constant() -> None:
    frames = np.full((5, 60, 70, 3), 37, np.uint8)
    out = crop_resize_clip(frames, (3, 4, 40, 50), 32)
    assert out.shape == (3, 5, 32, 32) and out.dtype == torch.uint8
    assert torch.all(out == 37)
    same = crop_resize_clip(torch.from_numpy(frames), (0, 0, 32, 32), 32)  # no resize needed
    assert same.shape == (3, 5, 32, 32) and torch.all(same == 37)


def test_crop_resize_takes_the_box_and_matches_pil_bilinear() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    frames[:, :, :, 0] = np.arange(160, dtype=np.uint8)[None, None, :]  # horizontal gradient in red
    box = (10, 20, 99, 105)  # top, left, h, w
    out = crop_resize_clip(frames, box, 64)
    for t in range(2):
        pil = Image.fromarray(frames[t]).crop((20, 10, 20 + 105, 10 + 99)).resize((64, 64), Image.BILINEAR)
        diff = np.abs(out[:, t].permute(1, 2, 0).numpy().astype(int) - np.asarray(pil).astype(int))
        assert diff.max() <= 1
    red = out[0, 0].float()
    assert torch.all(red[:, 1:] >= red[:, :-1])  # the gradient keeps its direction
    assert 20 <= red.min() <= 22 and 122 <= red.max() <= 124  # spans columns 20..124 of the ramp


def test_crop_resize_refuses_boxes_outside_the_frame() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        crop_resize_clip(np.zeros((1, 10, 10, 3), np.uint8), (5, 0, 6, 4), 4)


def test_normalize_against_hand_computation() -> None:
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 1, 3).expand(2, 3, 2, 4, 3).contiguous()
    out = normalize_clip_batch(x, IMAGENET_MEAN, IMAGENET_STD)
    assert out.dtype == torch.float32 and out.shape == x.shape
    for c, (m, s) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD)):
        expected = torch.tensor([(0 - m) / s, (0.2 - m) / s, (1 - m) / s])
        assert torch.allclose(out[1, c, 1, 3], expected, atol=1e-6)
    assert x.dtype == torch.uint8 and int(x.max()) == 255  # input untouched
    float_in = torch.rand(1, 3, 2, 2, 2)
    before = float_in.clone()
    normalize_clip_batch(float_in)
    assert torch.equal(float_in, before)
    with pytest.raises(ValueError):
        normalize_clip_batch(torch.zeros(1, 4, 2, 2, 2, dtype=torch.uint8))
