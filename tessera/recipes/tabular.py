"""Tabular runs: T-JEPA pretraining (through the trainer), the downstream comparison and embedding.

Where the table's pieces meet: reading and preprocessing (modalities/tabular), the encoder and the
predictor (core), the objective (objectives/tjepa.py), the health monitors (eval/).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tessera.config import ConfigError, to_dict
from tessera.core.predictor import JEPAPredictor, TailedEncoder
from tessera.modalities.tabular.dataset import TableDataset
from tessera.modalities.tabular.columns import split_codes, target_spec
from tessera.modalities.tabular.preprocessing import (
    SPLITS,
    TablePreprocessing,
    TableTensors,
    describe,
    fit_preprocessing,
)
from tessera.modalities.tabular.reading import TableError, read_table, table_fingerprint
from tessera.modalities.tabular.sampler import FeatureSubsetSampler
from tessera.modalities.tabular.tokenizer import FeatureTokenizer
from tessera.recipes.schema import RecipeConfig
from tessera.train.checkpoint import CheckpointError, load_checkpoint


def say(message: str) -> None:
    print(f"tabular: {message}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# The table.


def table_path(data) -> Path | None:
    """The file a recipe names: data.path, or the generated table of data.synthetic (written on first use)."""
    if data.path is not None:
        return Path(data.path)
    if data.synthetic is not None:
        from tessera.data.synthetic_tables import ensure_synthetic_table
        from tessera.recipes.build import cache_dir

        settings = to_dict(data.synthetic)
        folder = settings.pop("dir")
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        return ensure_synthetic_table(Path(folder) if folder else cache_dir() / f"synthetic-table-{key}", **settings)
    return None


def read(data, fallback: str | None = None):
    """(frame, path) of the recipe's table, or of `fallback` (the checkpoint's) when the recipe names none."""
    path = table_path(data)
    if path is None:
        if fallback is None:
            raise ConfigError("the recipe names no table: set data.path (a CSV or Parquet file) or data.synthetic")
        path = Path(fallback)
    return read_table(path, data.format, data.na_values), str(path)


def transform(prep: TablePreprocessing, frame, source: str) -> TableTensors:
    tensors = prep.transform(frame, source)
    for name, count in tensors.unseen.items():
        say(f"column {name!r}: {count} cell(s) hold categories the training rows never had; they share the "
            f"column's unseen-category token")
    return tensors


def stored_table(state: dict, source: str) -> TablePreprocessing:
    metadata = state["model"].get("_extra_state", {}).get("metadata", {})
    if "table" not in metadata:
        raise CheckpointError(f"{source}: not a tabular T-JEPA checkpoint (it holds no table preprocessing)")
    return TablePreprocessing.from_state(metadata["table"])


def _checkpoint_recipe(state: dict) -> RecipeConfig:
    """The pretraining run's own config, as stored in its checkpoint (it fixes the encoder's shape)."""
    from tessera.recipes.schema import recipe_from_dict

    config = dict(state["config"])
    return recipe_from_dict({k: v for k, v in config.items() if k != "name"}, str(config.get("name", "checkpoint")))


# --------------------------------------------------------------------------------------------------
# Models.


def build_backbone(cfg: RecipeConfig, prep: TablePreprocessing) -> tuple[FeatureTokenizer, TailedEncoder]:
    m = cfg.model
    tokenizer = FeatureTokenizer(len(prep.numerical), prep.cardinalities, m.dim, cfg.data.reg_tokens,
                                 cfg.data.position_base)
    encoder = TailedEncoder(m.dim, m.depth, m.heads, mlp_ratio=m.mlp_ratio, block=m.block, norm_eps=m.norm_eps,
                            tail=cfg.objective.tail)
    return tokenizer, encoder


def load_backbone(state: dict, prep: TablePreprocessing, source: str):
    """The pretrained target encoder (tokenizer + encoder) of a T-JEPA checkpoint, as a Backbone."""
    from tessera.modalities.tabular.heads import Backbone
    from tessera.train.checkpoint import load_weights

    cfg = _checkpoint_recipe(state)
    backbone = Backbone(*build_backbone(cfg, prep))
    prefix = "target_encoder."
    weights = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    report = load_weights(backbone, weights, source, replaceable=())
    if report.missing:
        raise CheckpointError(f"{source}: the target encoder lacks {', '.join(report.missing[:5])}")
    return backbone


def total_steps(cfg: RecipeConfig, rows: int) -> int:
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    per_step = cfg.data.batch_size * world * cfg.train.accumulate
    return cfg.train.epochs * max(1, rows // per_step)


def setup_tjepa(cfg: RecipeConfig, device: torch.device, run_dir: Path):
    """The PretrainingSetup of a T-JEPA run: the table's rows, the objective and the health monitors."""
    from tessera.objectives.tjepa import TJEPAObjective
    from tessera.recipes.build import PretrainingSetup

    frame, source = read(cfg.data)
    fingerprint = table_fingerprint(frame)
    last = run_dir / "last.pt"
    if last.exists():  # resuming: the run's own preprocessing and split, if the table is still the same
        prep = stored_table(load_checkpoint(last), str(last))
        if prep.fingerprint != fingerprint:
            raise TableError(f"{source} changed since {run_dir} started (the stored split and scaling would not fit "
                             f"its rows); restore the table or use a new --run-dir")
    else:
        prep = fit_preprocessing(frame, cfg.data, source, fingerprint)
        for note in prep.notes:
            say(note)
    say(describe(prep))
    tensors = transform(prep, frame, source)
    dataset = TableDataset(tensors, prep.rows("train" if cfg.data.pretrain_rows == "train" else "all"))
    o, m = cfg.objective, cfg.model
    tokenizer, encoder = build_backbone(cfg, prep)
    predictor = JEPAPredictor(m.dim, m.decoder_dim, m.decoder_depth, m.decoder_heads,
                              num_slots=tokenizer.num_prefix + tokenizer.num_tokens, mlp_ratio=o.predictor_mlp_ratio,
                              block=m.block, norm_eps=m.norm_eps, tail=o.tail)
    sampler = FeatureSubsetSampler(tokenizer.num_tokens, (o.min_context, o.max_context), (o.min_target, o.max_target),
                                   o.num_targets)
    objective = TJEPAObjective(
        tokenizer, encoder, predictor, sampler, total_steps(cfg, len(dataset)), ema=o.ema,
        accumulate=cfg.train.accumulate, grad_clamp=o.grad_clamp, seed=cfg.train.seed,
        metadata={"table": prep.to_state()},
    ).to(device)
    on_eval = health_hook(objective, dataset, o.health_samples, cfg.train.seed, cfg.data.batch_size, device)
    return PretrainingSetup(objective, dataset, None, on_eval)


