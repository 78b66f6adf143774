"""VideoMAE's pretraining augmentation: one multi-scale corner crop per clip, resize, normalise.

The box is drawn on the CPU (cheap, and it needs the sample's generator); the crop and resize run
in the worker on uint8 frames; normalisation waits for the accelerator, so only uint8 crosses the bus.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# timm's IMAGENET_DEFAULT_MEAN / STD, used by MCG-NJU/VideoMAE:datasets.py `DataAugmentationForVideoMAE`.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def multiscale_crop_sizes(base: int, out_size: int, scales: Sequence[float]) -> list[int]:
    """Crop sides for each scale: int(base * scale), snapped to out_size when less than 3 px away.

    As in MCG-NJU/VideoMAE:transforms.py `GroupMultiScaleCrop._sample_crop_size` (`abs(x - size) < 3`).
    """
    return [out_size if abs(int(base * s) - out_size) < 3 else int(base * s) for s in scales]


def fixed_crop_offsets(height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
    """The 13 candidate (top, left) corners, in the reference's order.

    MCG-NJU/VideoMAE:transforms.py `GroupMultiScaleCrop.fill_fix_offset` with more_fix_crop=True lists
    (w_offset, h_offset) with w_step=(W-cw)//4, h_step=(H-ch)//4 as: upper left, upper right, lower
    left, lower right, centre, centre left, centre right, lower centre, upper centre, then the four
    quarter points (1,1), (3,1), (1,3), (3,3) in (w, h) steps. Returned here as (top, left).
    """
    ws, hs = (width - crop_w) // 4, (height - crop_h) // 4
    steps_wh = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2),
                (0, 2), (4, 2), (2, 4), (2, 0),
                (1, 1), (3, 1), (1, 3), (3, 3)]
    return [(h * hs, w * ws) for w, h in steps_wh]


def multiscale_crop_box(height: int, width: int, out_size: int, scales: Sequence[float], max_distort: int,
                        rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w) as GroupMultiScaleCrop(fix_crop=True, more_fix_crop=True) draws it.

    Base is the short side; (w, h) pairs whose scale indices differ by at most `max_distort` are listed
    h-major (outer loop over heights, as the reference), one pair is drawn uniformly, then one of the
    13 fixed corners uniformly. The reference draws with python's `random.choice`; we draw with `rng`
    so a sample's seed fixes its crop.
    Deviation: when snapping to out_size would make a crop larger than the frame (short side 1-2 px
    under out_size), the reference crops past the border (PIL pads with black); we clamp to the frame.
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame must be at least 1x1, got {height}x{width}")
    sizes = multiscale_crop_sizes(min(height, width), out_size, scales)
    heights = [min(s, height) for s in sizes]
    widths = [min(s, width) for s in sizes]
    pairs = [(w, h) for i, h in enumerate(heights) for j, w in enumerate(widths) if abs(i - j) <= max_distort]
    if not pairs:
        raise ValueError(f"no crop sizes for scales {list(scales)} and max_distort {max_distort}")
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    if crop_w < 1 or crop_h < 1:
        raise ValueError(f"scales {list(scales)} give an empty crop of a {height}x{width} frame")
    offsets = fixed_crop_offsets(height, width, crop_h, crop_w)
    top, left = offsets[int(rng.integers(len(offsets)))]
    return top, left, crop_h, crop_w


def crop_resize_clip(frames: np.ndarray | torch.Tensor, box: tuple[int, int, int, int], out_size: int) -> torch.Tensor:
    """Crop every frame with the same box and resize to out_size²: uint8 (T, H, W, 3) -> uint8 (3, T, S, S).

    The reference resizes PIL images with Image.BILINEAR (transforms.py `GroupMultiScaleCrop.__call__`),
    which filters over the whole footprint when shrinking; torch's bilinear with antialias=True follows
    the same algorithm (results agree within 1 grey level), plain bilinear would alias.
    """
    video = torch.as_tensor(frames)
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {tuple(video.shape)} {video.dtype}")
    top, left, crop_h, crop_w = box
    height, width = video.shape[1], video.shape[2]
    if top < 0 or left < 0 or top + crop_h > height or left + crop_w > width or crop_h < 1 or crop_w < 1:
        raise ValueError(f"crop box {box} (top, left, h, w) does not fit a {height}x{width} frame")
    video = video[:, top:top + crop_h, left:left + crop_w].permute(0, 3, 1, 2)  # (T, 3, h, w), channels-last
    if (crop_h, crop_w) != (out_size, out_size):
        if video.device.type == "cpu":
            # torch's uint8 antialiased bilinear kernel: ~10x faster than a float round trip on a CPU
            # (bench/data_loading.py) and within one grey level of it, as of PIL
            video = F.interpolate(video, size=(out_size, out_size), mode="bilinear", align_corners=False,
                                  antialias=True)
        else:
            resized = F.interpolate(video.float(), size=(out_size, out_size), mode="bilinear",
                                    align_corners=False, antialias=True)
            video = resized.round_().clamp_(0, 255).to(torch.uint8)
    return video.permute(1, 0, 2, 3).contiguous()  # (3, T, S, S)


def normalize_clip_batch(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                         std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 (..., 3, T, H, W) -> float32 ((x / 255) - mean) / std on x's device.

    Same arithmetic as the reference (ToTorchFormatTensor(div=True), then GroupNormalize), done after
    the uint8 batch reaches the accelerator so the transfer is a quarter of the float size.
    """
    if x.ndim < 4 or x.shape[-4] != len(mean) or len(mean) != len(std):
        raise ValueError(f"expected (..., C, T, H, W) with C={len(mean)} channels, got {tuple(x.shape)}")
    mean_t, std_t = _channel_constants(tuple(map(float, mean)), tuple(map(float, std)), x.device)
    return x.to(dtype=torch.float32, copy=True).div_(255.0).sub_(mean_t).div_(std_t)


@lru_cache(maxsize=16)
def _channel_constants(mean: tuple[float, ...], std: tuple[float, ...],
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Made once per device: no host-to-device copy in every training step."""
    shape = (len(mean), 1, 1, 1)
    return (torch.tensor(mean, dtype=torch.float32, device=device).view(shape),
            torch.tensor(std, dtype=torch.float32, device=device).view(shape))
