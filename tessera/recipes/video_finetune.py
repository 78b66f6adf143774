"""VideoMAE fine-tuning, evaluation, probes and feature extraction: the runs behind `tessera finetune |
eval | embed` for `data.modality: video`.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from tessera.config import ConfigError
from tessera.data.lists import VideoEntry, check_files_exist
from tessera.recipes.schema import RecipeConfig
from tessera.train.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from tessera.train.distributed import DistInfo, barrier, init_distributed
from tessera.train.loop import Trainer, TrainHooks, resolve_device, to_device, use_bf16
from tessera.train.rng import seed_everything


@dataclass
class Splits:
    train: list[VideoEntry]
    val: list[VideoEntry]
    test: list[VideoEntry]
    class_names: list[str]


def _stratified(entries: list[VideoEntry], shares: tuple[float, ...], seed: int) -> list[list[VideoEntry]]:
    """Generated clips cut into train / val / test, the same share of every class in each."""
    parts: list[list[VideoEntry]] = [[] for _ in shares]
    for label in sorted({e.label for e in entries}):
        members = [e for e in entries if e.label == label]
        random.Random(seed * 7919 + label).shuffle(members)
        bounds = [round(sum(shares[:i + 1]) * len(members)) for i in range(len(shares))]
        for i, (lo, hi) in enumerate(zip([0, *bounds[:-1]], bounds)):
            parts[i] += members[lo:hi]
    return parts


def labelled_splits(cfg: RecipeConfig) -> Splits:
    """The recipe's labelled videos, in its format; files named but missing are refused up front."""
    from tessera.data import formats

    data = cfg.data
    root = data.root or ""
    if data.synthetic is not None:
        from tessera.recipes.build import synthetic_videos

        list_file = synthetic_videos(data.synthetic)
        entries, names = formats.read_labeled_list(list_file, class_names=list_file.parent / "classes.txt")
        train, val, test = _stratified(entries, data.synthetic_split, data.synthetic.seed)
    elif data.format == "videomae":
        if data.list is None:
            raise ConfigError("set data.list (the training `path label` list), or data.synthetic")
        train, names = formats.read_labeled_list(data.list, data.root, data.class_names, data.num_classes)
        read = lambda path: formats.read_labeled_list(path, data.root, names)[0] if path else []  # noqa: E731
        test = read(data.test_list)
        val = read(data.val_list) if data.val_list else test  # the reference validates on its test list
    elif data.format in ("ucf101", "hmdb51"):
        reader = formats.read_ucf101 if data.format == "ucf101" else formats.read_hmdb51
        if data.list is None:
            raise ConfigError(f"set data.list to the {data.format} annotation folder and data.root to the videos")
        train, names = reader(data.list, root, data.split, "train")
        test, _ = reader(data.list, root, data.split, "test")
        val = test  # the official splits have no validation part
    else:
        if data.folder is None:
            raise ConfigError("data.format=folder reads data.folder (one sub-folder per class)")
        train, names = formats.read_class_folders(data.folder)
        test = formats.read_class_folders(data.test_list, names)[0] if data.test_list else []
        val = formats.read_class_folders(data.val_list, names)[0] if data.val_list else test
    if data.num_classes is not None and data.num_classes != len(names):
        raise ConfigError(f"data.num_classes={data.num_classes} but the class list has {len(names)} classes")
    for name, entries in (("training", train), ("validation", val), ("test", test)):
        if entries:
            check_files_exist(entries, f"the {name} split of {data.list or data.folder or 'the generated set'}")
    return Splits(train, val, test, names)


def video_dataset(cfg: RecipeConfig, entries: list[VideoEntry], mode: str) -> Dataset:
    from tessera.modalities.video.classification import VideoClassificationDataset

    data = cfg.data
    return VideoClassificationDataset(
        entries, mode=mode, sampling=data.sampling, clip_len=data.num_frames, stride=data.sampling_rate,
        input_size=data.input_size, num_clips=data.test_clips, num_crops=data.test_crops,
        repeats=data.repeated_aug, flip=data.flip, randaug=data.randaug, erase_prob=data.erase_prob,
        val_clip="center" if mode != "train" else "random", mean=data.mean, std=data.std,
    )


