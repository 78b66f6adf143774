"""Scores for classification (accuracy, AUC, macro F1) and regression (RMSE, R²), from tensors.

AUC is the Mann-Whitney statistic (ties count one half): binary on the positive class's score,
multi-class as the mean of one-vs-rest AUCs over classes present in the labels with at least one
negative (scikit-learn's roc_auc_score(multi_class="ovr", average="macro") on the same rows).
Macro F1 averages over classes present in the labels or the predictions; a class with no true and
no predicted row is left out (scikit-learn's default labels set).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def accuracy(scores: Tensor, labels: Tensor) -> float:
    return (scores.argmax(dim=1) == labels).float().mean().item()


def _ranks(values: Tensor) -> Tensor:
    """Average ranks (1-based), ties sharing the mean of their ranks."""
    order = torch.argsort(values)
    sorted_values = values[order]
    ranks = torch.empty_like(values, dtype=torch.float64)
    n = len(values)
    positions = torch.arange(1, n + 1, dtype=torch.float64)
    # group equal values: boundaries where the sorted value changes
    change = torch.nonzero(sorted_values[1:] != sorted_values[:-1]).flatten() + 1
    bounds = [0, *change.tolist(), n]
    for start, end in zip(bounds[:-1], bounds[1:]):
        ranks[order[start:end]] = positions[start:end].mean()
    return ranks


def binary_auc(score: Tensor, positive: Tensor) -> float:
    """AUC of `score` for the boolean `positive`; NaN when one side is empty."""
    positive = positive.bool()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _ranks(score.double())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(scores: Tensor, labels: Tensor) -> float:
    """scores (N, C) (logits or probabilities: AUC only reads their order per class)."""
    probs = torch.softmax(scores.double(), dim=1)
    if scores.shape[1] == 2:
        return binary_auc(probs[:, 1], labels == 1)
    values = [binary_auc(probs[:, c], labels == c) for c in range(scores.shape[1])]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def macro_f1(scores: Tensor, labels: Tensor) -> float:
    pred = scores.argmax(dim=1)
    classes = torch.unique(torch.cat([labels, pred]))
    f1 = []
    for c in classes.tolist():
        tp = int(((pred == c) & (labels == c)).sum())
        fp = int(((pred == c) & (labels != c)).sum())
        fn = int(((pred != c) & (labels == c)).sum())
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1) / len(f1)


def rmse(pred: Tensor, target: Tensor) -> float:
    return math.sqrt(float(((pred.double() - target.double()) ** 2).mean()))


def r2(pred: Tensor, target: Tensor) -> float:
    target = target.double()
    residual = ((pred.double() - target) ** 2).sum()
    total = ((target - target.mean()) ** 2).sum()
    return float(1 - residual / total) if total > 0 else math.nan


def classification_scores(scores: Tensor, labels: Tensor) -> dict[str, float]:
    return {"accuracy": accuracy(scores, labels), "auc": auc(scores, labels), "macro_f1": macro_f1(scores, labels)}


def regression_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """On the target's original scale (the caller un-standardises first)."""
    return {"rmse": rmse(pred, target), "r2": r2(pred, target)}
