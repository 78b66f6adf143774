"""The T-JEPA objective: its loss by hand, the EMA teacher's steps, gradient clamping, state and sizes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tessera.core.predictor import JEPAPredictor, TailedEncoder
from tessera.modalities.tabular.sampler import FeatureSubsetSampler
from tessera.modalities.tabular.tokenizer import FeatureTokenizer
from tessera.objectives.tjepa import TJEPAObjective, clamp_gradient


def rows(b: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"num": torch.rand(b, 4, generator=g), "cat": torch.randint(0, 3, (b, 2), generator=g),
            "missing": torch.zeros(b, 6, dtype=torch.bool)}


def make(predictor: nn.Module | None = None, accumulate: int = 1, total_steps: int = 10, clamp=1.0) -> TJEPAObjective:
    torch.manual_seed(0)
    tokenizer = FeatureTokenizer(4, [2, 2], dim=8, num_reg_tokens=1)
    encoder = TailedEncoder(8, 1, 2, mlp_ratio=2.0)
    predictor = predictor or JEPAPredictor(8, 4, 1, 2, num_slots=7, mlp_ratio=2.0)
    sampler = FeatureSubsetSampler(6, context=(0.3, 0.5), target=(0.2, 0.4), num_targets=3)
    return TJEPAObjective(tokenizer, encoder, predictor, sampler, total_steps, accumulate=accumulate, grad_clamp=clamp)


class ZeroPredictor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def forward(self, context, context_slots, target_slots):
        self.seen = (context.detach(), context_slots, target_slots)
        return torch.zeros(*target_slots.shape, context.shape[-1]) + 0 * context.sum()


def test_loss_is_the_mse_of_the_teachers_full_row_latents_at_the_targets():
    objective = make(ZeroPredictor())
    x = rows()
    size_state = objective.size_generator.get_state()
    mask_state = objective.device_generator(torch.device("cpu")).get_state()
    loss, metrics = objective(x)
    # replay the draw, then compute the loss by hand: predictions are 0, so it is the mean square of the
    # teacher's latents of the full row at every (sample, target set, target feature), prefix excluded
    sizes = objective.sampler.draw_sizes(torch.Generator().set_state(size_state))
    mask = objective.sampler(8, torch.Generator().set_state(mask_state), "cpu", sizes)
    with torch.no_grad():
        full, _ = objective.target_encoder.encoder(objective.target_encoder.tokenizer(x))
    total, count = 0.0, 0
    for b in range(8):
        for m in range(3):
            for t in mask.targets[b, m].tolist():
                total += float((full[b, 1 + t] ** 2).sum())
                count += full.shape[-1]
    assert loss.item() == pytest.approx(total / count, rel=1e-5)
    assert metrics["context_features"].item() == sizes[0] and metrics["target_features"].item() == sizes[1]
    # the context the predictor saw: the regularization token (slot 0) then the context features' slots
    context, context_slots, target_slots = objective.predictor.seen
    assert context.shape == (8, 1 + sizes[0], 8)
    assert torch.equal(context_slots[:, 0], torch.zeros(8, dtype=torch.long))
    assert torch.equal(context_slots[:, 1:], mask.context + 1) and torch.equal(target_slots, mask.targets + 1)
    tokens = objective.tokenizer(x)
    student, _ = objective.encoder(torch.cat([tokens[:, :1], tokens[:, 1:][torch.arange(8)[:, None], mask.context]], 1))
    assert torch.allclose(context, student)


def test_predictor_shapes_and_queries():
    predictor = JEPAPredictor(8, 4, 1, 2, num_slots=7)
    targets = torch.tensor([[[1, 3], [4, 6]], [[2, 3], [3, 5]]])
    out = predictor(torch.randn(2, 3, 8), torch.tensor([[0, 2, 5], [0, 1, 6]]), targets)
    assert out.shape == (2, 2, 2, 8)


def train_step(objective, optimizer, x):
    loss, _ = objective(x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_teacher_follows_each_optimizer_step_with_the_scheduled_momentum():
    objective = make(total_steps=10)
    optimizer = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=0.5)
    teacher_0 = [p.detach().clone() for p in objective.target_encoder.parameters()]
    student_0 = [p.detach().clone() for p in objective.tokenizer.parameters()] + \
        [p.detach().clone() for p in objective.encoder.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(teacher_0, student_0))  # a copy at the start
    train_step(objective, optimizer, rows())  # step 0
    assert all(torch.equal(a, b) for a, b in zip(teacher_0, objective.target_encoder.parameters()))  # not yet
    students = [p.detach().clone() for m in (objective.tokenizer, objective.encoder) for p in m.parameters()]
    train_step(objective, optimizer, rows(seed=1))  # forward 1 first applies the update after step 0
    for t0, s1, t1 in zip(teacher_0, students, objective.target_encoder.parameters()):
        assert torch.allclose(t1, 0.996 * t0 + 0.004 * s1, atol=1e-7)
    assert (objective.forwards, objective.ema_updates) == (2, 1)
    objective.state_dict()  # a checkpoint after step 1 holds the teacher after step 1 (momentum 0.9964)
    assert objective.ema_updates == 2


def test_accumulation_updates_the_teacher_once_per_optimizer_step():
    objective = make(accumulate=2)
    for _ in range(5):
        objective(rows())
    assert (objective.forwards, objective.ema_updates) == (5, 2)  # forwards 2 and 4 closed steps 0 and 1
    objective.eval()
    objective(rows())
    assert objective.forwards == 5  # evaluation forwards are not training steps


def test_state_dict_round_trip_resumes_the_same_draws_and_teacher():
    a = make()
    optimizer = torch.optim.SGD([p for p in a.parameters() if p.requires_grad], lr=0.1)
    for i in range(3):
        train_step(a, optimizer, rows(seed=i))
    state = a.state_dict()
    assert state["_extra_state"]["forwards"] == 3 and state["_extra_state"]["ema_updates"] == 3
    b = make()
    b.load_state_dict(state)
    for name, value in a.state_dict().items():
        if torch.is_tensor(value):
            assert torch.equal(value, b.state_dict()[name]), name
    torch.manual_seed(1)
    loss_a, _ = a(rows(seed=9))
    torch.manual_seed(1)
    loss_b, _ = b(rows(seed=9))
    assert loss_a.item() == loss_b.item()


def test_gradients_of_tokenizer_and_encoder_are_clamped_elementwise():
    objective = make()
    loss, _ = objective(rows())
    (loss * 1e6).backward()
    student = list(objective.tokenizer.parameters()) + list(objective.encoder.parameters())
    assert max(p.grad.abs().max().item() for p in student if p.grad is not None) == pytest.approx(1.0)
    # the predictor is not clamped, as in the reference
    assert max(p.grad.abs().max().item() for p in objective.predictor.parameters()) > 1.0
    grad = torch.tensor([0.5, -3.0, math.inf, -math.inf, math.nan])
    clamped = clamp_gradient(grad, 1.0)
    assert clamped[:2].tolist() == [0.5, -1.0] and clamped[2:].isnan().all()  # non-finite stays visible


def test_jannis_configuration_parameter_counts():
    """The reference (section 5): encoder 440,064 and predictor 166,880 parameters. Its TabularEncoder
    registers the TransformerEncoderLayer it clones as a submodule too, so one unused layer is counted
    (25,216 at width 64, 9,616 at 16); its predictor also counts an unused LayerNorm (32) and its
    positional table as a frozen Parameter (54 x 16 = 864). Without those, the same architecture."""
    tokenizer = FeatureTokenizer(54, [], dim=64, num_reg_tokens=1)
    encoder = TailedEncoder(64, 16, 2, mlp_ratio=1.0, norm_eps=1e-5)
    predictor = JEPAPredictor(64, 16, 16, 4, num_slots=55, mlp_ratio=16.0)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    missing_tokens = 54 * 64  # ours: a learned missing token per feature
    assert count(tokenizer) - missing_tokens + count(encoder) == 440_064 - 25_216
    assert count(predictor) == 166_880 - 9_616 - 32 - 864
