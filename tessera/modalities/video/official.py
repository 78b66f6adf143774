"""VideoMAE's released checkpoints, mapped onto our module names.

Pretraining releases hold `{"model": ...}` with `encoder.`-prefixed keys and no position keys (the
fixed sin-cos table is rebuilt); fine-tuned ones come from DeepSpeed as `{"module": ...}` with
`patch_embed.`, `blocks.`, `fc_norm.`, `head.` keys (reference A8, run_class_finetuning.py).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from tessera.train.checkpoint import FORMAT, CheckpointError

# (reference pattern, our name), first match wins; applied after the `encoder.` prefix is handled
_PRETRAIN_RULES = [
    (r"^encoder\.patch_embed\.proj\.", "tokenizer.proj."),
    (r"^encoder\.pos_embed$", "tokenizer.pos_embed"),
    (r"^encoder\.blocks\.", "encoder.blocks."),
    (r"^encoder\.norm\.", "encoder.norm."),
    (r"^encoder_to_decoder\.", "decoder.encoder_to_decoder."),
    (r"^mask_token$", "decoder.mask_token"),
    (r"^decoder\.(blocks|norm|head)\.", r"decoder.\1."),
]
_FINETUNE_RULES = [
    (r"^(?:backbone\.|encoder\.)?patch_embed\.proj\.", "tokenizer.proj."),
    (r"^(?:backbone\.|encoder\.)?pos_embed$", "tokenizer.pos_embed"),
    (r"^(?:backbone\.|encoder\.)?blocks\.", "encoder.blocks."),
    (r"^(?:backbone\.|encoder\.)?norm\.", "encoder.norm."),
    (r"^fc_norm\.", "head.fc_norm."),
    (r"^head\.", "head.head."),
]


def _rename(weights: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> tuple[dict[str, torch.Tensor], list[str]]:
    renamed, unknown = {}, []
    for key, value in weights.items():
        for pattern, target in rules:
            if re.match(pattern, key):
                renamed[re.sub(pattern, target, key)] = value
                break
        else:
            unknown.append(key)
    return renamed, unknown


def convert_videomae_weights(raw: dict, source: str) -> dict[str, torch.Tensor]:
    """Our names for a VideoMAE pretraining (`model`) or fine-tuned (`module`) checkpoint's tensors."""
    for container in ("model", "module"):
        if isinstance(raw.get(container), dict):
            weights = raw[container]
            break
    else:
        weights = raw if all(torch.is_tensor(v) for v in raw.values()) else None
    if not weights:
        raise CheckpointError(f"{source}: not a VideoMAE checkpoint (no `model` or `module` dict of tensors)")
    pretrain = any(k.startswith(("encoder.patch_embed.", "encoder_to_decoder.")) for k in weights)
    renamed, unknown = _rename(weights, _PRETRAIN_RULES if pretrain else _FINETUNE_RULES)
    if unknown:
        raise CheckpointError(f"{source}: keys with no place in our model: {', '.join(sorted(unknown)[:8])}")
    return renamed


def read_initial_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Weights to start fine-tuning from: one of our checkpoints, or a VideoMAE release.

    Read with `weights_only=True`; the releases' pickled `args` (an argparse.Namespace) is allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a checkpoint dict ({type(raw).__name__})")
    if raw.get("format") == FORMAT:
        return raw["model"], "tessera"
    return convert_videomae_weights(raw, str(path)), "videomae"