def health_hook(objective, dataset: TableDataset, samples: int, seed: int, chunk: int, device: torch.device):
    """At each evaluation: RankMe and the collapse monitors on a fixed, seeded sample of training rows,
    embedded by the target encoder (the downstream representation, flattened to (N, (P + D) * h))."""
    from tessera.eval.collapse import collapse_metrics, collapse_warning
    from tessera.eval.rankme import rankme
    from tessera.train.loop import to_device

    count = min(samples, len(dataset))
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    batch = to_device(dataset.collate(pick.tolist()), device)

    def on_eval(step: int) -> dict[str, float]:
        objective.sync_teacher()
        states = torch.cat([objective.embed({k: v[i:i + chunk] for k, v in batch.items()})
                            for i in range(0, count, chunk)]).float()
        flat = states.flatten(1)
        # rankme is Eq. 1 (uncentred); T-JEPA's tokens share a large row-independent part (positions,
        # feature weights) that the uncentred value mostly sees, so the centred variant is logged beside it
        metrics = {"rankme": rankme(flat), "rankme_centered": rankme(flat - flat.mean(dim=0)),
                   "rankme_pooled": rankme(states.mean(dim=1)), **collapse_metrics(states)}
        warning = collapse_warning(metrics, step)
        metrics["collapsed"] = float(warning is not None)
        if warning:
            print(f"tessera: warning: {warning}", file=sys.stderr)
        return metrics

    return on_eval


# --------------------------------------------------------------------------------------------------
# Downstream: `tessera finetune`.


def _finetune_table(cfg: RecipeConfig, state: dict, init: str):
    """The table, its preprocessing (the checkpoint's features and, for the same table, its split) and target."""
    prep = stored_table(state, init)
    data = cfg.data
    if data.target is None:
        raise ConfigError("fine-tuning needs data.target, the column to predict")
    if data.target in prep.feature_names:
        raise ConfigError(f"{init} was pretrained with {data.target!r} as a feature; pretrain with "
                          f"data.target={data.target} (or data.drop=[{data.target}]) so it is left out")
    frame, source = read(data, fallback=prep.source)
    if table_fingerprint(frame) == prep.fingerprint:
        say(f"{source}: the table the checkpoint was pretrained on; its split is reused")
    else:
        prep.split = torch.from_numpy(split_codes(frame, data, source).copy())
        say(f"{source}: not the table {init} was pretrained on: its rows are split by data.split, the checkpoint's "
            f"column preprocessing is reused")
    prep.target = target_spec(frame, data, (prep.split == 0).numpy(), source)
    say(describe(prep))
    return prep, transform(prep, frame, source), source


