"""A sampler that can stop and start again at any sample, and hands each sample its own seed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the sample at `position` of `epoch`: its crops and clip start derive from it."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1, np.uint64)[0]) >> 1


class ResumableSampler(Sampler[tuple[int, int]]):
    """Yields `(index, seed)` for one epoch of a seeded shuffle, from a given position.

    The epoch's order and every sample's seed are functions of (seed, epoch, position) only, so a run
    that resumes at position p of epoch e sees exactly the samples an uninterrupted run would. With
    several processes each rank takes every world-th item of the same order.
    """

    def __init__(
        self, dataset_len: int, samples_per_epoch: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1
    ) -> None:
        if samples_per_epoch > dataset_len or samples_per_epoch % world:
            raise ValueError(f"samples_per_epoch={samples_per_epoch} must be <= {dataset_len} and divisible by {world}")
        self.dataset_len = dataset_len
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.position = 0  # global samples of this epoch already consumed

    def start(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = epoch, position

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.dataset_len)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.dataset_len, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order(self.epoch)[: self.samples_per_epoch].tolist()
        for position in range(self.position + self.rank, self.samples_per_epoch, self.world):
            yield order[position], sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return (self.samples_per_epoch - self.position) // self.world
