"""The VideoMAE pretraining sample: one strided clip, one multi-scale crop, uint8 out.

Every random draw of a sample comes from a generator seeded by the sampler's per-sample seed, not
from a worker's global state, so a resumed run rebuilds each sample bit for bit whichever worker
reads it and however many workers there are.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tessera.data.lists import VideoEntry
from tessera.modalities.video.reading import open_video, pretrain_clip_indices, read_frames
from tessera.modalities.video.transforms import crop_resize_clip, multiscale_crop_box


class VideoPretrainDataset(Dataset):
    """MCG-NJU/VideoMAE:datasets.py `build_pretraining_dataset` minus the mask and the normalisation.

    Masks are drawn on the accelerator by the objective; normalisation runs there too
    (`normalize_clip_batch`), so a sample is `{"video": uint8 (3, T, S, S), "index": int}`.
    Read errors propagate as VideoReadError: replacing bad samples is the robust wrapper's job.
    """

    def __init__(self, entries: Sequence[VideoEntry], clip_len: int = 16, stride: int = 4, out_size: int = 224,
                 scales: Sequence[float] = (1, .875, .75, .66), max_distort: int = 1,
                 crop_on_device: bool = False) -> None:
        # Defaults: 16 frames (scripts/*/pretrain.sh --num_frames 16), stride 4 (K400/UCF101
        # --sampling_rate 4; SSv2 uses 2), 224 px and scales [1, .875, .75, .66] (datasets.py).
        if clip_len < 1 or stride < 1 or out_size < 1:
            raise ValueError(f"clip_len, stride and out_size must be >= 1, got {clip_len}, {stride}, {out_size}")
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be in (0, 1], got {list(scales)}")
        if max_distort < 0:
            raise ValueError(f"max_distort must be >= 0, got {max_distort}")
        self.entries = list(entries)
        self.clip_len = clip_len
        self.stride = stride
        self.out_size = out_size
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = max_distort
        self.crop_on_device = crop_on_device

    def __len__(self) -> int:
        return len(self.entries)

    def entry_path(self, index: int) -> str:
        return self.entries[index].path

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        """`key` is `(index, seed)` from the sampler, or a plain index (then seed = index)."""
        if isinstance(key, (tuple, list)):
            index, seed = (int(k) for k in key)
        else:
            index = seed = int(key)
        path = self.entries[index].path
        # Draw order (start frame, then crop) follows the reference: kinetics.py picks the frames in
        # __getitem__ before the transform crops.
        rng = np.random.default_rng(seed)
        reader = open_video(path)
        indices = pretrain_clip_indices(len(reader), self.clip_len, self.stride, rng)
        frames = read_frames(reader, path, indices)
        del reader  # decord frees its decoder on collection; do not hold it while resizing
        box = multiscale_crop_box(frames.shape[1], frames.shape[2], self.out_size, self.scales,
                                  self.max_distort, rng)
        if self.crop_on_device:  # the accelerator crops and resizes the whole batch (crop_batch_on_device)
            return {"frames": torch.from_numpy(frames), "box": torch.tensor(box), "index": index}
        video = crop_resize_clip(frames, box, self.out_size)
        return {"video": video, "index": index}

    @staticmethod
    def collate(samples: Sequence[dict]) -> dict:
        """Stack into the batch contract: video uint8 (B, 3, T, S, S), index long (B,).

        Uncropped samples keep their frames as a list (videos differ in size) with boxes (B, 4).
        """
        batch = {key: torch.tensor([s[key] for s in samples], dtype=torch.long)
                 for key in ("index", "replaced") if key in samples[0]}
        if "frames" in samples[0]:
            batch["frames"] = [s["frames"] for s in samples]
            batch["box"] = torch.stack([s["box"] for s in samples])
        else:
            batch["video"] = torch.stack([s["video"] for s in samples])
        return batch


def crop_batch_on_device(frames: Sequence[torch.Tensor], boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """The multi-scale crop of each sample, done where the frames are (the accelerator): uint8
    (T, H, W, 3) frames and (B, 4) boxes -> uint8 (B, 3, T, S, S), the same arithmetic as the workers'."""
    return torch.stack([crop_resize_clip(f, tuple(int(v) for v in box), out_size) for f, box in zip(frames, boxes.tolist())])