def build_classifier(cfg: RecipeConfig, num_classes: int) -> torch.nn.Module:
    """Tokenizer + encoder (no final norm under fc_norm pooling, as VideoMAE) + pooled head + mixup."""
    from tessera.core.encoder import Encoder
    from tessera.core.heads import PooledHead
    from tessera.modalities.video.tokenizer import TubeletTokenizer
    from tessera.objectives.mixup import Mixup
    from tessera.objectives.supervised import SupervisedObjective

    m, o, data = cfg.model, cfg.objective, cfg.data
    tokenizer = TubeletTokenizer(m.dim, frames=data.num_frames, size=data.input_size, tubelet=data.tubelet,
                                 position_kind=m.position)
    encoder = Encoder(m.dim, m.depth, m.heads, mlp_ratio=m.mlp_ratio, block=m.block, drop_path=m.drop_path,
                      norm_eps=m.norm_eps, final_norm=not o.fc_norm, init="trunc_normal")
    head = PooledHead(m.dim, num_classes, pool=o.pool, num_prefix=tokenizer.num_prefix, fc_norm=o.fc_norm,
                      dropout=o.head_dropout, init_scale=o.head_init_scale, norm_eps=m.norm_eps)
    mixing = o.mix_prob > 0 and (o.mixup > 0 or o.cutmix > 0)
    mix = Mixup(num_classes, o.mixup, o.cutmix, o.mix_prob, o.switch_prob, o.label_smoothing) if mixing else None
    return SupervisedObjective(tokenizer, encoder, head, "video", label_smoothing=o.label_smoothing, mix=mix,
                               final_norm=not o.fc_norm, seed=cfg.train.seed)


def load_initial(objective: torch.nn.Module, path: Path) -> None:
    from tessera.modalities.video.official import read_initial_weights

    weights, kind = read_initial_weights(path)
    report = load_weights(objective, weights, f"{path} ({kind})")
    if not report.loaded:
        raise CheckpointError(f"{path}: none of its tensors fit this model")
    print(report.summary(), file=sys.stderr)


