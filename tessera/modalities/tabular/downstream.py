"""Supervised training on table rows with selection on the validation rows, and the GBDT baseline.

The protocol follows jose-melo/t-jepa's benchmark (src/utils/models_utils.py `BaseModel`, Lightning
with EarlyStopping): AdamW, a per-step cosine schedule to `min_lr` over the epoch budget, early stopping
on the validation loss; the weights of the best validation epoch are the ones scored on the test rows.
Its tuned configs set val_size 0, which makes the test split the validation split (selection on test);
here validation and test rows are always distinct, and the test rows are only read at the end.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class FitSettings:
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    min_lr: float = 0.0
    batch_size: int = 512
    epochs: int = 200
    patience: int = 16
    label_smoothing: float = 0.0
    backbone_lr_scale: float = 1.0  # parameters under `backbone.` (full fine-tuning)


@dataclass
class FitResult:
    best_epoch: int  # 1-based; 0 when there are no validation rows (the last epoch is kept)
    epochs_run: int
    best_val_loss: float
    seconds: float


def _loss(outputs: Tensor, y: Tensor, task: str, smoothing: float = 0.0) -> Tensor:
    if task == "classification":
        return F.cross_entropy(outputs.float(), y, label_smoothing=smoothing)
    return F.mse_loss(outputs.float(), y.float())


def _take(data: dict[str, Tensor], rows: Tensor, device: torch.device) -> dict[str, Tensor]:
    return {k: v[rows].to(device) for k, v in data.items()}


@torch.no_grad()
def predict(model: nn.Module, data: dict[str, Tensor], rows: Tensor, device: torch.device, chunk: int = 2048) -> Tensor:
    """Model outputs for `rows`, in eval mode, on the CPU."""
    model.eval()
    outs = [model(_take(data, rows[i:i + chunk], device)).float().cpu() for i in range(0, len(rows), chunk)]
    return torch.cat(outs) if outs else torch.empty(0)


def fit(model: nn.Module, data: dict[str, Tensor], y: Tensor, train: Tensor, val: Tensor, task: str,
        settings: FitSettings, seed: int, device: torch.device) -> FitResult:
    """Train `model` on `train` rows, keep the weights of the lowest validation loss (restored at the end)."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad]
    others = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    groups = [{"params": others, "lr_scale": 1.0}]
    if backbone:
        groups.append({"params": backbone, "lr_scale": settings.backbone_lr_scale})
    # weight decay on every parameter, as the reference's BaseModel.configure_optimizers
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay, betas=settings.betas)
    batch = min(settings.batch_size, len(train))
    steps_per_epoch = max(1, len(train) // batch + (len(train) % batch > 1))  # a last batch of 1 breaks BatchNorm
    total = settings.epochs * steps_per_epoch
    best = (math.inf, 0, None)
    bad, step, epoch = 0, 0, 0
    y_dev = y.to(device)
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = train[torch.randperm(len(train), generator=generator)]
        for i in range(steps_per_epoch):
            rows = order[i * batch:(i + 1) * batch if i < steps_per_epoch - 1 else None]
            lr = settings.min_lr + (settings.lr - settings.min_lr) * 0.5 * (1 + math.cos(math.pi * step / total))
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            loss = _loss(model(_take(data, rows, device)), y_dev[rows.to(device)], task, settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if len(val) == 0:
            continue
        val_loss = _loss(predict(model, data, val, device), y[val], task).item()
        if val_loss < best[0]:
            best, bad = (val_loss, epoch, copy.deepcopy(model.state_dict())), 0
        else:
            bad += 1
            if bad >= settings.patience:
                break
    if best[2] is not None:
        model.load_state_dict(best[2])
    return FitResult(best_epoch=best[1], epochs_run=epoch, best_val_loss=best[0], seconds=time.perf_counter() - start)


def gbdt_predict(task: str, num: Tensor, cat: Tensor, missing: Tensor, y: Tensor, train: Tensor, val: Tensor,
                 test: Tensor, seed: int, num_classes: int = 0, max_iter: int = 500,
                 learning_rate: float = 0.1) -> tuple[Tensor, float]:
    """scikit-learn HistGradientBoosting on the raw features (NaN where missing, categories native),
    early-stopped on the validation rows (X_val / y_val). Returns test outputs ((N, C) log-probabilities,
    which score like logits, or (N, 1) standardised predictions) and the fit's seconds."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    start = time.perf_counter()
    numbers = num.double().numpy().copy()
    numbers[missing[:, : num.shape[1]].numpy()] = np.nan
    codes = cat.double().numpy().copy()
    codes[missing[:, num.shape[1]:].numpy()] = np.nan
    native = [bool(np.nanmax(codes[:, j], initial=0) < 254) for j in range(codes.shape[1])]  # max_bins 255
    x = np.concatenate([numbers, codes], axis=1)
    categorical = np.array([False] * numbers.shape[1] + native, dtype=bool)
    kind = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    model = kind(max_iter=max_iter, learning_rate=learning_rate, categorical_features=categorical,
                 early_stopping=len(val) > 0, random_state=seed)
    target = y.numpy() if task == "classification" else y.squeeze(1).numpy()
    tr, va, te = train.numpy(), val.numpy(), test.numpy()
    extra = {"X_val": x[va], "y_val": target[va]} if len(va) else {}
    model.fit(x[tr], target[tr], **extra)
    if task == "classification":
        probs = np.zeros((len(te), max(num_classes, int(y.max()) + 1)))
        probs[:, model.classes_] = model.predict_proba(x[te])
        return torch.from_numpy(np.log(np.clip(probs, 1e-12, None))), time.perf_counter() - start
    return torch.from_numpy(model.predict(x[te])).unsqueeze(1), time.perf_counter() - start
