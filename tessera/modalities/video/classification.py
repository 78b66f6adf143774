"""The VideoMAE fine-tuning / evaluation sample (MCG-NJU/VideoMAE kinetics.py `VideoClsDataset`,
ssv2.py `SSVideoClsDataset`): which frames, then the train augmentation or the evaluation views.

Modes
  * train: one decode, `repeats` independent augmentations of it (`--num_sample`, repeated
    augmentation); video float (R, 3, T, S, S), label (R,), index (R,); `collate` flattens them
    to R x B samples, sample-major, as utils.py `multiple_samples_collate`.
  * val: one view, the reference's validation: the clip sampled as in training (a random window
    or random TSN offsets, from the key's seed), short side resized, centre crop. `val_clip="center"`
    takes the centre window / segment centres instead, for a score that never moves.
  * test: num_clips x num_crops views per video, each its own dataset item, in the reference's order
    (kinetics.py `test_seg`: temporal clip outer, crop, then video inner): item i is video
    i % N, view i // N, view = clip * num_crops + crop. Each item carries `sample_id` (the video)
    and `view`, so scores merge per video (DESIGN.md batch contract). Only the view's own frames
    are decoded (the reference decodes the whole stride-s video for every view; same pixels).

As in pretraining, every random draw of a sample comes from `np.random.default_rng(seed)` of the
sampler's `(index, seed)` key (a plain index means seed = index): exact resume depends on it.
Read errors propagate as VideoReadError; replacing bad samples is the robust wrapper's job.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tessera.data.lists import UNLABELED, DatasetError, VideoEntry
from tessera.modalities.video.augment import RRC_RATIO, RRC_SCALE, FinetuneTrainTransform, spatial_view, val_view
from tessera.modalities.video.reading import open_video, read_frames
from tessera.modalities.video.sampling import (center_clip_indices, dense_test_indices, dense_train_indices,
                                               tsn_test_indices, tsn_train_indices)
from tessera.modalities.video.transforms import IMAGENET_MEAN, IMAGENET_STD

Mode = Literal["train", "val", "test"]
Sampling = Literal["dense", "tsn"]


class VideoClassificationDataset(Dataset):
    """Labelled clips for fine-tuning and evaluation; see the module docstring for the modes.

    Defaults follow run_class_finetuning.py: 16 frames (`--num_frames`), stride 4
    (`--sampling_rate`), 224 px (`--input_size`, `--short_side_size`), 5 x 3 test views
    (`--test_num_segment`, `--test_num_crop`; SSv2 2 x 3), `--num_sample 2`, `--aa
    rand-m7-n4-mstd0.5-inc1`, `--train_interpolation bicubic`, `--reprob 0.25 --remode pixel
    --recount 1`. For "tsn" sampling `clip_len` is the number of segments and `stride` is unused.
    """

    def __init__(self, entries: Sequence[VideoEntry], mode: Mode = "train", sampling: Sampling = "dense",
                 clip_len: int = 16, stride: int = 4, input_size: int = 224, short_side: int | None = None,
                 num_clips: int = 5, num_crops: int = 3, repeats: int = 2, flip: bool = True,
                 randaug: str | None = "rand-m7-n4-mstd0.5-inc1", interpolation: str = "bicubic",
                 scale: Sequence[float] = RRC_SCALE, ratio: Sequence[float] = RRC_RATIO,
                 erase_prob: float = 0.25, erase_mode: str = "pixel", erase_count: int = 1,
                 val_clip: Literal["random", "center"] = "random",
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
        if sampling not in ("dense", "tsn"):
            raise ValueError(f"sampling must be 'dense' or 'tsn', got {sampling!r}")
        if val_clip not in ("random", "center"):
            raise ValueError(f"val_clip must be 'random' or 'center', got {val_clip!r}")
        if min(clip_len, stride, input_size, num_clips, num_crops, repeats) < 1:
            raise ValueError("clip_len, stride, input_size, num_clips, num_crops and repeats must be >= 1")
        if mode == "test" and sampling == "tsn" and num_clips > 2:
            raise ValueError(f"TSN testing takes 1 or 2 clips (segment starts, centres), got num_clips={num_clips}")
        self.entries = list(entries)
        if not self.entries:
            raise DatasetError("no videos to fine-tune or evaluate on")
        if mode == "train":
            unlabeled = [e.path for e in self.entries if e.label == UNLABELED]
            if unlabeled:
                raise DatasetError(f"{len(unlabeled)} training videos have no label, first: {unlabeled[0]}")
        self.mode = mode
        self.sampling = sampling
        self.clip_len = clip_len
        self.stride = stride
        self.input_size = input_size
        # The reference's evaluation resizes to short_side_size and crops short_side_size (224 = input_size).
        self.short_side = input_size if short_side is None else short_side
        self.num_clips = num_clips
        self.num_crops = num_crops
        self.repeats = repeats
        self.val_clip = val_clip
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.transform = FinetuneTrainTransform(input_size, randaug, interpolation, scale, ratio, flip,
                                                erase_prob, erase_mode, erase_count, mean, std) \
            if mode == "train" else None

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops if self.mode == "test" else 1

    def __len__(self) -> int:
        return len(self.entries) * self.num_views

    def video_of(self, index: int) -> tuple[int, int]:
        """(video index, view) of dataset item `index` (view 0 outside test mode)."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} is outside the dataset's {len(self)} items")
        count = len(self.entries)
        return index % count, index // count

    def entry_path(self, index: int) -> str:
        return self.entries[self.video_of(index)[0]].path

    def _train_indices(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        if self.sampling == "dense":
            return dense_train_indices(num_frames, self.clip_len, self.stride, rng)
        return tsn_train_indices(num_frames, self.clip_len, rng)

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        """`key` is `(index, seed)` from the sampler, or a plain index (then seed = index)."""
        if isinstance(key, (tuple, list)):
            index, seed = (int(k) for k in key)
        else:
            index = seed = int(key)
        video_index, view = self.video_of(index)
        entry = self.entries[video_index]
        rng = np.random.default_rng(seed)
        reader = open_video(entry.path)
        num_frames = len(reader)
        if self.mode == "test":
            clip, crop = divmod(view, self.num_crops)
            if self.sampling == "dense":
                indices = dense_test_indices(num_frames, self.clip_len, self.stride, self.num_clips)[clip]
            else:
                indices = tsn_test_indices(num_frames, self.clip_len, self.num_clips)[clip]
        elif self.mode == "val" and self.val_clip == "center":
            indices = center_clip_indices(num_frames, self.clip_len, self.stride, self.sampling)
        else:  # train, and the reference's validation (loadvideo_decord samples as in training)
            indices = self._train_indices(num_frames, rng)
        frames = read_frames(reader, entry.path, indices)
        del reader  # free the decoder before the augmentation
        if self.mode == "train":
            videos = torch.stack([self.transform(frames, rng) for _ in range(self.repeats)])
            return {"video": videos,
                    "label": torch.full((self.repeats,), entry.label, dtype=torch.long),
                    "index": torch.full((self.repeats,), index, dtype=torch.long)}
        if self.mode == "val":
            video = val_view(frames, self.short_side, self.short_side, self.mean, self.std)
            return {"video": video, "label": entry.label, "index": index}
        video = spatial_view(frames, crop, self.num_crops, self.short_side, self.mean, self.std)
        return {"video": video, "label": entry.label, "index": index, "sample_id": video_index, "view": view}

    @staticmethod
    def collate(samples: Sequence[dict]) -> dict:
        """The batch contract: video float (B, 3, T, S, S), label and index long (B,), plus sample_id and
        view for test items. Train samples (R stacked copies) are flattened to R x B rows, each
        sample's copies adjacent. `replaced` (the robust wrapper's count) stays one per decode."""
        first = samples[0]
        batch: dict = {}
        if first["video"].ndim == 5:  # repeated augmentation
            for key in ("video", "label", "index"):
                batch[key] = torch.cat([s[key] for s in samples])
        else:
            batch["video"] = torch.stack([s["video"] for s in samples])
            for key in ("label", "index"):
                batch[key] = torch.tensor([int(s[key]) for s in samples], dtype=torch.long)
        for key in ("sample_id", "view", "replaced"):
            if key in first:
                batch[key] = torch.tensor([int(s[key]) for s in samples], dtype=torch.long)
        return batch


__all__ = ["VideoClassificationDataset"]
