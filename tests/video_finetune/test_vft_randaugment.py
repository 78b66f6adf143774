"""Video RandAugment: timm's ops, one draw per clip, every frame treated alike, seeded by the sample."""

from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image
from timm.data import auto_augment as timm_aa

from tessera.modalities.video.randaugment import VideoRandAugment


def _clip(seed: int = 0, frames: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)


def test_reference_config_builds_timm_ops():
    ra = VideoRandAugment("rand-m7-n4-mstd0.5-inc1", input_size=224, interpolation="bicubic")
    assert [op.name for op in ra.ops] == list(timm_aa._RAND_INCREASING_TRANSFORMS)
    assert ra.num_layers == 4 and ra.choice_weights is None
    op = ra.ops[0]
    assert op.magnitude == 7 and op.magnitude_std == 0.5 and op.prob == 0.5
    assert op.kwargs["fillcolor"] == (128, 128, 128) and op.kwargs["resample"] == Image.Resampling.BICUBIC
    assert op.hparams["translate_const"] == 100  # int(224 * 0.45)


def test_one_draw_applied_identically_to_every_frame():
    ra = VideoRandAugment()
    frame = _clip(1, 1)
    same = np.repeat(frame, 8, axis=0)
    changed = 0
    for seed in range(20):
        out = ra(same, np.random.default_rng(seed))
        assert all(np.array_equal(out[0], out[t]) for t in range(8))
        changed += not np.array_equal(out, same)
    assert changed > 10
    # different frames: the clip result equals each frame augmented alone with the same drawn ops
    clip = _clip(2)
    for seed in range(10):
        ops = ra.draw(np.random.default_rng(seed))
        out = ra.apply(clip, ops)
        for t in range(clip.shape[0]):
            assert np.array_equal(out[t], ra.apply(clip[t:t + 1], ops)[0])


def test_same_seed_same_result_different_seeds_differ():
    ra = VideoRandAugment()
    clip = _clip(3)
    outs = [ra(clip, np.random.default_rng(s)) for s in range(8)]
    assert np.array_equal(outs[0], ra(clip, np.random.default_rng(0)))
    assert len({o.tobytes() for o in outs}) > 4
    draws = [[(op.name, op.args) for op in ra.draw(np.random.default_rng(s))] for s in range(30)]
    assert draws[0] == [(op.name, op.args) for op in ra.draw(np.random.default_rng(0))]
    assert len({repr(d) for d in draws}) > 20
    # about half the chosen ops are skipped (prob 0.5): on average 2 of 4 remain
    mean_kept = np.mean([len(ra.draw(np.random.default_rng(s))) for s in range(400)])
    assert 1.7 < mean_kept < 2.3


def test_python_random_state_is_left_alone():
    ra = VideoRandAugment()
    random.seed(123)
    before = random.getstate()
    ra(_clip(4), np.random.default_rng(5))
    assert random.getstate() == before


def test_magnitudes_follow_gauss_7_half():
    ra = VideoRandAugment()
    mags = [op.magnitude for s in range(300) for op in ra.draw(np.random.default_rng(s))]
    assert abs(np.mean(mags) - 7) < 0.1 and 0.4 < np.std(mags) < 0.6


def test_tensor_in_tensor_out_and_posterize_zero_bits():
    ra = VideoRandAugment()
    clip = torch.from_numpy(_clip(5))
    out = ra(clip, np.random.default_rng(0))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == clip.shape
    # magnitude 10 gives PosterizeIncreasing 0 bits: black, as old Pillow, not an error
    op = next(o for o in ra.ops if o.name == "PosterizeIncreasing")
    from tessera.modalities.video import randaugment as module
    drawn = module.DrawnOp(op.name, 10.0, (0,), dict(op.kwargs), 0, module._posterize_to_black)
    assert ra.apply(_clip(6), [drawn]).max() == 0
