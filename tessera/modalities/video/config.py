"""The `data` section for video (`data.modality: video`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tessera.config import ConfigError


@dataclass
class SyntheticVideoConfig:
    """Generated moving-shape clips, written on first use when a recipe names no data."""

    num_videos: int = 200
    frames: int = 32
    height: int = 64
    width: int = 80
    seed: int = 0
    dir: str | None = None  # null: a cache folder keyed by these settings ($TESSERA_CACHE or ~/.cache/tessera)


@dataclass
class VideoDataConfig:
    """Where the clips come from and how a pretraining clip is cut (VideoMAE kinetics.py, datasets.py)."""

    modality: Literal["video"] = "video"
    list: str | None = None  # VideoMAE's `path label` list
    root: str | None = None  # prefix for the list's relative paths (default: the list's folder)
    folder: str | None = None  # or every video under a folder
    synthetic: SyntheticVideoConfig | None = None  # or generated clips
    num_frames: int = 16
    sampling_rate: int = 4  # frame stride of a pretraining clip
    input_size: int = 224
    tubelet: tuple[int, int, int] = (2, 16, 16)
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)  # multi-scale crop, relative to the short side
    max_distort: int = 1
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # where the multi-scale crop and resize run: in the loader workers (as the reference), or on the
    # accelerator after a uint8 copy of the decoded frames (workers then only decode)
    crop_on: Literal["worker", "device"] = "worker"
    batch_size: int = 32  # per device
    num_workers: int = 8
    pin_memory: bool = True
    # unreadable clips are replaced, counted and logged (run_dir/bad_samples.jsonl) up to this share of
    # the reads; past it the run stops naming the log
    max_bad_fraction: float = 0.01
    isolate_decoder: bool = True  # decode in a child process: a decoder that aborts costs one sample
    read_timeout_s: float | None = None  # with isolation: a clip that takes longer is counted bad

    def check(self) -> None:
        sources = [name for name in ("list", "folder", "synthetic") if getattr(self, name) is not None]
        if len(sources) > 1:
            raise ConfigError(f"set one data source, not {' and '.join('data.' + s for s in sources)}")
        t, p, q = self.tubelet
        if self.num_frames % t or self.input_size % p or self.input_size % q:
            raise ConfigError(
                f"data.num_frames={self.num_frames} and data.input_size={self.input_size} "
                f"must be multiples of data.tubelet={list(self.tubelet)}"
            )
        for name in ("num_frames", "sampling_rate", "input_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise ConfigError(f"data.max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.read_timeout_s is not None and (self.read_timeout_s <= 0 or not self.isolate_decoder):
            raise ConfigError("data.read_timeout_s must be > 0 and needs data.isolate_decoder=true")


@dataclass
class VideoFinetuneDataConfig(VideoDataConfig):
    """Labelled clips for fine-tuning and evaluation (VideoMAE kinetics.py / ssv2.py, run_class_finetuning.py).

    `list` (or `folder`, `synthetic`) is the training split; `val_list` and `test_list` the others.
    """

    format: Literal["videomae", "ucf101", "hmdb51", "folder"] = "videomae"
    val_list: str | None = None
    test_list: str | None = None
    class_names: str | None = None  # one name per line (VideoMAE lists carry only label ids)
    split: int = 1  # UCF101 / HMDB51 official split 1, 2 or 3
    num_classes: int | None = None  # null: from the class names or the largest label
    sampling: Literal["dense", "tsn"] = "dense"  # I3D dense (K400, UCF101, HMDB51) or TSN segments (SSv2)
    randaug: str | None = "rand-m7-n4-mstd0.5-inc1"
    erase_prob: float = 0.25
    flip: bool = True  # SSv2: false (left/right is the label)
    repeated_aug: int = 2  # augmented copies of one decode (--num_sample 2)
    test_clips: int = 5  # K400 5 x 3 views, SSv2 2 x 3
    test_crops: int = 3
    synthetic_split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / val / test of generated clips

    def check(self) -> None:
        super().check()
        if self.repeated_aug < 1 or self.test_clips < 1 or self.test_crops < 1 or self.split not in (1, 2, 3):
            raise ConfigError("data.repeated_aug, data.test_clips and data.test_crops must be >= 1, data.split 1-3")
        if not 0 <= self.erase_prob <= 1:
            raise ConfigError(f"data.erase_prob must be in [0, 1], got {self.erase_prob}")
        if abs(sum(self.synthetic_split) - 1) > 1e-6 or min(self.synthetic_split) < 0:
            raise ConfigError(f"data.synthetic_split must be 3 shares summing to 1, got {list(self.synthetic_split)}")
