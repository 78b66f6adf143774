"""Frozen-feature probes: weighted kNN and a linear classifier, with their protocols written down.

kNN (Wu et al. 2018, as DINO's eval_knn.py uses it): L2-normalised features, cosine similarity to
every training feature, the k nearest vote with weight exp(similarity / temperature); k = 20,
temperature = 0.07.
Linear: one nn.Linear on L2-normalised features, full-batch AdamW (lr 1e-3, weight decay 0), 100
epochs, cross-entropy; the epoch count is fixed (no selection), so the test split never steers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tessera.eval.classification import topk_accuracy


@dataclass(frozen=True)
class KNNProtocol:
    k: int = 20
    temperature: float = 0.07


@dataclass(frozen=True)
class LinearProtocol:
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 100
    seed: int = 0


def knn_scores(train: Tensor, train_labels: Tensor, test: Tensor, num_classes: int,
               protocol: KNNProtocol = KNNProtocol(), chunk: int = 1024) -> Tensor:
    """(N_test, C) vote scores of the weighted kNN classifier."""
    train, test = F.normalize(train.float(), dim=1), F.normalize(test.float(), dim=1)
    k = min(protocol.k, len(train))
    scores = []
    for start in range(0, len(test), chunk):
        similarity = test[start:start + chunk] @ train.T
        top, index = similarity.topk(k, dim=1)
        weights = (top / protocol.temperature).exp()
        votes = torch.zeros(len(top), num_classes).scatter_add_(1, train_labels[index], weights)
        scores.append(votes)
    return torch.cat(scores)


def linear_probe_scores(train: Tensor, train_labels: Tensor, test: Tensor, num_classes: int,
                        protocol: LinearProtocol = LinearProtocol()) -> Tensor:
    """(N_test, C) logits of a linear classifier fitted on the training features."""
    generator = torch.Generator().manual_seed(protocol.seed)
    train, test = F.normalize(train.float(), dim=1), F.normalize(test.float(), dim=1)
    layer = torch.nn.Linear(train.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=generator)
        layer.bias.zero_()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=protocol.lr, weight_decay=protocol.weight_decay)
    for _ in range(protocol.epochs):
        optimizer.zero_grad()
        F.cross_entropy(layer(train), train_labels).backward()
        optimizer.step()
    with torch.no_grad():
        return layer(test)


def probe(kind: str, train: Tensor, train_labels: Tensor, test: Tensor, test_labels: Tensor,
          num_classes: int) -> dict[str, float]:
    if kind == "knn":
        scores = knn_scores(train, train_labels, test, num_classes)
    elif kind == "linear":
        scores = linear_probe_scores(train, train_labels, test, num_classes)
    else:
        raise ValueError(f"unknown probe {kind!r}; valid: knn, linear")
    return topk_accuracy(scores, test_labels)
