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


class LoadReport:
    """What a by-name load took, left out and could not place; printed when fine-tuning starts."""

    def __init__(self, source: str, loaded: list[str], missing: list[str], unexpected: list[str],
                 dropped: list[str]) -> None:
        self.source, self.loaded, self.missing, self.unexpected, self.dropped = source, loaded, missing, unexpected, dropped

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")

        lines = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        if self.missing:
            lines.append(f"  missing (kept at their initial values): {few(self.missing)}")
        if self.unexpected:
            lines.append(f"  unused from the checkpoint: {few(self.unexpected)}")
        if self.dropped:
            lines.append(f"  dropped for a different shape (a new task head): {few(self.dropped)}")
        return "\n".join(lines)


def load_weights(
    module: torch.nn.Module, weights: dict[str, torch.Tensor], source: str, replaceable: tuple[str, ...] = ("head.",)
) -> LoadReport:
    """Load `weights` into `module` by name; keys the module lacks are reported, not fatal.

    A shape mismatch is refused naming the keys, except under `replaceable` prefixes (a classifier
    trained for another label set), which are dropped as the reference's fine-tuning does.
    """
    own = module.state_dict()
    shapes = {k: tuple(v.shape) for k, v in own.items() if torch.is_tensor(v)}
    mismatched = [k for k, v in weights.items() if k in shapes and torch.is_tensor(v) and tuple(v.shape) != shapes[k]]
    dropped = [k for k in mismatched if k.startswith(replaceable)]
    fatal = [k for k in mismatched if k not in dropped]
    if fatal:
        detail = "; ".join(f"{k}: checkpoint {tuple(weights[k].shape)} vs model {shapes[k]}" for k in fatal[:5])
        raise CheckpointError(f"{source}: {len(fatal)} tensors do not fit the model ({detail})")
    usable = {k: v for k, v in weights.items() if k in own and k not in dropped}
    result = module.load_state_dict(usable, strict=False)
    unexpected = sorted(k for k in weights if k not in own)
    missing = sorted(k for k in result.missing_keys if not k.endswith("_extra_state"))
    return LoadReport(source, sorted(usable), missing, unexpected, sorted(dropped))
