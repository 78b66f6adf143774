"""From a validated recipe to a run: the one place where a modality, the encoder and an objective meet."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tessera.config import ConfigError, to_dict
from tessera.core.decoder import MAEDecoder
from tessera.core.encoder import Encoder
from tessera.core.masking import RandomDecoderMask, RandomMasker
from tessera.recipes.schema import RecipeConfig
from tessera.train.distributed import DistInfo, barrier
from tessera.train.loop import FitResult, Trainer, TrainHooks, resolve_device, to_device
from tessera.train.rng import seed_everything, seed_worker
from tessera.train.sampler import ResumableSampler


@dataclass
class ModalityParts:
    """What a modality contributes to a pretraining run."""

    dataset: Dataset
    tokenizer: nn.Module
    masker: Callable
    input_key: str
    batch_transform: Callable[[dict], dict]
    pixel_mean: tuple[float, ...]
    pixel_std: tuple[float, ...]
    save_pictures: Callable[[Path, dict[str, torch.Tensor]], None]
    decoder_masker: Callable | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("TESSERA_CACHE", Path.home() / ".cache" / "tessera"))


def synthetic_videos(settings) -> Path:
    """Generated clips for `data.synthetic`, written once per settings under the cache; the list path."""
    from tessera.data.synthetic import ensure_synthetic_videos

    values = to_dict(settings)
    folder = values.pop("dir")
    key = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(folder) if folder else cache_dir() / f"synthetic-video-{key}"
    return ensure_synthetic_videos(folder, **values)


def _video_entries(data) -> tuple[list, str]:
    from tessera.data.lists import read_path_label_list, scan_video_folder

    if data.list is not None:
        return read_path_label_list(data.list, data.root), data.list
    if data.folder is not None:
        return scan_video_folder(data.folder), data.folder
    if data.synthetic is not None:
        list_file = synthetic_videos(data.synthetic)
        return read_path_label_list(list_file), str(list_file)
    raise ConfigError("the recipe names no videos: set data.list (a `path label` file), data.folder or data.synthetic")


def build_video(cfg: RecipeConfig) -> ModalityParts:
    from tessera.data.lists import check_files_exist
    from tessera.modalities.video.dataset import VideoPretrainDataset, crop_batch_on_device
    from tessera.modalities.video.masking import RunningCellDecoderMask, TubeMasker
    from tessera.modalities.video.pictures import save_reconstruction_png
    from tessera.modalities.video.tokenizer import TubeletTokenizer
    from tessera.modalities.video.transforms import normalize_clip_batch

    data = cfg.data
    entries, source = _video_entries(data)
    check_files_exist(entries, source)
    dataset = VideoPretrainDataset(
        entries, clip_len=data.num_frames, stride=data.sampling_rate, out_size=data.input_size,
        scales=data.scales, max_distort=data.max_distort, crop_on_device=data.crop_on == "device",
    )
    tokenizer = TubeletTokenizer(
        cfg.model.dim, frames=data.num_frames, size=data.input_size, tubelet=data.tubelet,
        position_kind=cfg.model.position,
    )
    ratio = cfg.objective.mask_ratio
    masker = TubeMasker(tokenizer.grid, ratio) if cfg.objective.mask == "tube" else RandomMasker(tokenizer.num_tokens, ratio)
    decoder_masker = {
        "none": None,
        "running_cell": lambda: RunningCellDecoderMask(tokenizer.grid, cfg.objective.decoder_mask_ratio),
        "random": lambda: RandomDecoderMask(cfg.objective.decoder_mask_ratio),
    }[cfg.objective.decoder_mask]
    mean, std = data.mean, data.std

    def normalize(batch: dict) -> dict:
        batch = dict(batch)
        if "frames" in batch:  # data.crop_on=device: crop and resize here, on the accelerator
            batch["video"] = crop_batch_on_device(batch.pop("frames"), batch.pop("box"), data.input_size)
        batch["video"] = normalize_clip_batch(batch["video"], mean, std)
        return batch

    def save_pictures(folder: Path, views: dict[str, torch.Tensor]) -> None:
        for i in range(views["original"].shape[0]):
            save_reconstruction_png(
                folder / f"clip{i}.png", views["original"][i].cpu(), views["masked"][i].cpu(),
                views["reconstruction"][i].cpu(),
            )

    return ModalityParts(dataset, tokenizer, masker, "video", normalize, mean, std, save_pictures,
                         decoder_masker() if decoder_masker else None)


MODALITY_BUILDERS: dict[str, Callable[[RecipeConfig], ModalityParts]] = {"video": build_video}


def build_mae(cfg: RecipeConfig, parts: ModalityParts) -> nn.Module:
    from tessera.objectives.mae import MAEObjective

    m = cfg.model
    encoder = Encoder(m.dim, m.depth, m.heads, mlp_ratio=m.mlp_ratio, block=m.block, drop_path=m.drop_path,
                      norm_eps=m.norm_eps)
    decoder = MAEDecoder(
        m.dim, m.decoder_dim, m.decoder_depth, m.decoder_heads, patch_dim=parts.tokenizer.patch_dim,
        grid=parts.tokenizer.grid, position_kind=m.position, num_prefix=parts.tokenizer.num_prefix,
        mlp_ratio=m.mlp_ratio, block=m.block, norm_eps=m.norm_eps,
    )
    return MAEObjective(
        parts.tokenizer, encoder, decoder, parts.masker, parts.input_key, target_norm=cfg.objective.target_norm,
        pixel_mean=parts.pixel_mean, pixel_std=parts.pixel_std, seed=cfg.train.seed,
        decoder_masker=parts.decoder_masker,
    )


@dataclass
class PretrainingSetup:
    """Everything the trainer needs from a recipe, whatever the modality and objective."""

    objective: nn.Module
    dataset: Dataset
    batch_transform: Callable[[dict], dict] | None = None
    on_eval: Callable[[int], dict[str, float] | None] | None = None
    check_bad_samples: Callable[[int, int], None] | None = None


def robust(dataset: Dataset, data, run_dir: Path) -> tuple[Dataset, Callable[[int, int], None]]:
    """Wrap a file-reading dataset: bad files are replaced, counted, logged; too many stop the run."""
    from tessera.data.robust import RobustDataset, check_bad_fraction

    log_path = run_dir / "bad_samples.jsonl"
    wrapped = RobustDataset(dataset, data.max_bad_fraction, isolate=data.isolate_decoder, log_path=log_path,
                            timeout=data.read_timeout_s)

    def check(bad: int, seen: int) -> None:
        check_bad_fraction(bad, seen, data.max_bad_fraction, len(dataset), log_path)

    return wrapped, check


def setup_mae(cfg: RecipeConfig, device: torch.device, run_dir: Path) -> PretrainingSetup:
    parts = MODALITY_BUILDERS[cfg.data.modality](cfg)
    parts.dataset, check = robust(parts.dataset, cfg.data, run_dir)
    objective = build_mae(cfg, parts).to(device)
    on_eval = mae_eval_hook(objective, parts, run_dir, device, cfg)
    return PretrainingSetup(objective, parts.dataset, parts.batch_transform, on_eval, check)


def setup_tjepa(cfg: RecipeConfig, device: torch.device, run_dir: Path) -> PretrainingSetup:
    from tessera.recipes.tabular import setup_tjepa as setup  # tables: tessera/recipes/tabular.py

    return setup(cfg, device, run_dir)


# (data.modality, objective.name) -> how to set up a pretraining run; a pair not listed is refused.
PRETRAINING_BUILDERS: dict[tuple[str, str], Callable[[RecipeConfig, torch.device, Path], PretrainingSetup]] = {
    ("video", "mae"): setup_mae,
    ("tabular", "tjepa"): setup_tjepa,
}


def make_loader(cfg: RecipeConfig, dataset: Dataset, device: torch.device, rank: int = 0, world: int = 1) -> DataLoader:
    per_step = cfg.data.batch_size * world * cfg.train.accumulate
    steps = len(dataset) // per_step
    if steps < 1:
        raise ConfigError(
            f"the dataset has {len(dataset)} samples, fewer than one optimizer step needs "
            f"(data.batch_size {cfg.data.batch_size} x {world} processes x train.accumulate {cfg.train.accumulate})"
        )
    sampler = ResumableSampler(len(dataset), steps * per_step, seed=cfg.train.seed, rank=rank, world=world)
    workers = cfg.data.num_workers
    return DataLoader(
        dataset, batch_size=cfg.data.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=cfg.data.pin_memory and device.type == "cuda", worker_init_fn=seed_worker,
        prefetch_factor=4 if workers else None, persistent_workers=False,
        collate_fn=getattr(dataset, "collate", None),
    )


def mae_eval_hook(objective: nn.Module, parts: ModalityParts, run_dir: Path, device: torch.device, cfg: RecipeConfig):
    """At each evaluation: reconstruct the same clips with the same masks (PNGs and their loss), and the
    RankMe of the encoder's embeddings of a fixed sample (`eval.rankme_samples` clips)."""
    count = min(cfg.eval.pictures, len(parts.dataset))
    rank_count = min(cfg.eval.rankme_samples, len(parts.dataset))
    if count == 0 and rank_count == 0:
        return None
    collate = getattr(parts.dataset, "collate", None) or torch.utils.data.default_collate
    fixed = [(i, 1_000_003 + i) for i in range(len(parts.dataset))]  # the same clips and crops every time
    batch = parts.batch_transform(to_device(collate([parts.dataset[k] for k in fixed[:count]]), device)) if count else None
    sample = DataLoader(_Keyed(parts.dataset, fixed[:rank_count]), batch_size=cfg.data.batch_size,
                        num_workers=cfg.data.num_workers, collate_fn=collate)

    def on_eval(step: int) -> dict[str, float]:
        from tessera.eval.rankme import rankme

        metrics = {}
        if batch is not None:
            generator = torch.Generator(device=device).manual_seed(1234)
            views = objective.reconstruct(batch[parts.input_key], generator)
            parts.save_pictures(run_dir / "pictures" / f"step_{step:08d}", views)
            metrics["loss"] = views["loss"].item()
        if rank_count:
            embeddings = [objective.embed(parts.batch_transform(to_device(b, device))[parts.input_key]).float().cpu()
                          for b in sample]
            metrics["rankme"] = rankme(torch.cat(embeddings))
        return metrics

    return on_eval


