"""Classification scores: top-k accuracy and the multi-view merge of VideoMAE's test protocol."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def topk_accuracy(scores: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Share of rows whose label is among the k highest scores, for each k (k capped at the classes)."""
    out = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        out[f"top{k}"] = (top == labels.unsqueeze(1)).any(dim=1).float().mean().item()
    return out


def merge_views(logits: Tensor, sample_ids: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Average the softmax probabilities of every view of a sample (VideoMAE engine_for_finetuning.py
    `merge`; the softmax before averaging came with commit 2254c5e and is worth about +0.5% on K400).

    Returns (probabilities (S, C), labels (S,), sample ids (S,)) with samples in ascending id order.
    """
    ids, inverse = torch.unique(sample_ids, sorted=True, return_inverse=True)
    probs = torch.softmax(logits.float(), dim=1)
    summed = torch.zeros(len(ids), probs.shape[1], dtype=probs.dtype).index_add_(0, inverse, probs)
    counts = torch.zeros(len(ids)).index_add_(0, inverse, torch.ones(len(inverse)))
    merged_labels = torch.zeros(len(ids), dtype=labels.dtype).index_copy_(0, inverse, labels)
    return summed / counts.unsqueeze(1), merged_labels, ids
