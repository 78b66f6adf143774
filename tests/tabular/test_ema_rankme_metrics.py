"""EMA teacher and momentum schedule; RankMe against hand-computed spectra; collapse monitors; scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tessera.core.ema import EMATeacher, MomentumSchedule
from tessera.eval.collapse import collapse_metrics, collapse_warning
from tessera.eval.metrics import auc, classification_scores, macro_f1, r2, regression_scores, rmse
from tessera.eval.rankme import rankme


def test_momentum_is_linear_from_0996_to_1_over_the_run():
    schedule = MomentumSchedule(0.996, 1.0, total_steps=400)
    assert schedule(0) == 0.996
    assert schedule(200) == pytest.approx(0.998)
    assert schedule(399) == pytest.approx(1.0 - 0.004 / 400)  # the reference's last step stops one short
    assert schedule(400) == pytest.approx(1.0) and schedule(10_000) == pytest.approx(1.0)
    steps = [schedule(k) for k in range(0, 400, 50)]
    assert np.allclose(np.diff(steps), 0.004 * 50 / 400)


def test_teacher_update_and_no_gradients():
    torch.manual_seed(0)
    student = {"a": nn.Linear(3, 2), "b": nn.LayerNorm(2)}
    teacher = EMATeacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = [p.detach().clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in list(student["a"].parameters()) + list(student["b"].parameters()):
            p.add_(1.0)
    teacher.update(student, 0.9)
    after = list(teacher.parameters())
    students = list(student["a"].parameters()) + list(student["b"].parameters())
    for old, new, s in zip(before, after, students):
        assert torch.allclose(new, 0.9 * old + 0.1 * s)
    assert sorted(k.split(".")[0] for k in teacher.state_dict()) == ["a", "a", "b", "b"]


def test_rankme_hand_computed_spectra():
    assert rankme(torch.eye(64)) == pytest.approx(64.0013, abs=1e-2)  # eps 1e-7 after normalising
    u, v = torch.randn(100, 1), torch.randn(1, 32)
    assert rankme(u @ v) == pytest.approx(1.0, abs=1e-2)
    # singular values 3 and 1: p = (0.75 + eps, 0.25 + eps) -> exp(-sum p ln p)
    def by_hand(p):
        p = [v + 1e-7 for v in p]
        return math.exp(-sum(v * math.log(v) for v in p))

    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert rankme(z) == pytest.approx(by_hand([0.75, 0.25]), abs=1e-9)
    assert by_hand([0.75, 0.25]) == pytest.approx(1.75477, abs=1e-5)
    rotation = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64)).Q  # singular values survive a rotation
    z = torch.diag(torch.tensor([3.0, 1.0] + [0.0] * 6, dtype=torch.float64)) @ rotation
    assert rankme(z) == pytest.approx(by_hand([0.75, 0.25] + [0.0] * 6), abs=1e-6)
    assert rankme(torch.zeros(4, 4)) == 0.0
    assert rankme(torch.randn(4, 3, 2)) <= 4.001  # flattened to (4, 6): bounded by min(N, K)


def test_collapse_monitors_and_warning():
    torch.manual_seed(0)
    healthy = torch.randn(256, 5, 8)
    metrics = collapse_metrics(healthy) | {"rankme": rankme(healthy.flatten(1))}
    assert metrics["relative_variance"] == pytest.approx(1.0, abs=0.05)
    assert metrics["row_distance"] == pytest.approx(math.sqrt(2 * 40), rel=0.1)
    assert collapse_warning(metrics) is None
    collapsed = torch.randn(1, 5, 8).expand(256, -1, -1) + 1e-4 * torch.randn(256, 5, 8)
    metrics = collapse_metrics(collapsed) | {"rankme": rankme(collapsed.flatten(1))}
    assert metrics["relative_variance"] < 1e-6 and metrics["rankme"] < 1.1
    text = collapse_warning(metrics, step=40)
    assert "collapse at step 40" in text and "relative variance" in text and "RankMe" in text


def test_scores_match_scikit_learn():
    from sklearn.metrics import f1_score, mean_squared_error, r2_score, roc_auc_score

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (200,), generator=g)
    scores = torch.randn(200, 3, generator=g) + 1.5 * nn.functional.one_hot(labels, 3)
    scores[:10] = scores[10:20]  # some ties
    probs = torch.softmax(scores.double(), 1).numpy()
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), probs, multi_class="ovr"), abs=1e-9)
    assert macro_f1(scores, labels) == pytest.approx(f1_score(labels.numpy(), probs.argmax(1), average="macro"))
    binary = labels % 2
    two = scores[:, :2]
    assert auc(two, binary) == pytest.approx(roc_auc_score(binary.numpy(), torch.softmax(two, 1)[:, 1].numpy()))
    expected = float((two.argmax(1) == binary).float().mean())
    assert classification_scores(two, binary)["accuracy"] == pytest.approx(expected)
    pred, target = torch.randn(50, generator=g), torch.randn(50, generator=g)
    assert rmse(pred, target) == pytest.approx(math.sqrt(mean_squared_error(target, pred)))
    assert r2(pred, target) == pytest.approx(r2_score(target, pred))
    assert regression_scores(target, target) == {"rmse": 0.0, "r2": 1.0}