def _summary(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
    return mean, std


def run_finetune(cfg: RecipeConfig, config: dict[str, Any], init: Path | None, run_dir: Path) -> dict[str, Any]:
    """Every model of objective.models, once per seed: scores on the test rows, mean and std over seeds."""
    from tessera.eval.metrics import classification_scores, regression_scores
    from tessera.modalities.tabular.downstream import FitSettings, fit, gbdt_predict, predict
    from tessera.modalities.tabular.heads import MLP, Standardize, TabularPredictor, TokenAdapter, raw_features
    from tessera.train.loop import resolve_device

    if init is None:
        raise ConfigError("tabular fine-tuning needs --init CKPT, a T-JEPA pretraining checkpoint (last.pt)")
    state = load_checkpoint(init)
    prep, tensors, source = _finetune_table(cfg, state, str(init))
    task = prep.target.task
    y = tensors.label if task == "classification" else tensors.target
    present = (y >= 0) if task == "classification" else ~torch.isnan(y.squeeze(1))
    if not present.all():
        say(f"{int((~present).sum())} row(s) have no {prep.target.name!r} value: left out of training and scoring")
    rows = {name: torch.nonzero((prep.split == i) & present).flatten() for i, name in enumerate(SPLITS)}
    if len(rows["train"]) < 2:
        raise TableError(f"{source}: {len(rows['train'])} training row(s) with a target; fine-tuning needs more")
    if len(rows["test"]) == 0:
        raise TableError(f"{source}: no test rows with a target; give data.split a test share")
    if len(rows["val"]) == 0:
        say("no validation rows: every model trains for its whole epoch budget (no selection)")
    device = resolve_device(cfg.train.device)
    o, optim = cfg.objective, cfg.optim
    settings = FitSettings(lr=optim.lr if optim.lr is not None else optim.base_lr, weight_decay=optim.weight_decay,
                           betas=tuple(optim.betas), min_lr=optim.min_lr, batch_size=cfg.data.batch_size,
                           epochs=cfg.train.epochs, patience=o.patience, label_smoothing=o.label_smoothing,
                           backbone_lr_scale=o.finetune_lr_scale)
    outputs = len(prep.target.classes) if task == "classification" else 1
    inputs = {"num": tensors.num, "cat": tensors.cat, "missing": tensors.missing}
    frozen = None
    if "tjepa" in o.models or "tjepa_finetune" in o.models:
        backbone = load_backbone(state, prep, str(init)).to(device)
        start = time.perf_counter()
        frozen = {"features": predict(backbone, inputs, torch.arange(len(y)), device)}
        say(f"embedded {len(y)} rows with the frozen target encoder in {time.perf_counter() - start:.1f} s")
    raw = {"features": raw_features(tensors.num, tensors.cat, tensors.missing, prep.cardinalities)}

    def score(out: torch.Tensor) -> dict[str, float]:
        truth = y[rows["test"]]
        if task == "classification":
            return classification_scores(out, truth)
        return regression_scores(prep.target_values(out.squeeze(1)), prep.target_values(truth.squeeze(1)))

    results: dict[str, Any] = {"task": task, "target": prep.target.name, "source": source, "init": str(init),
                               "rows": {k: len(v) for k, v in rows.items()}, "models": {}}
    for name in o.models:
        runs = []
        for seed in o.seeds:
            torch.manual_seed(seed)
            if name == "gbdt":
                out, seconds = gbdt_predict(task, tensors.num, tensors.cat, tensors.missing, y, rows["train"],
                                            rows["val"], rows["test"], seed, num_classes=outputs,
                                            max_iter=o.gbdt_max_iter, learning_rate=o.gbdt_learning_rate)
                runs.append({"seed": seed, "scores": score(out.float()), "seconds": seconds})
                continue
            if name == "mlp":
                mlp = MLP(raw["features"].shape[1], outputs, o.hidden_dim, o.depth, o.dropout)
                model, data = TabularPredictor(mlp), raw
            else:
                if name == "tjepa":
                    backbone, data = None, frozen
                    tokens, width = frozen["features"].shape[1:]
                else:
                    backbone, data = load_backbone(state, prep, str(init)), inputs
                    tokens = backbone.tokenizer.num_prefix + backbone.tokenizer.num_tokens
                    width = backbone.tokenizer.dim
                adapter = TokenAdapter(o.adapter, tokens, width)
                scale = Standardize(frozen["features"][rows["train"]]) if o.standardize else None
                model = TabularPredictor(MLP(tokens, outputs, o.hidden_dim, o.depth, o.dropout), adapter, backbone,
                                         scale)
            model.to(device)
            fitted = fit(model, data, y, rows["train"], rows["val"], task, settings, seed, device)
            runs.append({"seed": seed, "scores": score(predict(model, data, rows["test"], device)),
                         "best_epoch": fitted.best_epoch, "epochs": fitted.epochs_run, "seconds": fitted.seconds})
        metrics = list(runs[0]["scores"])
        summary = {k: _summary([r["scores"][k] for r in runs]) for k in metrics}
        results["models"][name] = {"runs": runs, "mean": {k: v[0] for k, v in summary.items()},
                                   "std": {k: v[1] for k, v in summary.items()},
                                   "seconds": sum(r["seconds"] for r in runs) / len(runs)}
        say(f"{name}: " + ", ".join(f"{k} {v[0]:.4f} ± {v[1]:.4f}" for k, v in summary.items()))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    table = results_table(results)
    (run_dir / "results.md").write_text(table + "\n")
    print(table)
    return results


def results_table(results: dict[str, Any]) -> str:
    """A markdown table: one row per model, mean ± std over seeds of each test score."""
    models = results["models"]
    metrics = list(next(iter(models.values()))["mean"])
    seeds = len(next(iter(models.values()))["runs"])
    head = f"| model ({results['task']}, test rows, {seeds} seed{'s' if seeds > 1 else ''}) | " + \
        " | ".join(metrics) + " | s / seed |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for name, entry in models.items():
        cells = [f"{entry['mean'][k]:.4f} ± {entry['std'][k]:.4f}" for k in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {entry['seconds']:.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# `tessera embed`.


def run_embed(cfg: RecipeConfig, config: dict[str, Any], ckpt: Path, out: Path) -> Path:
    """Every row of the recipe's table (or the checkpoint's) through the pretrained target encoder.

    .npy: float32 (N, P + D, h); .pt: {"embeddings", "rows", "split" (when it is the pretraining table,
    0 train / 1 val / 2 test), "tokens" (names of the P + D tokens)}.
    """
    import numpy as np

    from tessera.modalities.tabular.downstream import predict
    from tessera.train.loop import resolve_device

    if out.suffix not in (".npy", ".pt"):
        raise ConfigError(f"--out {out}: write embeddings to a .npy or a .pt file")
    state = load_checkpoint(ckpt)
    prep = stored_table(state, str(ckpt))
    frame, source = read(cfg.data, fallback=prep.source)
    ignored = [c for c in frame.columns if c not in prep.feature_names]
    if ignored:
        say(f"{source}: column(s) {', '.join(map(repr, ignored[:8]))}{' ...' if len(ignored) > 8 else ''} are not "
            f"features of the encoder: not used")
    prep.target = None
    tensors = transform(prep, frame, source)
    device = resolve_device(cfg.train.device)
    backbone = load_backbone(state, prep, str(ckpt)).to(device)
    inputs = {"num": tensors.num, "cat": tensors.cat, "missing": tensors.missing}
    embeddings = predict(backbone, inputs, torch.arange(len(frame)), device)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, embeddings.numpy())
    else:
        names = [f"reg_{i}" for i in range(backbone.tokenizer.num_prefix)] + prep.feature_names
        payload = {"embeddings": embeddings, "rows": torch.arange(len(frame)), "tokens": names}
        if table_fingerprint(frame) == prep.fingerprint:
            payload["split"] = prep.split
        torch.save(payload, out)
    say(f"wrote {tuple(embeddings.shape)} embeddings of {source} to {out}")
    return out



# --------------------------------------------------------------------------------------------------
# `tessera demo`, its tabular part.


def demo_tables(root: Path, epochs: int = 25) -> dict[str, Any]:
    """Pretrain the tiny T-JEPA on the generated table, then compare it with the baselines (one seed)."""
    from tessera.recipes import load_recipe
    from tessera.recipes.build import run_pretraining

    pretrain = load_recipe("tjepa-pretrain-tiny", [f"train.epochs={epochs}", f"eval.every={epochs * 4}",
                                                   "train.log_every=10", f"train.checkpoint_every={epochs * 8}",
                                                   "train.progress=false"])
    run_dir = root / "pretrain"
    run_dir.mkdir(parents=True, exist_ok=True)
    say(f"demo: pretraining a tiny T-JEPA on a generated table in {run_dir}")
    start = time.perf_counter()
    run_pretraining(pretrain, run_dir, to_dict(pretrain))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in records if "loss" in r]
    health = [r for r in records if "eval/rankme" in r][-1]
    say(f"demo: {len(train) * 10} steps in {time.perf_counter() - start:.0f} s; loss {train[0]:.4f} -> "
        f"{train[-1]:.4f}; RankMe {health['eval/rankme']:.2f}, relative variance "
        f"{health['eval/relative_variance']:.2e}")
    finetune = load_recipe("tjepa-finetune-classification-tiny", ["objective.models=[tjepa,mlp,gbdt]"])
    say("demo: an MLP on the frozen T-JEPA tokens vs an MLP and gradient-boosted trees on the raw features")
    return run_finetune(finetune, to_dict(finetune), run_dir / "last.pt", root / "finetune")