# --------------------------------------------------------------------------------------------------
class _SkipUnreadable(Dataset):
    """Evaluation never replaces a view by another video's: an unreadable one is flagged and dropped."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset, self.collate = dataset, dataset.collate

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        from tessera.modalities.video.reading import VideoReadError

        try:
            return {**self.dataset[index], "unreadable": 0}
        except VideoReadError:
            video, view = self.dataset.video_of(index)
            data = self.dataset
            blank = torch.zeros(3, data.clip_len, data.input_size, data.input_size)
            return {"video": blank, "label": 0, "index": index, "sample_id": video, "view": view, "unreadable": 1}


@torch.no_grad()
def predict(objective: torch.nn.Module, dataset: Dataset, cfg: RecipeConfig, device: torch.device,
            features: bool = False) -> dict[str, torch.Tensor]:
    """Logits (or head features) of every readable item, with labels, video ids and views."""
    loader = DataLoader(_SkipUnreadable(dataset), batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                        collate_fn=lambda s: {**dataset.collate(s), "unreadable": torch.tensor([x["unreadable"] for x in s])})
    objective.eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16(cfg.train.precision, device))
    out: dict[str, list[torch.Tensor]] = {"scores": [], "label": [], "sample_id": [], "unreadable": []}
    for batch in loader:
        ids = batch.get("sample_id", batch["index"])
        batch = to_device(batch, device)
        with autocast:
            scores = objective.features(batch) if features else objective.logits(batch)
        out["scores"].append(scores.float().cpu())
        out["label"].append(batch["label"].cpu())
        out["sample_id"].append(ids)
        out["unreadable"].append(batch["unreadable"].cpu().bool())
    merged = {k: torch.cat(v) for k, v in out.items()}
    keep = ~merged.pop("unreadable")
    unreadable = sorted({int(i) for i in merged["sample_id"][~keep]})
    result = {k: v[keep] for k, v in merged.items()}
    result["unreadable"] = torch.tensor(unreadable, dtype=torch.long)
    return result


def score_views(objective, dataset, cfg, device, entries, class_names) -> tuple[dict[str, float], dict[str, Any]]:
    """The multi-view protocol: softmax averaged per video, top-1/top-5, and a per-video report."""
    from tessera.eval.classification import merge_views, topk_accuracy

    raw = predict(objective, dataset, cfg, device)
    probs, labels, ids = merge_views(raw["scores"], raw["sample_id"], raw["label"])
    metrics = {**topk_accuracy(probs, labels), "videos": len(ids), "views": len(raw["scores"])}
    top = probs.topk(min(5, probs.shape[1]), dim=1)
    videos = [
        {"path": entries[i].path, "label": class_names[int(y)], "prediction": class_names[int(t[0])],
         "top5": [[class_names[int(c)], round(float(p), 5)] for c, p in zip(t, pr)]}
        for i, y, t, pr in zip(ids.tolist(), labels, top.indices, top.values)
    ]
    report = {"metrics": metrics, "unreadable": [entries[i].path for i in raw["unreadable"].tolist()], "videos": videos}
    return metrics, report


def run_finetune(cfg: RecipeConfig, config: dict, init: Path | None, run_dir: Path) -> dict[str, float]:
    """Fine-tune (exact resume from run_dir/last.pt), keep best.pt by validation top-1, then test."""
    from tessera.recipes.build import make_loader, robust

    dist = init_distributed(cfg.train.device)
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device, dist.local_rank)
    if not dist.is_main:
        barrier(dist)
    splits = labelled_splits(cfg)
    if dist.is_main:
        barrier(dist)
    objective = build_classifier(cfg, len(splits.class_names))
    if init is not None and not (run_dir / "last.pt").exists():
        load_initial(objective, init)
    train_set, check = robust(video_dataset(cfg, splits.train, "train"), cfg.data, run_dir)
    loader = make_loader(cfg, train_set, device, rank=dist.rank, world=dist.world)
    hooks = TrainHooks(check_bad_samples=check, eval_every=cfg.eval.every,
                       on_eval=_validation_hook(objective, cfg, config, splits, device, run_dir))
    Trainer(objective, loader, cfg.optim, cfg.train, run_dir, config, hooks=hooks, device=device, dist=dist).fit()
    if not dist.is_main or not splits.test:
        return {}
    best = run_dir / "best.pt"
    if best.exists():
        load_weights(objective, load_checkpoint(best)["model"], str(best))
    objective.to(device)
    metrics, report = score_views(objective, video_dataset(cfg, splits.test, "test"), cfg, device, splits.test,
                                  splits.class_names)
    (run_dir / "test_scores.json").write_text(json.dumps(report, indent=1))
    print(_metrics_line("test", metrics, run_dir / "test_scores.json"), file=sys.stderr)
    return metrics


def _metrics_line(split: str, metrics: dict[str, float], path: Path) -> str:
    return (f"{split}: top-1 {100 * metrics['top1']:.2f}%, top-5 {100 * metrics['top5']:.2f}% over "
            f"{metrics['videos']} videos ({metrics['views']} views); per-video scores in {path}")


def _validation_hook(objective, cfg, config, splits: Splits, device, run_dir: Path):
    """One centre view per validation video; best.pt keeps the weights of the best top-1 so far."""
    if not splits.val:
        return None
    dataset = video_dataset(cfg, splits.val, "val")
    best = {"top1": -1.0}
    best_path = run_dir / "best.pt"
    if best_path.exists():
        best["top1"] = load_checkpoint(best_path).get("val_top1", -1.0)

    def on_eval(step: int) -> dict[str, float]:
        from tessera.eval.classification import topk_accuracy

        raw = predict(objective, dataset, cfg, device)
        metrics = topk_accuracy(raw["scores"], raw["label"])
        if metrics["top1"] > best["top1"]:
            best["top1"] = metrics["top1"]
            save_checkpoint(best_path, {"model": objective.state_dict(), "step": step, "config": config,
                                        "val_top1": metrics["top1"]})
        objective.train()
        return {"val_top1": metrics["top1"], "val_top5": metrics["top5"]}

    return on_eval


def run_eval(cfg: RecipeConfig, ckpt: Path, probe: str | None, out: Path | None) -> dict[str, float]:
    """`tessera eval`: the multi-view test of a fine-tuned checkpoint, or a probe on frozen features."""
    device = resolve_device(cfg.train.device)
    splits = labelled_splits(cfg)
    if not splits.test:
        raise ConfigError("evaluation needs a test split: set data.test_list (or use a format with one)")
    objective = build_classifier(cfg, len(splits.class_names))
    from tessera.modalities.video.official import read_initial_weights

    weights, kind = read_initial_weights(ckpt)
    report = load_weights(objective, weights, f"{ckpt} ({kind})")
    print(report.summary(), file=sys.stderr)
    objective.to(device)
    if probe is None:
        if any(k.startswith("head.") for k in report.missing):
            raise CheckpointError(f"{ckpt} has no trained classification head: fine-tune it first, or use --probe")
        metrics, scores = score_views(objective, video_dataset(cfg, splits.test, "test"), cfg, device, splits.test,
                                      splits.class_names)
    else:
        from tessera.eval.probes import probe as run_probe

        train = predict(objective, video_dataset(cfg, splits.train, "val"), cfg, device, features=True)
        test = predict(objective, video_dataset(cfg, splits.test, "val"), cfg, device, features=True)
        metrics = run_probe(probe, train["scores"], train["label"], test["scores"], test["label"],
                            len(splits.class_names))
        metrics.update(videos=len(test["scores"]), views=len(test["scores"]))
        scores = {"metrics": metrics, "probe": probe, "train_videos": len(train["scores"])}
    out = out or ckpt.with_name(f"{ckpt.stem}_{probe or 'test'}_scores.json")
    out.write_text(json.dumps(scores, indent=1))
    print(_metrics_line(f"{probe} probe" if probe else "test", metrics, out), file=sys.stderr)
    return metrics


def run_embed(cfg: RecipeConfig, config: dict, ckpt: Path, out: Path) -> None:
    """`tessera embed`: one centre-view feature per video of every split, with its path and split."""
    device = resolve_device(cfg.train.device)
    splits = labelled_splits(cfg)
    objective = build_classifier(cfg, len(splits.class_names))
    load_initial(objective, ckpt)
    objective.to(device)
    entries = [(name, e) for name in ("train", "val", "test") for e in getattr(splits, name)
               if not (name == "val" and splits.val is splits.test)]
    videos = [e for _, e in entries]
    raw = predict(objective, video_dataset(cfg, videos, "val"), cfg, device, features=True)
    ids = raw["sample_id"]
    meta = {"paths": [videos[i].path for i in ids.tolist()], "splits": [entries[i][0] for i in ids.tolist()],
            "labels": raw["label"].tolist(), "class_names": splits.class_names, "checkpoint": str(ckpt),
            "unreadable": [videos[i].path for i in raw["unreadable"].tolist()]}
    write_features(out, raw["scores"], ids, meta)
    print(f"wrote {len(ids)} features of width {raw['scores'].shape[1]} to {out}", file=sys.stderr)


def write_features(out: Path, features: torch.Tensor, ids: torch.Tensor, meta: dict[str, Any]) -> None:
    """.safetensors (features, video_index; the rest as JSON metadata), or .npy with a .json beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({"features": features.contiguous(), "video_index": ids.contiguous()}, str(out),
                  metadata={"meta": json.dumps(meta)})
    elif out.suffix == ".npy":
        import numpy as np

        np.save(out, features.numpy())
        out.with_suffix(".json").write_text(json.dumps({"video_index": ids.tolist(), **meta}, indent=1))
    else:
        raise ConfigError(f"--out {out}: write features as .safetensors or .npy")


__all__ = ["run_finetune", "run_eval", "run_embed", "labelled_splits", "build_classifier", "DistInfo"]
