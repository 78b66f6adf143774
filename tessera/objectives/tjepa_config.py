"""The `objective` sections of tabular recipes: T-JEPA pretraining and the downstream comparison.

Plain dataclasses (no torch at import), so `tessera list` and `tessera show` stay instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tessera.config import ConfigError


@dataclass
class TJEPAConfig:
    """T-JEPA (Thimonier, De Melo Costa et al., ICLR 2025; jose-melo/t-jepa): predict the target encoder's
    latents of feature subsets from a context subset. Defaults: the released Jannis launch script.

    The predictor's width, depth and heads are model.decoder_dim / decoder_depth / decoder_heads.
    """

    name: Literal["tjepa"] = "tjepa"
    min_context: float = 0.13628349247854785  # --mask_min_ctx_share
    max_context: float = 0.36819012681604135  # --mask_max_ctx_share
    min_target: float = 0.1556321308543076  # --mask_min_trgt_share
    max_target: float = 0.6222278244105446  # --mask_max_trgt_share
    num_targets: int = 4  # --mask_num_preds
    ema: tuple[float, float] = (0.996, 1.0)  # --model_ema_start, --model_ema_end: linear over all steps
    grad_clamp: float | None = 1.0  # element-wise gradient clamp of tokenizer + encoder (--exp_gradient_clipping)
    predictor_mlp_ratio: float = 16.0  # --pred_dim_feedforward 256 / --pred_embed_dim 16
    tail: bool = True  # the encoder's and predictor's Linear + LayerNorm after the final norm (TabularEncoder)
    health_samples: int = 2048  # training rows (a fixed, seeded subset) for RankMe and the collapse monitors

    def check(self) -> None:
        shares = ((self.min_context, self.max_context, "context"), (self.min_target, self.max_target, "target"))
        for low, high, what in shares:
            if not 0 < low <= high <= 1:
                raise ConfigError(
                    f"objective.min_{what} and max_{what} must satisfy 0 < min <= max <= 1, got {low}, {high}"
                )
        if self.num_targets < 1 or self.health_samples < 2:
            raise ConfigError("objective.num_targets must be >= 1 and objective.health_samples >= 2")
        if not 0 <= self.ema[0] <= self.ema[1] <= 1:
            raise ConfigError(f"objective.ema must be [start, end] with 0 <= start <= end <= 1, got {list(self.ema)}")
        if self.grad_clamp is not None and self.grad_clamp <= 0:
            raise ConfigError(f"objective.grad_clamp must be > 0 or null, got {self.grad_clamp}")
        if self.predictor_mlp_ratio <= 0:
            raise ConfigError(f"objective.predictor_mlp_ratio must be > 0, got {self.predictor_mlp_ratio}")


Model = Literal["tjepa", "tjepa_finetune", "mlp", "gbdt"]
Adapter = Literal["linear_flatten", "mean_pool", "linear_per_feature"]


@dataclass
class TabularDownstreamConfig:
    """Classification or regression on a table, side by side (jose-melo/t-jepa benchmark.py protocol).

    models: `tjepa` an MLP on the frozen target encoder's tokens through `adapter`; `tjepa_finetune` the
    same with tokenizer and encoder trained too; `mlp` the same MLP on the raw features (min-max numbers,
    missing flags, one-hot categories); `gbdt` scikit-learn's HistGradientBoosting on the raw features.
    The MLP (src/models/mlp.py): Linear(in, hidden), then depth - 1 x [Linear, ReLU, Dropout, BatchNorm],
    then Linear(hidden, outputs); AdamW at optim.lr / optim.weight_decay, cosine to optim.min_lr per step,
    data.batch_size, at most train.epochs epochs, early stopping on the validation loss after `patience`
    epochs without improvement; the weights of the best validation epoch score the test rows.
    Every model is trained once per seed; results are mean and std over `seeds`.
    """

    name: Literal["tabular_downstream"] = "tabular_downstream"
    models: list[Model] = field(default_factory=lambda: ["tjepa", "mlp", "gbdt"])
    adapter: Adapter = "linear_flatten"  # the reference's online-probe input adapter (src/train.py)
    # ours: standardise every (token, channel) of the encoder's output with the training rows' mean and std
    # before the adapter (fixed, fitted once); false feeds the raw tokens, as the reference
    standardize: bool = True
    hidden_dim: int = 256  # src/models/mlp.py defaults
    depth: int = 4
    dropout: float = 0.1
    patience: int = 16  # --exp_patience in the tuned configs
    label_smoothing: float = 0.0
    finetune_lr_scale: float = 1.0  # tjepa_finetune: tokenizer and encoder lr = optim.lr x this
    gbdt_max_iter: int = 500  # boosting rounds, early-stopped on the validation rows
    gbdt_learning_rate: float = 0.1
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])

    def check(self) -> None:
        if not self.models:
            raise ConfigError("objective.models must name at least one of tjepa, tjepa_finetune, mlp, gbdt")
        if self.hidden_dim < 1 or self.depth < 1 or self.patience < 1 or self.gbdt_max_iter < 1:
            raise ConfigError("objective.hidden_dim, depth, patience and gbdt_max_iter must be >= 1")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ConfigError("objective.dropout and objective.label_smoothing must be in [0, 1)")
        if not self.seeds:
            raise ConfigError("objective.seeds must list at least one seed")
        if self.finetune_lr_scale <= 0:
            raise ConfigError(f"objective.finetune_lr_scale must be > 0, got {self.finetune_lr_scale}")
