"""Tabular benchmark: T-JEPA + MLP against an MLP and gradient-boosted trees on the raw features.

    python bench/tabular_benchmark.py                      # the table in BENCHMARKS.md (about 25 min, 2 CPU cores)
    python bench/tabular_benchmark.py --smoke              # two tiny tables, one seed, seconds (the tests run it)
    python bench/tabular_benchmark.py --datasets wine diabetes --seeds 0 1 --steps 200
    python bench/tabular_benchmark.py --raw-tokens         # the reference's unstandardised frozen tokens
    python bench/tabular_benchmark.py --jannis-step        # one step of the released Jannis configuration

Tables: scikit-learn's bundled breast cancer (binary), wine (3 classes), digits (10 classes) and diabetes
(regression), and a generated table with mixed numerical and categorical columns whose label and value
need features jointly (tessera/data/synthetic_tables.py: the label is an XOR of the signs of two columns,
plus a third), used twice: `mixed-cls` (its label) and `mixed-reg` (its value). Each table is written as a
CSV and goes through the whole pipeline (reading, schema inference, preprocessing fitted on training rows).

Protocol, per table and seed:
- split 80 / 10 / 10 with split seed 0 (the same rows for every model and seed);
- T-JEPA: `tjepa-pretrain-small` (width 32, 2 post-norm layers, predictor 16 x 2) on the training rows,
  about --steps optimizer steps (epochs rounded up; batch 128, or a quarter of the training rows rounded
  down to a power of two when that is smaller), train.seed = seed;
- downstream (`tjepa-finetune-*`): an MLP (hidden 256, 4 layers, dropout 0.1, AdamW lr 1e-3, wd 0.01,
  up to 200 epochs, early stopping on the validation loss with patience 16) on the frozen target encoder's
  tokens through the flatten adapter; the same MLP on the raw features (min-max numbers, missing flags,
  one-hot categories); scikit-learn HistGradientBoosting (early-stopped on the validation rows);
- scores on the test rows with the weights of the best validation epoch; mean ± sample std over seeds.
Epoch time: pretraining samples per epoch / the logged samples per second (training steps only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from machine_info import cpu_model  # noqa: E402  (bench/, the script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Table:
    name: str
    task: str  # classification | regression
    target: str
    drop: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # extra data.* overrides

    def frame(self, smoke: bool):
        import sklearn.datasets as sk

        from tessera.data.synthetic_tables import make_table

        if self.name.startswith("mixed"):
            return make_table(rows=400 if smoke else 3000, numerical=8, categorical=4, missing=0.02, seed=0)
        loader = {"breast-cancer": sk.load_breast_cancer, "wine": sk.load_wine, "digits": sk.load_digits,
                  "diabetes": sk.load_diabetes}[self.name]
        frame = loader(as_frame=True).frame
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        return frame.head(300) if smoke else frame


TABLES = {
    "breast-cancer": Table("breast-cancer", "classification", "target"),
    "wine": Table("wine", "classification", "target"),
    # pixel intensities are integers 0..16: numerical, not 17-level categories
    "digits": Table("digits", "classification", "target", settings=["data.max_categories=2"]),
    "diabetes": Table("diabetes", "regression", "target"),
    "mixed-cls": Table("mixed-cls", "classification", "label", drop=["value"]),
    "mixed-reg": Table("mixed-reg", "regression", "value", drop=["label"]),
}


def batch_size(train_rows: int) -> int:
    return min(128, 2 ** int(math.log2(max(train_rows // 4, 2))))


def pretrain(table: Table, path: Path, seed: int, steps: int, run_dir: Path, smoke: bool) -> dict:
    from tessera.config import to_dict
    from tessera.recipes import load_recipe
    from tessera.recipes.build import run_pretraining

    rows = sum(1 for _ in path.open()) - 1
    train_rows = rows - 2 * round(rows * 0.1)
    batch = batch_size(train_rows)
    epochs = max(1, math.ceil(steps / max(1, train_rows // batch)))
    overrides = [f"data.path={path}", f"data.target={table.target}", f"data.drop=[{','.join(table.drop)}]",
                 f"data.batch_size={batch}", f"train.epochs={epochs}", f"train.warmup_epochs={max(epochs // 10, 0)}",
                 f"train.seed={seed}", f"eval.every={10 ** 9}", "train.progress=false",
                 f"train.checkpoint_every={10 ** 9}", "train.log_every=5", *table.settings]
    if smoke:
        overrides += ["model.dim=16", "model.depth=1", "model.decoder_dim=8", "model.decoder_depth=1",
                      "objective.health_samples=128"]
    cfg = load_recipe("tjepa-pretrain-small", overrides)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_pretraining(cfg, run_dir, to_dict(cfg))
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["samples_per_s"] for r in records if "samples_per_s" in r]
    health = [r for r in records if "eval/rankme" in r][-1]
    samples_per_epoch = (train_rows // batch) * batch
    return {"steps": result.step, "epochs": epochs, "batch": batch, "wall_s": wall,
            "epoch_s": samples_per_epoch / (sum(speeds) / len(speeds)), "rankme": health["eval/rankme"],
            "relative_variance": health["eval/relative_variance"],
            "loss": [r["loss"] for r in records if "loss" in r][-1]}


def downstream(table: Table, path: Path, init: Path, models: list[str], seeds: list[int], run_dir: Path,
               smoke: bool, extra: list[str] = ()) -> dict:
    from tessera.config import to_dict
    from tessera.recipes import load_recipe
    from tessera.recipes.tabular import run_finetune

    recipe = "tjepa-finetune-classification" if table.task == "classification" else "tjepa-finetune-regression"
    overrides = [f"data.path={path}", f"data.target={table.target}", f"objective.models=[{','.join(models)}]",
                 f"objective.seeds=[{','.join(map(str, seeds))}]", *table.settings, *extra]
    if smoke:
        overrides += ["train.epochs=10", "objective.hidden_dim=32", "objective.gbdt_max_iter=30"]
    cfg = load_recipe(recipe, overrides)
    with contextlib.redirect_stdout(io.StringIO()):
        return run_finetune(cfg, to_dict(cfg), init, run_dir)


def summary(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def run_table(table: Table, seeds: list[int], steps: int, work: Path, smoke: bool, extra: list[str] = ()) -> dict:
    from tessera.data.synthetic_tables import write_table

    frame = table.frame(smoke)
    path = write_table(frame, work / table.name / "table.csv")
    scores: dict[str, list[dict]] = {"tjepa": [], "mlp": [], "gbdt": []}
    pretraining = []
    for seed in seeds:
        info = pretrain(table, path, seed, steps, work / table.name / f"pretrain-{seed}", smoke)
        pretraining.append(info)
        out = downstream(table, path, work / table.name / f"pretrain-{seed}" / "last.pt", ["tjepa"], [seed],
                         work / table.name / f"tjepa-{seed}", smoke, extra)
        scores["tjepa"] += [r["scores"] for r in out["models"]["tjepa"]["runs"]]
        print(f"  {table.name} seed {seed}: pretrained {info['steps']} steps in {info['wall_s']:.0f} s "
              f"({info['epoch_s']:.2f} s/epoch), RankMe {info['rankme']:.1f}", file=sys.stderr)
    # the baselines read the table's preprocessing and split from any of the checkpoints (all the same)
    out = downstream(table, path, work / table.name / f"pretrain-{seeds[0]}" / "last.pt", ["mlp", "gbdt"], seeds,
                     work / table.name / "baselines", smoke)
    for name in ("mlp", "gbdt"):
        scores[name] = [r["scores"] for r in out["models"][name]["runs"]]
    metrics = list(scores["tjepa"][0])
    return {"name": table.name, "task": table.task, "rows": len(frame),
            "features": frame.shape[1] - 1 - len(table.drop), "pretraining": pretraining,
            "scores": {m: {k: summary([s[k] for s in runs]) for k in metrics} for m, runs in scores.items()}}


def jannis_step_time(batch: int = 64, steps: int = 10, warmup: int = 3) -> float:
    """Seconds per optimizer step of the `tjepa-pretrain` (released Jannis) configuration on random rows of
    54 numerical features, batch 64: the setting in which the reference's step was timed (0.84 s on this
    2-core CPU, hicmae_tjepa_rankme.md section 5). Forward, backward, AdamW step and the EMA update."""
    from tessera.core.predictor import JEPAPredictor, TailedEncoder
    from tessera.modalities.tabular.sampler import FeatureSubsetSampler
    from tessera.modalities.tabular.tokenizer import FeatureTokenizer
    from tessera.objectives.tjepa import TJEPAObjective
    from tessera.recipes import load_recipe

    cfg = load_recipe("tjepa-pretrain", ["data.path=unused.csv"])
    m, o, d = cfg.model, cfg.objective, 54
    torch.manual_seed(0)
    tokenizer = FeatureTokenizer(d, [], m.dim, cfg.data.reg_tokens, cfg.data.position_base)
    encoder = TailedEncoder(m.dim, m.depth, m.heads, mlp_ratio=m.mlp_ratio, block=m.block, norm_eps=m.norm_eps)
    predictor = JEPAPredictor(m.dim, m.decoder_dim, m.decoder_depth, m.decoder_heads, num_slots=d + 1,
                              mlp_ratio=o.predictor_mlp_ratio, norm_eps=m.norm_eps)
    sampler = FeatureSubsetSampler(d, (o.min_context, o.max_context), (o.min_target, o.max_target), o.num_targets)
    objective = TJEPAObjective(tokenizer, encoder, predictor, sampler, total_steps=1000)
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-4)
    rows = {"num": torch.rand(batch, d), "cat": torch.zeros(batch, 0, dtype=torch.long),
            "missing": torch.zeros(batch, d, dtype=torch.bool)}
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss, _ = objective(rows)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def machine() -> str:
    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} thread{'s' if threads > 1 else ''}), "
            f"{gpu}; load average at the end {os.getloadavg()[0]:.1f}")


def report(results: list[dict], seeds: list[int], seconds: float) -> str:
    label = {"tjepa": "T-JEPA + MLP", "mlp": "MLP", "gbdt": "GBDT"}
    plural = "s" if len(seeds) > 1 else ""
    lines = [f"Test scores, mean ± std over {len(seeds)} seed{plural} ({', '.join(map(str, seeds))}); "
             f"accuracy (higher is better) for classification, RMSE (lower) for regression.", "",
             "| table | rows x features | metric | T-JEPA + MLP | MLP | GBDT | T-JEPA s/epoch | steps x batch "
             "| RankMe |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        metric = "accuracy" if r["task"] == "classification" else "rmse"
        cells = [f"{r['scores'][m][metric][0]:.4f} ± {r['scores'][m][metric][1]:.4f}" for m in label]
        p = r["pretraining"]
        epoch = summary([x["epoch_s"] for x in p])[0]
        rankme = summary([x["rankme"] for x in p])[0]
        lines.append(f"| {r['name']} | {r['rows']} x {r['features']} | {metric} | " + " | ".join(cells) +
                     f" | {epoch:.2f} | {p[0]['steps']} x {p[0]['batch']} | {rankme:.1f} |")
    lines += ["", "All scores (mean ± std):", "", "| table | model | " + " | ".join(["score"] * 3) + " |",
              "|---|---|---|---|---|"]
    for r in results:
        for m, name in label.items():
            cells = [f"{k} {v[0]:.4f} ± {v[1]:.4f}" for k, v in r["scores"][m].items()]
            lines.append(f"| {r['name']} | {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Total {seconds / 60:.1f} min. Machine: {machine()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400, help="pretraining optimizer steps per run (about)")
    parser.add_argument("--smoke", action="store_true", help="two tiny tables, one seed, a few steps")
    parser.add_argument("--work", help="folder for tables and runs (default: a temporary one)")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--jannis-step", action="store_true",
                        help="only time one step of the tjepa-pretrain (Jannis) configuration at batch 64")
    parser.add_argument("--raw-tokens", action="store_true",
                        help="feed the frozen tokens to the adapter unstandardised (objective.standardize=false)")
    args = parser.parse_args(argv)
    if args.jannis_step:
        seconds = jannis_step_time()
        print(f"tjepa-pretrain (Jannis) step, batch 64, 54 features: {seconds:.3f} s (reference: 0.84 s on the "
              f"same kind of machine). Machine: {machine()}.")
        return 0
    if args.smoke:
        args.datasets, args.seeds, args.steps = ["wine", "mixed-reg"], [0], 6
    os.environ.setdefault("TESSERA_CACHE", tempfile.mkdtemp(prefix="tessera-cache-"))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tabular-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        results = []
        for name in args.datasets:
            print(f"{name}:", file=sys.stderr)
            extra = ["objective.standardize=false"] if args.raw_tokens else []
            results.append(run_table(TABLES[name], args.seeds, args.steps, work, args.smoke, extra))
        text = report(results, args.seeds, time.perf_counter() - start)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
