"""How a model is spread over processes (DDP replicas or FSDP shards) and how its state is gathered.

The checkpoint always holds full tensors under the plain module names, whatever the strategy.
"""

from __future__ import annotations

import torch
from torch import nn

from tessera.train.distributed import DistInfo


def is_block(module: nn.Module) -> bool:
    """A transformer block of any kind the core builds (timm Block, beit Block, TransformerEncoderLayer)."""
    return type(module).__name__ in {"Block", "TransformerEncoderLayer"}


def wrap(objective: nn.Module, dist: DistInfo, strategy: str, device: torch.device) -> nn.Module:
    """The module the training step calls: the objective itself, a DDP replica, or FSDP2 shards."""
    if not dist.enabled:
        return objective
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for module in objective.modules():  # one FSDP unit per transformer block, then the rest
            if module is not objective and is_block(module):
                fully_shard(module)
        fully_shard(objective)
        return objective
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)


def gather_state(objective: nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> tuple[dict, dict]:
    """Model and optimizer state as full tensors (collective under FSDP: every rank calls it)."""
    if not sharded:
        return objective.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(objective, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def scatter_state(objective: nn.Module, optimizer: torch.optim.Optimizer, model: dict, optim: dict,
                  sharded: bool) -> None:
    """Load full-tensor state into the objective and optimizer (each FSDP rank keeps its shard)."""
    if not sharded:
        objective.load_state_dict(model)
        optimizer.load_state_dict(optim)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(objective, optimizer, model_state_dict=model, optim_state_dict=optim,
                   options=StateDictOptions(full_state_dict=True))
