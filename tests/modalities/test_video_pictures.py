"""Reconstruction pictures: a readable PNG of the expected layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.modalities.video.pictures import GAP, LABEL_WIDTH, frame_picks, save_reconstruction_png


def test_png_layout_and_pixels(tmp_path: Path) -> None:
    original = torch.rand(3, 16, 32, 32)
    masked = original * (torch.rand(1, 16, 32, 32) > 0.9)
    reconstruction = torch.full_like(original, 0.5)
    path = save_reconstruction_png(tmp_path / "pics" / "step_100.png", original, masked, reconstruction)
    assert path.is_file() and not list(path.parent.glob(".*"))  # no temp file left behind
    image = Image.open(path)
    image.load()
    cell = 96  # 32 px enlarged 3x to reach at least 96 px
    assert image.mode == "RGB" and image.size == (LABEL_WIDTH + 8 * (cell + GAP), 3 * (cell + GAP))
    pixels = np.asarray(image)
    first = (original[:, 0, 0, 0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(pixels[0, LABEL_WIDTH], first) and np.array_equal(pixels[2, LABEL_WIDTH + 2], first)
    assert np.all(pixels[2 * (cell + GAP) + 5, LABEL_WIDTH + 5] == 128)  # reconstruction row: grey 0.5


def test_few_frames_grey_and_large_frames(tmp_path: Path) -> None:
    clip = torch.rand(1, 3, 120, 100)
    path = save_reconstruction_png(tmp_path / "grey.png", clip, clip, clip, max_frames=8)
    assert Image.open(path).size == (LABEL_WIDTH + 3 * (100 + GAP), 3 * (120 + GAP))


def test_frame_picks_spread_evenly() -> None:
    assert frame_picks(16, 8) == [0, 2, 4, 6, 9, 11, 13, 15]
    assert frame_picks(3, 8) == [0, 1, 2]
    assert frame_picks(1, 8) == [0]


def test_mismatched_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one shape"):
        save_reconstruction_png(tmp_path / "x.png", torch.rand(3, 2, 8, 8), torch.rand(3, 2, 8, 8),
                                torch.rand(3, 2, 4, 4))
