"""MAE reconstruction pictures for the run directory: the quickest check that pretraining learns.

One PNG, three labelled rows (original, masked input, reconstruction), a few frames spread over the
clip. Tiny clips are enlarged with nearest-neighbour so patches stay crisp and visible.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROW_LABELS: tuple[str, ...] = ("original", "masked", "reconstruction")
MIN_FRAME_PX = 96
LABEL_WIDTH = 112
GAP = 2
_BACKGROUND = (255, 255, 255)


def frame_picks(num_frames: int, max_frames: int) -> list[int]:
    """Up to max_frames indices spread evenly from the first to the last frame."""
    count = max(1, min(num_frames, max_frames))
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, count)})


def _to_frames(clip: torch.Tensor, picks: list[int], scale: int) -> list[np.ndarray]:
    """(C, T, H, W) float [0, 1] -> list of uint8 (H*scale, W*scale, 3) for the picked frames."""
    data = torch.nan_to_num(clip.detach().to("cpu", torch.float32), nan=0.0).clamp(0, 1)
    if data.shape[0] == 1:
        data = data.expand(3, *data.shape[1:])
    pixels = (data[:, picks] * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()  # (t, H, W, 3)
    return [frame.repeat(scale, axis=0).repeat(scale, axis=1) for frame in pixels]


def save_reconstruction_png(path: str | Path, original: torch.Tensor, masked: torch.Tensor,
                            reconstruction: torch.Tensor, max_frames: int = 8) -> Path:
    """Write the three rows as one PNG (temp name, then rename: a reader never sees half a file)."""
    rows = (original, masked, reconstruction)
    shapes = {tuple(r.shape) for r in rows}
    if len(shapes) != 1 or original.ndim != 4 or original.shape[0] not in (1, 3):
        raise ValueError(f"{path}: expected three clips of one shape (C, T, H, W), C 1 or 3, got "
                         f"{[tuple(r.shape) for r in rows]}")
    _, frames, height, width = original.shape
    picks = frame_picks(frames, max_frames)
    scale = max(1, math.ceil(MIN_FRAME_PX / min(height, width)))
    cell_h, cell_w = height * scale, width * scale
    canvas = Image.new("RGB", (LABEL_WIDTH + len(picks) * (cell_w + GAP), 3 * (cell_h + GAP)), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for row, (label, clip) in enumerate(zip(ROW_LABELS, rows)):
        y = row * (cell_h + GAP)
        draw.text((4, y + cell_h // 2 - 6), label, fill=(0, 0, 0), font=font)
        for col, frame in enumerate(_to_frames(clip, picks, scale)):
            canvas.paste(Image.fromarray(frame), (LABEL_WIDTH + col * (cell_w + GAP), y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    canvas.save(temp, format="PNG")
    os.replace(temp, path)
    return path
