"""MAE targets against hand-computed values, the loss on hidden tokens only, exact generator state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tessera.core.masking import gather_tokens
from tessera.objectives.mae import MAEObjective, normalized_targets

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_tubelet_targets_by_hand():
    # one token of 2 pixels x 3 channels, flattened (pixel, channel): [p0c0, p0c1, p0c2, p1c0, p1c1, p1c2]
    patches = torch.tensor([[[1.0, 0.5, 4.0, 3.0, 0.5, 0.0]]])
    out = normalized_targets(patches, channels=3, mode="tubelet")[0, 0]
    s0 = math.sqrt(2.0)  # channel 0: values 1, 3 -> mean 2, unbiased std sqrt(2)
    s2 = math.sqrt(8.0)  # channel 2: values 4, 0 -> mean 2, unbiased std sqrt(8)
    expected = [-1 / (s0 + 1e-6), 0.0, 2 / (s2 + 1e-6), 1 / (s0 + 1e-6), 0.0, -2 / (s2 + 1e-6)]
    torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=1e-6)


def test_patch_targets_by_hand():
    patches = torch.tensor([[[1.0, 2.0, 3.0, 6.0]]])
    out = normalized_targets(patches, channels=1, mode="patch")[0, 0]
    var = ((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 3  # unbiased
    torch.testing.assert_close(out, (torch.tensor([1.0, 2.0, 3.0, 6.0]) - 3) / math.sqrt(var + 1e-6))
    assert torch.equal(normalized_targets(patches, 1, "none"), patches)


class Oracle(nn.Module):
    """A decoder that 'predicts' the true hidden targets plus an offset: exposes what the loss compares."""

    def __init__(self, objective: MAEObjective, offset: float) -> None:
        super().__init__()
        self.objective, self.offset = objective, offset
        self.x = None

    def forward(self, latent, mask):
        patches = self.objective.tokenizer.patchify(self.objective.pixels(self.x))
        target = normalized_targets(patches, 3, self.objective.target_norm)
        return gather_tokens(target, mask.hidden) + self.offset


@pytest.mark.parametrize("target_norm", ["tubelet", "patch", "none"])
def test_loss_compares_hidden_tokens_only(target_norm, small_objective):
    objective = small_objective(target_norm)
    x = torch.randn(2, 3, 4, 16, 16)
    for offset, expected in ((0.0, 0.0), (0.5, 0.25)):
        oracle = Oracle(objective, offset)
        oracle.x = x
        objective.decoder = oracle
        loss, _ = objective({"video": x})
        assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_targets_are_computed_on_pixels_not_normalised_inputs(small_objective):
    objective = small_objective("none")
    pixels = torch.rand(1, 3, 4, 16, 16)
    normalised = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(objective.pixels(normalised), pixels)


def test_loss_backpropagates_and_generator_state_round_trips(small_objective):
    objective = small_objective()
    x = torch.randn(2, 3, 4, 16, 16)
    loss, _ = objective({"video": x})
    loss.backward()
    assert objective.tokenizer.proj.weight.grad is not None and objective.decoder.head.weight.grad is not None
    state = objective.state_dict()
    expected = objective({"video": x})[0].item()  # draws the next mask
    clone = small_objective(seed=99)
    clone.load_state_dict(state)
    assert clone({"video": x})[0].item() == pytest.approx(expected, abs=0)


def test_reconstruct_keeps_visible_pixels_and_reports_the_loss(small_objective):
    objective = small_objective()
    x = torch.randn(2, 3, 4, 16, 16).clamp(-2, 2)
    views = objective.reconstruct(x, torch.Generator().manual_seed(0))
    assert views["original"].shape == views["reconstruction"].shape == x.shape
    same = (views["original"] == views["reconstruction"]).all(dim=1)  # (B, T, H, W)
    visible_fraction = same.float().mean().item()
    assert visible_fraction == pytest.approx(0.25, abs=0.02)  # 1 - 0.75 of the tubes are given
    assert views["loss"].item() > 0
