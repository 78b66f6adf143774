"""The recipe schema: one dataclass per section; `data.modality` and `objective.name` pick theirs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from tessera.config import ConfigError, from_dict
from tessera.core.sizes import SIZES
from tessera.modalities.video.config import VideoDataConfig, VideoFinetuneDataConfig
from tessera.objectives.config import ClassificationConfig, MAEConfig
from tessera.train.config import OptimConfig, TrainConfig
from tessera.modalities.tabular.config import TabularDataConfig
from tessera.objectives.tjepa_config import TabularDownstreamConfig, TJEPAConfig

DATA_SCHEMAS: dict[str, type] = {"video": VideoDataConfig}
OBJECTIVE_SCHEMAS: dict[str, type] = {"mae": MAEConfig, "classification": ClassificationConfig}
# supervised objectives read labelled splits: their data schema, by modality
SUPERVISED_DATA_SCHEMAS: dict[str, dict[str, type]] = {"classification": {"video": VideoFinetuneDataConfig}}
# tables: T-JEPA pretraining and the downstream comparison (`tessera finetune`) read the same data section
DATA_SCHEMAS["tabular"] = TabularDataConfig
OBJECTIVE_SCHEMAS.update(tjepa=TJEPAConfig, tabular_downstream=TabularDownstreamConfig)
SECTIONS = ("data", "model", "objective", "optim", "train", "eval")


@dataclass
class ModelConfig:
    """The shared encoder (and MAE decoder); `size` fills any width or depth left null (core/sizes.py)."""

    size: Literal["small", "base", "large", "huge", "custom"] = "base"
    dim: int | None = None
    depth: int | None = None
    heads: int | None = None
    mlp_ratio: float = 4.0
    block: Literal["beit", "vit", "post_norm"] = "beit"
    norm_eps: float = 1e-6
    drop_path: float = 0.0
    position: Literal["sincos_flat", "sincos_grid", "learned"] = "sincos_flat"
    decoder_dim: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None

    def check(self) -> None:
        preset = SIZES.get(self.size)
        for name in ("dim", "depth", "heads", "decoder_dim", "decoder_depth", "decoder_heads"):
            if getattr(self, name) is None:
                if preset is None:
                    raise ConfigError(f"model.{name} must be set when model.size is 'custom'")
                setattr(self, name, getattr(preset, name))
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        for width, heads in (("dim", "heads"), ("decoder_dim", "decoder_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ConfigError(
                    f"model.{width}={getattr(self, width)} is not divisible by model.{heads}={getattr(self, heads)}"
                )


@dataclass
class EvalConfig:
    """What a pretraining run evaluates while it trains."""

    every: int = 1000  # optimizer steps between evaluations (and at the end)
    pictures: int = 2  # clips drawn as original / masked / reconstruction PNGs; 0: none
    # RankMe (label-free health, Garrido et al. 2023) of the encoder's embeddings of this many fixed
    # samples; it is bounded by min(samples, width), so use at least the width; 0: off
    rankme_samples: int = 2048

    def check(self) -> None:
        if self.every < 1 or self.pictures < 0 or self.rankme_samples < 0:
            raise ConfigError("eval.every must be >= 1, eval.pictures and eval.rankme_samples >= 0")


@dataclass
class RecipeConfig:
    name: str
    data: Any
    objective: Any
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    description: str = ""


def _pick(section: str, raw: dict, selector: str, schemas: dict[str, type]) -> Any:
    node = raw.get(section)
    if not isinstance(node, dict):
        raise ConfigError(f"the recipe needs a '{section}' section with '{section}.{selector}'")
    choice = node.get(selector)
    if choice not in schemas:
        raise ConfigError(
            f"{section}.{selector}: {choice!r} is not one of the valid choices: {', '.join(map(repr, schemas))}"
        )
    return from_dict(schemas[choice], node, section)


def _data_schemas(raw: dict) -> dict[str, type]:
    objective = raw.get("objective")
    name = objective.get("name") if isinstance(objective, dict) else None
    return SUPERVISED_DATA_SCHEMAS.get(name, DATA_SCHEMAS)


def recipe_from_dict(raw: dict, name: str) -> RecipeConfig:
    """Validate a merged recipe dict; every refusal names the key and the valid keys or values."""
    unknown = [k for k in raw if k not in (*SECTIONS, "description")]
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}'; valid keys at the top level: {', '.join(SECTIONS)}, description")
    return RecipeConfig(
        name=name,
        description=str(raw.get("description", "")),
        data=_pick("data", raw, "modality", _data_schemas(raw)),
        objective=_pick("objective", raw, "name", OBJECTIVE_SCHEMAS),
        model=from_dict(ModelConfig, raw.get("model") or {}, "model"),
        optim=from_dict(OptimConfig, raw.get("optim") or {}, "optim"),
        train=from_dict(TrainConfig, raw.get("train") or {}, "train"),
        eval=from_dict(EvalConfig, raw.get("eval") or {}, "eval"),
    )
