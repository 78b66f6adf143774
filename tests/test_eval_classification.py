"""Top-k, the multi-view merge and the probes on features whose answer is known."""

from __future__ import annotations

import pytest
import torch

from tessera.eval.classification import merge_views, topk_accuracy
from tessera.eval.probes import KNNProtocol, knn_scores, probe


def test_topk_by_hand():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    labels = torch.tensor([2, 0, 0])
    assert topk_accuracy(scores, labels, ks=(1, 2)) == {"top1": pytest.approx(1 / 3), "top2": pytest.approx(2 / 3)}
    assert topk_accuracy(scores, labels, ks=(5,))["top5"] == 1.0  # k capped at the number of classes


def test_merge_averages_softmax_per_sample():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 4.0], [1.0, 1.0]])
    sample_ids = torch.tensor([7, 3, 7, 3])
    labels = torch.tensor([1, 0, 1, 0])
    probs, merged_labels, ids = merge_views(logits, sample_ids, labels)
    assert ids.tolist() == [3, 7] and merged_labels.tolist() == [0, 1]
    expected_7 = (torch.softmax(logits[0], 0) + torch.softmax(logits[2], 0)) / 2
    torch.testing.assert_close(probs[1], expected_7)
    assert probs.sum(1).tolist() == pytest.approx([1.0, 1.0])
    # averaging logits instead would call sample 7 differently weighted: the softmax matters
    assert not torch.allclose(probs[1], torch.softmax((logits[0] + logits[2]) / 2, 0))


def separable(n_per_class: int = 30, classes: int = 4, dim: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=generator) * 3
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    features = centres[labels] + 0.5 * torch.randn(len(labels), dim, generator=generator)
    return features, labels


@pytest.mark.parametrize("kind", ["knn", "linear"])
def test_probes_separate_separable_features(kind):
    train, train_labels = separable(seed=0)
    test, test_labels = separable(seed=0)
    test = test + 0.1 * torch.randn_like(test)
    assert probe(kind, train, train_labels, test, test_labels, 4)["top1"] >= 0.95


def test_knn_weights_by_similarity():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    labels = torch.tensor([0, 1, 1])
    scores = knn_scores(train, labels, torch.tensor([[1.0, 0.05]]), 2, KNNProtocol(k=3, temperature=0.1))
    sims = torch.nn.functional.normalize(train, dim=1) @ torch.nn.functional.normalize(torch.tensor([1.0, 0.05]), dim=0)
    expected = torch.tensor([(sims[0] / 0.1).exp(), (sims[1] / 0.1).exp() + (sims[2] / 0.1).exp()])
    torch.testing.assert_close(scores[0], expected)
