"""Fine-tuning: tokenizer + encoder + task head, trained on labels.

Classification with cross-entropy (label smoothing, or the soft targets of an on-device mixup/cutmix
handed in by the builder), multi-label with BCE, regression with MSE. Modality-agnostic: the
tokenizer reads `batch[input_key]` (or the whole batch when `input_key` is None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tessera.objectives.generator import GeneratorState

Task = Literal["multiclass", "multilabel", "regression"]
Mix = Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]]


class SupervisedObjective(GeneratorState):
    """`forward(batch) -> (loss, metrics)`; `logits(batch)` for evaluation.

    `final_norm=False` skips the encoder's final LayerNorm: with mean pooling VideoMAE normalises the
    pooled vector instead (`fc_norm` in the head), and the pretrained `encoder.norm` goes unused.
    """

    def __init__(
        self,
        tokenizer: nn.Module,
        encoder: nn.Module,
        head: nn.Module,
        input_key: str | None,
        task: Task = "multiclass",
        label_smoothing: float = 0.0,
        mix: Mix | None = None,
        final_norm: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        self.tokenizer, self.encoder, self.head = tokenizer, encoder, head
        self.input_key, self.task = input_key, task
        self.label_smoothing, self.mix, self.final_norm = label_smoothing, mix, final_norm

    def _inputs(self, batch: dict) -> Tensor | dict:
        return batch if self.input_key is None else batch[self.input_key]

    def states(self, x: Tensor | dict) -> Tensor:
        tokens = self.tokenizer(x)
        states, _ = self.encoder(tokens, num_prefix=self.tokenizer.num_prefix, final_norm=self.final_norm)
        return states

    def features(self, batch: dict) -> Tensor:
        """The representation the head's linear layer reads: for probes and `tessera embed`."""
        return self.head.features(self.states(self._inputs(batch)))

    def logits(self, batch: dict) -> Tensor:
        return self.head(self.states(self._inputs(batch)))

    def forward(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        x = self._inputs(batch)
        if self.task == "regression":
            pred = self.head(self.states(x)).float()
            return F.mse_loss(pred, batch["target"].float()), {}
        label = batch["label"]
        soft = None
        if self.training and self.mix is not None:
            x, soft = self.mix(x, label, self.device_generator(label.device))
        logits = self.head(self.states(x)).float()
        if self.task == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, (soft if soft is not None else label).float()), {}
        if soft is not None:
            loss = torch.sum(-soft * F.log_softmax(logits, dim=-1), dim=-1).mean()
            return loss, {}
        loss = F.cross_entropy(logits, label, label_smoothing=self.label_smoothing)
        return loss, {"accuracy": (logits.argmax(dim=-1) == label).float().mean()}
