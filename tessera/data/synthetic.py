"""Synthetic motion videos: real .mp4 files whose class only motion can tell.

A tiny recipe needs video data that exercises the whole reading path (libx264 in an mp4, decoded by
decord) and a label that a model must look at several frames to get. So every clip shows one shape
on a textured background, and its class is how the shape moves. All motion wraps around the frame
(positions on a torus, log-size on a circle, angle on a circle) with a uniformly random phase, so
any single frame has the same distribution of position, size and orientation whatever the class.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

MOTION_CLASSES: tuple[str, ...] = ("right", "left", "down", "up", "grow", "shrink")
ROTATION_CLASSES: tuple[str, ...] = ("clockwise", "counterclockwise")
KNOWN_MOTIONS: tuple[str, ...] = MOTION_CLASSES + ROTATION_CLASSES
# A circle looks the same when rotated, so when rotation classes are present circles are left out
# for every class (leaving them out only for rotations would let one frame say "not a rotation").
SHAPES: tuple[str, ...] = ("circle", "ellipse", "square", "triangle")

DONE_MARKER = "DONE"
_OWN_FILE = re.compile(r"^\.?[a-z]+_\d{5}(\.tmp\d+)?\.mp4$")  # clips and their temp names
# Background stays inside [60, 190]; every shape has one channel <= 25 or >= 230, so a shape pixel is
# always far from the background in at least one channel (tests find the shape by threshold).
_BG_BASE = (95.0, 155.0)
_BG_TEXTURE = 22.0
_GRAIN_STD = 4.0
_NOISE_STD = 2.0


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Static low-frequency colour texture plus static grain: something for a reconstruction to learn."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    for channel in range(3):
        layer = np.full((height, width), rng.uniform(*_BG_BASE), np.float32)
        for _ in range(3):  # three plane waves of 0.5 to 2 cycles across the frame
            angle = rng.uniform(0, 2 * math.pi)
            cycles = rng.uniform(0.5, 2.0)
            phase = rng.uniform(0, 2 * math.pi)
            fx, fy = math.cos(angle) * cycles / width, math.sin(angle) * cycles / height
            layer += (_BG_TEXTURE / 3) * np.sin(2 * math.pi * (fx * xx + fy * yy) + phase)
        image[..., channel] = layer
    image += _GRAIN_STD * rng.standard_normal(image.shape, dtype=np.float32)
    return image


def _shape_colour(rng: np.random.Generator) -> np.ndarray:
    colour = rng.uniform(0, 255, 3)
    channel = rng.integers(3)
    colour[channel] = rng.uniform(0, 25) if rng.random() < 0.5 else rng.uniform(230, 255)
    return colour.astype(np.float32)


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray, radius: np.ndarray, aspect: float) -> np.ndarray:
    """Approximate distance in pixels outside the shape (negative inside), in shape-local coordinates."""
    if shape == "circle":
        return np.sqrt(u * u + v * v) - radius
    if shape == "ellipse":
        minor = radius * aspect
        return (np.sqrt((u / radius) ** 2 + (v / minor) ** 2) - 1.0) * minor
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85 * radius
    if shape == "triangle":  # equilateral, inradius 0.6 r, one vertex pointing along -v
        dist = None
        for k in range(3):
            theta = math.pi / 2 + k * 2 * math.pi / 3
            edge = u * math.cos(theta) + v * math.sin(theta) - 0.6 * radius
            dist = edge if dist is None else np.maximum(dist, edge)
        return dist
    raise ValueError(f"unknown shape {shape!r}")


def _wrap(value: np.ndarray, period: float) -> np.ndarray:
    """Offset folded into [-period/2, period/2): distance on a torus."""
    return np.mod(value + period / 2, period) - period / 2


def render_clip(motion: str, rng: np.random.Generator, frames: int, height: int, width: int,
                shapes: Sequence[str] = SHAPES) -> np.ndarray:
    """One clip as uint8 (T, H, W, 3); every random choice comes from `rng`."""
    if motion not in KNOWN_MOTIONS:
        raise ValueError(f"unknown motion class {motion!r}; known: {', '.join(KNOWN_MOTIONS)}")
    background = _background(rng, height, width)
    shape = shapes[rng.integers(len(shapes))]
    colour = _shape_colour(rng)
    aspect = rng.uniform(0.45, 0.7)
    short = min(height, width)
    log_min, log_max = math.log(0.09 * short), math.log(0.24 * short)
    t = np.arange(frames, dtype=np.float64)
    # Uniform phase on every circle: position, log-size and angle of frame 0 say nothing about the class.
    cx = rng.uniform(0, width) + np.zeros_like(t)
    cy = rng.uniform(0, height) + np.zeros_like(t)
    log_r = rng.uniform(log_min, log_max) + np.zeros_like(t)
    angle = rng.uniform(0, 2 * math.pi) + np.zeros_like(t)
    speed = rng.uniform(0.012, 0.03)  # fraction of the axis per frame
    scale_rate = rng.uniform(0.015, 0.035)  # change of log-size per frame
    spin = math.radians(rng.uniform(3.0, 8.0))  # per frame; under 45 deg even at stride 4
    if motion == "right":
        cx = cx + speed * width * t
    elif motion == "left":
        cx = cx - speed * width * t
    elif motion == "down":
        cy = cy + speed * height * t
    elif motion == "up":
        cy = cy - speed * height * t
    elif motion == "grow":
        log_r = log_r + scale_rate * t
    elif motion == "shrink":
        log_r = log_r - scale_rate * t
    elif motion == "clockwise":  # image y points down, so a growing angle turns clockwise on screen
        angle = angle + spin * t
    else:
        angle = angle - spin * t
    log_r = log_min + np.mod(log_r - log_min, log_max - log_min)
    cx, cy, angle = cx.astype(np.float32), cy.astype(np.float32), angle.astype(np.float32)
    radius = np.exp(log_r).astype(np.float32)[:, None, None]
    # Pixel centres; dx varies only along x and dy only along y, so keep them thin and broadcast.
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    dx = _wrap(xs[None, None, :] - cx[:, None, None], width)
    dy = _wrap(ys[None, :, None] - cy[:, None, None], height)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    alpha = np.clip(0.5 - _signed_distance(shape, u, v, radius, aspect), 0.0, 1.0)[..., None]
    video = background[None] + alpha * (colour - background[None])
    video += _NOISE_STD * rng.standard_normal(video.shape, dtype=np.float32)
    video += 0.5  # round half up on the cast below
    return np.clip(video, 0, 255, out=video).astype(np.uint8)


def write_mp4(path: str | Path, video: np.ndarray, fps: int = 25) -> None:
    """Encode uint8 (T, H, W, 3) with libx264/yuv420p, to a temp name first so no half file remains."""
    import av

    frames, height, width, _ = video.shape
    if height % 2 or width % 2:
        raise ValueError(f"{path}: yuv420p needs an even height and width, got {height}x{width}")
    path = Path(path)
    temp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
    with av.open(str(temp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # One thread and fixed settings: the same frames give the same bytes.
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    os.replace(temp, path)


def _check_decord_reads(path: Path, frames: int, height: int, width: int) -> None:
    """decord 0.6 fails on some widths (16, 24, 48, 72 here); say so at once, not in a worker later."""
    try:
        import decord
    except ImportError:  # nothing to check against
        return
    try:
        reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
        shape = tuple(reader.get_batch([0, len(reader) - 1]).asnumpy().shape)
        count = len(reader)
    except Exception as error:  # decord raises RuntimeError and DECORDError (not a RuntimeError)
        raise ValueError(f"{path}: decord cannot read back a {width}x{height} (WxH) video ({error}); "
                         f"use a size known to work, e.g. 80x64, 64x48, 160x128") from error
    if count != frames or shape[1:] != (height, width, 3):
        raise ValueError(f"{path}: decord reads back {count} frames of {shape[1:]}, expected {frames} of "
                         f"{(height, width, 3)}; use a size known to work, e.g. 80x64, 64x48, 160x128")


def _settings(num_videos: int, frames: int, height: int, width: int, fps: int, seed: int,
              classes: Sequence[str]) -> dict:
    return {"num_videos": int(num_videos), "frames": int(frames), "height": int(height), "width": int(width),
            "fps": int(fps), "seed": int(seed), "classes": list(classes), "version": 1}


def _remove_own_videos(out: Path) -> None:
    """Clear files an earlier (interrupted or different) generation left, touching only our own names."""
    videos = out / "videos"
    if not videos.is_dir():
        return
    for folder in videos.iterdir():
        if folder.is_dir():
            for file in folder.iterdir():
                if _OWN_FILE.match(file.name):
                    file.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()


def write_synthetic_videos(out_dir: str | Path, num_videos: int, *, frames: int = 32, height: int = 64,
                           width: int = 80, fps: int = 25, seed: int = 0,
                           classes: Sequence[str] = MOTION_CLASSES) -> Path:
    """Write `num_videos` balanced clips, classes.txt and a `path label` list.txt; return the list path.

    The DONE marker (holding the settings) is written last, so an interrupted run is never taken
    for a complete one. Deterministic for a seed: each clip draws from its own seeded generator.
    """
    classes = tuple(classes)
    unknown = [name for name in classes if name not in KNOWN_MOTIONS]
    if unknown or len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be distinct names from {', '.join(KNOWN_MOTIONS)}; got {list(classes)}")
    if num_videos < 1 or frames < 2:
        raise ValueError(f"need at least 1 video of 2 frames, got {num_videos} videos of {frames} frames")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / DONE_MARKER
    marker.unlink(missing_ok=True)
    _remove_own_videos(out)
    shapes = SHAPES if not set(classes) & set(ROTATION_CLASSES) else tuple(s for s in SHAPES if s != "circle")
    # Balanced labels (i mod C), then a seeded shuffle so neighbouring files differ in class.
    labels = np.random.default_rng([seed, 0]).permutation(np.arange(num_videos) % len(classes))
    lines = []
    for i, label in enumerate(labels.tolist()):
        name = classes[label]
        folder = out / "videos" / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}_{i:05d}.mp4"
        video = render_clip(name, np.random.default_rng([seed, 1, i]), frames, height, width, shapes)
        write_mp4(path, video, fps)
        if i == 0:
            _check_decord_reads(path, frames, height, width)
        lines.append(f"{path.relative_to(out).as_posix()} {label}\n")
    _write_text(out / "classes.txt", "".join(f"{name}\n" for name in classes))
    list_path = out / "list.txt"
    _write_text(list_path, "".join(lines))
    settings = _settings(num_videos, frames, height, width, fps, seed, classes)
    _write_text(marker, json.dumps(settings, sort_keys=True) + "\n")
    return list_path


def ensure_synthetic_videos(out_dir: str | Path, num_videos: int, *, frames: int = 32, height: int = 64,
                            width: int = 80, fps: int = 25, seed: int = 0,
                            classes: Sequence[str] = MOTION_CLASSES) -> Path:
    """Generate on first use: reuse a complete set made with the same settings, else (re)write it.

    With several processes (DDP), call it on one rank and wait: two writers would each clear the other.
    """
    out = Path(out_dir)
    marker = out / DONE_MARKER
    wanted = _settings(num_videos, frames, height, width, fps, seed, classes)
    if marker.is_file() and (out / "list.txt").is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == wanted:
                return out / "list.txt"
        except ValueError:  # an unreadable marker is as good as none
            pass
    return write_synthetic_videos(out, num_videos, frames=frames, height=height, width=width, fps=fps,
                                  seed=seed, classes=classes)


def _write_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


__all__ = ["MOTION_CLASSES", "ROTATION_CLASSES", "KNOWN_MOTIONS", "SHAPES", "render_clip", "write_mp4",
           "write_synthetic_videos", "ensure_synthetic_videos"]
