"""The resumable sampler: same order and seeds from any position, ranks partition the epoch."""

from __future__ import annotations

from tessera.train.sampler import ResumableSampler


def test_resume_from_a_position_continues_the_same_sequence():
    full = ResumableSampler(20, 16, seed=5)
    full.start(epoch=3)
    items = list(full)
    assert len(items) == 16 and len({i for i, _ in items}) == 16
    resumed = ResumableSampler(20, 16, seed=5)
    resumed.start(epoch=3, position=6)
    assert list(resumed) == items[6:] and len(resumed) == 10


def test_epochs_and_seeds_differ():
    sampler = ResumableSampler(50, 50, seed=0)
    first = list(sampler)
    sampler.start(epoch=1)
    second = list(sampler)
    assert [i for i, _ in first] != [i for i, _ in second]
    assert len({s for _, s in first + second}) == 100


def test_ranks_split_one_order():
    whole = ResumableSampler(12, 12, seed=1)
    ranks = [ResumableSampler(12, 12, seed=1, rank=r, world=2) for r in range(2)]
    merged = [None] * 12
    for r, sampler in enumerate(ranks):
        for k, item in enumerate(sampler):
            merged[2 * k + r] = item
    assert merged == list(whole)
