"""One-file checkpoints, written atomically and read back with `weights_only=True`.

Only tensors and plain Python values go in (weights_only refuses numpy, Path and custom classes), so a
checkpoint from a stranger cannot run code on load, and one from us always loads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "tessera-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "model", "step", "config")


class CheckpointError(ValueError):
    """A file that is not a readable Tessera checkpoint; the message names the path and the reason."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` to a temporary file beside `path`, flush it to disk, then rename over `path`.

    A crash at any point leaves either the previous file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint we wrote; anything else is refused with the path and the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a torn or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a torch file: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        kind = f"keys {sorted(state)[:6]}" if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not a Tessera checkpoint (no format marker; found {kind})")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')} is not supported (expected {VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return state