class _Keyed(Dataset):
    """A fixed list of sampler keys as a dataset (the evaluation sample)."""

    def __init__(self, dataset: Dataset, keys: list[tuple[int, int]]) -> None:
        self.dataset, self.keys = dataset, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.keys[i]]


def run_pretraining(cfg: RecipeConfig, run_dir: Path, config: dict[str, Any], dist: DistInfo | None = None) -> FitResult:
    pair = (cfg.data.modality, cfg.objective.name)
    if pair not in PRETRAINING_BUILDERS:
        valid = ", ".join(f"{m}+{o}" for m, o in PRETRAINING_BUILDERS)
        raise ConfigError(f"objective.name={pair[1]!r} does not pretrain data.modality={pair[0]!r}; valid pairs: {valid}")
    dist = dist or DistInfo()
    seed_everything(cfg.train.seed)
    device = resolve_device(cfg.train.device, dist.local_rank)
    if not dist.is_main:
        barrier(dist)  # rank 0 prepares shared files first (generated data, caches)
    setup = PRETRAINING_BUILDERS[pair](cfg, device, run_dir)
    if dist.is_main:
        barrier(dist)
    loader = make_loader(cfg, setup.dataset, device, rank=dist.rank, world=dist.world)
    hooks = TrainHooks(batch_transform=setup.batch_transform, on_eval=setup.on_eval, eval_every=cfg.eval.every,
                       check_bad_samples=setup.check_bad_samples)
    trainer = Trainer(setup.objective, loader, cfg.optim, cfg.train, run_dir, config, hooks=hooks, device=device,
                      dist=dist)
    return trainer.fit()
