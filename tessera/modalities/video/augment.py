"""VideoMAE's fine-tuning augmentation and its evaluation views.

Train (MCG-NJU/VideoMAE kinetics.py / ssv2.py `_aug_frame`, in this order):
  video RandAugment on the full frames -> /255 and ImageNet normalisation -> random resized crop
  (scale 0.08-1, ratio 0.75-1.3333, one box for the clip, plain bilinear resize to 224) ->
  horizontal flip p=0.5 (not for SSv2) -> random erasing p=0.25, pixel mode, 1 box.
Eval (kinetics.py `data_transform` / `data_resize`): short side resized to 224 (bilinear, as
cv2.INTER_LINEAR), then one centre crop (validation) or one of 3 crops along the long side (test).

Every output is float32 (3, T, S, S), normalised: random erasing fills with N(0, 1) noise in the
normalised space, which uint8 cannot hold, so normalisation is done here, not on the device.
All randomness is drawn from the `np.random.Generator` passed in, in the reference's order.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tessera.modalities.video.randaugment import VideoRandAugment
from tessera.modalities.video.sampling import center_crop_box, short_side_size, spatial_view_box
from tessera.modalities.video.transforms import IMAGENET_MEAN, IMAGENET_STD

# kinetics.py `_aug_frame`: scl, asp = [0.08, 1.0], [0.75, 1.3333] (1.3333, not 4/3).
RRC_SCALE: tuple[float, float] = (0.08, 1.0)
RRC_RATIO: tuple[float, float] = (0.75, 1.3333)


def _as_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    video = torch.as_tensor(frames)
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {tuple(video.shape)} {video.dtype}")
    return video


def _normalize_(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """float (T, 3, H, W) in [0, 255] -> (x / 255 - mean) / std in place (ToTensor, then Normalize)."""
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return x.div_(255.0).sub_(m).div_(s)


# --------------------------------------------------------------------------------------------------
# Random resized crop, flip, random erasing


def random_resized_crop_box(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                            rng: np.random.Generator, attempts: int = 10) -> tuple[int, int, int, int]:
    """(top, left, h, w), video_transforms.py `_get_param_spatial_crop` (log_scale=True, switch_hw=False).

    Up to 10 tries: area share uniform in `scale`, aspect exp(uniform(log ratio)), w = round(sqrt(a r)),
    h = round(sqrt(a / r)); accepted when 0 < w <= W and 0 < h <= H, corner uniform (inclusive).
    Else the fallback: the whole frame, narrowed to the ratio range if the frame is outside it, centred.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target_area = float(rng.uniform(scale[0], scale[1])) * area
        aspect = math.exp(float(rng.uniform(*log_ratio)))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_resize_float(frames: torch.Tensor, box: tuple[int, int, int, int], out_size: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, S, S) in [0, 255]: crop, then plain bilinear resize.

    The reference resizes the normalised float crop with `F.interpolate(mode="bilinear",
    align_corners=False)` and no antialiasing (video_transforms.py `random_resized_crop`). Bilinear
    weights sum to one, so resizing before normalising gives the same values (to float rounding)
    while converting only the crop to float.
    """
    top, left, h, w = box
    crop = frames[:, top:top + h, left:left + w].permute(0, 3, 1, 2).float()
    if (h, w) == (out_size, out_size):
        return crop.contiguous()
    return F.interpolate(crop, size=(out_size, out_size), mode="bilinear", align_corners=False)


def random_erasing_box(height: int, width: int, rng: np.random.Generator, min_area: float = 0.02,
                       max_area: float = 1 / 3, min_aspect: float = 0.3, count: int = 1,
                       attempts: int = 100) -> tuple[int, int, int, int] | None:
    """(top, left, h, w) of one erased box, random_erasing.py `RandomErasing._erase_cube`, or None.

    The cube variant (VideoMAE's default, `cube=True`) draws one box for the whole clip: up to 100
    tries of area uniform in [0.02, 1/3] x H x W / count and aspect exp(uniform(log 0.3, log 1/0.3)),
    h = round(sqrt(a r)), w = round(sqrt(a / r)), accepted when w < W and h < H (strict), corner
    uniform (inclusive). The probability gate is the caller's.
    """
    area = height * width
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    for _ in range(attempts):
        target_area = float(rng.uniform(min_area, max_area)) * area / count
        aspect = math.exp(float(rng.uniform(*log_aspect)))
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < width and h < height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return None


def erase_clip_(video: torch.Tensor, box: tuple[int, int, int, int], rng: np.random.Generator,
                mode: str = "pixel") -> torch.Tensor:
    """Fill `box` of every frame of float (3, T, S, S) in place: same box for the clip, fresh noise per frame.

    random_erasing.py `_erase_cube` loops over the frames calling `_get_pixels` for each: "pixel" mode
    draws N(0, 1) per pixel and channel for each frame, "rand" one N(0, 1) colour per channel for each
    frame, "const" zeros (the normalised mean).
    """
    top, left, h, w = box
    channels, frames = video.shape[0], video.shape[1]
    if mode == "pixel":
        fill = rng.standard_normal((frames, channels, h, w), dtype=np.float32)
    elif mode == "rand":
        fill = np.broadcast_to(rng.standard_normal((frames, channels, 1, 1), dtype=np.float32),
                               (frames, channels, h, w))
    elif mode == "const":
        fill = np.zeros((frames, channels, h, w), np.float32)
    else:
        raise ValueError(f"erase mode must be 'pixel', 'rand' or 'const', got {mode!r}")
    video[:, :, top:top + h, left:left + w] = torch.from_numpy(np.ascontiguousarray(fill)).permute(1, 0, 2, 3)
    return video


class FinetuneTrainTransform:
    """`transform(frames, rng) -> float (3, T, S, S)`: the reference's `_aug_frame`, one clip.

    randaug None turns RandAugment off; erase_prob 0 turns erasing off; flip False for SSv2.
    `last_params` keeps the latest draw (box, flipped, erase box, ops) for tests and pictures.
    """

    def __init__(self, input_size: int = 224, randaug: str | None = "rand-m7-n4-mstd0.5-inc1",
                 interpolation: str = "bicubic", scale: Sequence[float] = RRC_SCALE,
                 ratio: Sequence[float] = RRC_RATIO, flip: bool = True, erase_prob: float = 0.25,
                 erase_mode: str = "pixel", erase_count: int = 1,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if input_size < 1:
            raise ValueError(f"input_size must be >= 1, got {input_size}")
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"need 0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1], got {scale}, {ratio}")
        if not 0.0 <= erase_prob <= 1.0 or erase_count < 1:
            raise ValueError(f"erase_prob must be in [0, 1] and erase_count >= 1, got {erase_prob}, {erase_count}")
        if erase_mode not in ("pixel", "rand", "const"):
            raise ValueError(f"erase_mode must be 'pixel', 'rand' or 'const', got {erase_mode!r}")
        self.input_size = input_size
        # create_random_augment gets input_size=(crop_size, crop_size) in _aug_frame
        self.randaug = VideoRandAugment(randaug, input_size, interpolation) if randaug else None
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip = flip
        self.erase_prob = float(erase_prob)
        self.erase_mode = erase_mode
        self.erase_count = int(erase_count)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.last_params: dict = {}

    def __call__(self, frames: np.ndarray | torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        video = _as_frames(frames)
        ops = self.randaug.draw(rng) if self.randaug is not None else []
        if ops:
            video = self.randaug.apply(video, ops)
        height, width = video.shape[1], video.shape[2]
        box = random_resized_crop_box(height, width, self.scale, self.ratio, rng)
        clip = _normalize_(crop_resize_float(video, box, self.input_size), self.mean, self.std)  # (T, 3, S, S)
        clip = clip.permute(1, 0, 2, 3)  # (3, T, S, S), a view
        flipped = False
        if self.flip:  # video_transforms.horizontal_flip: np.random.uniform() < 0.5; no draw when off
            flipped = bool(rng.random() < 0.5)
            if flipped:
                clip = clip.flip(-1)
        clip = clip.contiguous()
        erase_box = None
        # random_erasing.py: `if random.random() > self.probability: return`, then count boxes; with
        # min_count == max_count (VideoMAE: max_count = num_splits = --recount 1) no count draw.
        if self.erase_prob > 0 and not rng.random() > self.erase_prob:
            count = self.erase_count if self.erase_count == 1 else int(rng.integers(1, self.erase_count + 1))
            for _ in range(count):
                erase_box = random_erasing_box(self.input_size, self.input_size, rng, count=count)
                if erase_box is not None:
                    erase_clip_(clip, erase_box, rng, self.erase_mode)
        self.last_params = {"ops": [(op.name, op.args) for op in ops], "box": box, "flipped": flipped,
                            "erase_box": erase_box}
        return clip


# --------------------------------------------------------------------------------------------------
# Evaluation views


def resize_short_side(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, H', W', 3) with the short side at `size`, kinetics.py
    `video_transforms.Resize(short_side_size, interpolation='bilinear')` -> functional.py `resize_clip`.

    The reference calls cv2.resize(INTER_LINEAR) on the uint8 frames: half-pixel bilinear without
    antialiasing, rounded back to uint8. torch's bilinear (align_corners=False, antialias=False)
    is the same interpolation; cv2's fixed-point arithmetic may differ by one grey level.
    A frame whose short side is already `size` is left as it is (as the reference).
    """
    video = _as_frames(frames)
    height, width = video.shape[1], video.shape[2]
    new_h, new_w = short_side_size(height, width, size)
    if (new_h, new_w) == (height, width):
        return video
    resized = F.interpolate(video.permute(0, 3, 1, 2).float(), size=(new_h, new_w), mode="bilinear",
                            align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _to_clip(video: torch.Tensor, box: tuple[int, int, int, int], mean: Sequence[float],
             std: Sequence[float]) -> torch.Tensor:
    top, left, h, w = box
    crop = video[:, top:top + h, left:left + w].permute(0, 3, 1, 2).float()  # (T, 3, h, w)
    return _normalize_(crop, mean, std).permute(1, 0, 2, 3).contiguous()


def val_view(frames: np.ndarray | torch.Tensor, short_side: int = 224, crop: int = 224,
             mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """The validation view: short side to `short_side`, centre crop `crop`, normalised float (3, T, c, c)."""
    video = resize_short_side(frames, short_side)
    return _to_clip(video, center_crop_box(video.shape[1], video.shape[2], crop), mean, std)


def spatial_view(frames: np.ndarray | torch.Tensor, crop_index: int, num_crops: int = 3, short_side: int = 224,
              mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Test crop `crop_index` of `num_crops`: short side to `short_side`, a short_side-long window at
    int(k * (long - short) / (num_crops - 1)) along the long side, the short side whole."""
    video = resize_short_side(frames, short_side)
    box = spatial_view_box(video.shape[1], video.shape[2], short_side, crop_index, num_crops)
    return _to_clip(video, box, mean, std)


__all__ = ["RRC_SCALE", "RRC_RATIO", "random_resized_crop_box", "crop_resize_float", "random_erasing_box",
           "erase_clip_", "FinetuneTrainTransform", "resize_short_side", "val_view", "spatial_view"]
