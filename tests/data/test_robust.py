"""Robust reading: bad samples are replaced deterministically, counted, logged; a decoder that kills
its process costs one sample, not the DataLoader iteration."""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tessera.data.lists import VideoEntry, read_path_label_list
from tessera.data.robust import RobustDataset, TooManyBadSamples, check_bad_fraction, replacement_key
from tessera.data.synthetic import write_synthetic_videos
from tessera.modalities.video.dataset import VideoPretrainDataset
from tessera.train.sampler import ResumableSampler


class FakeDECORDError(Exception):
    """Like decord.DECORDError: an Exception, not a RuntimeError."""


class Planted(torch.utils.data.Dataset):
    """Samples whose pixels depend on (index, seed); chosen indices fail in chosen ways."""

    def __init__(self, n: int = 24, raise_at: dict[int, type[BaseException]] | None = None,
                 abort_at: tuple[int, ...] = (), sleep_at: tuple[int, ...] = (), pid_log: Path | None = None) -> None:
        self.n = n
        self.raise_at = dict(raise_at or {})
        self.abort_at = set(abort_at)
        self.sleep_at = set(sleep_at)
        self.pid_log = pid_log
        self.reads: list[int] = []  # indices read in this process

    def __len__(self) -> int:
        return self.n

    def entry_path(self, index: int) -> str:
        return f"/videos/clip_{index:03d}.mp4"

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, key)
        self.reads.append(index)
        if self.pid_log is not None:
            with open(self.pid_log, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        if index in self.abort_at:
            os.abort()
        if index in self.sleep_at:
            time.sleep(30)
        if index in self.raise_at:
            raise self.raise_at[index](f"planted failure in {self.entry_path(index)}")
        value = np.random.default_rng([index, seed % 2**32]).integers(0, 256)
        return {"video": torch.full((3, 2, 4, 4), int(value), dtype=torch.uint8), "index": index}


class Mixed(Planted):
    """Samples that also hold a float64 array, a bfloat16 tensor, a 0-d tensor and a string."""

    def __getitem__(self, key):
        sample = super().__getitem__(key)
        sample["extra"] = [np.arange(5, dtype=np.float64), torch.ones(2, dtype=torch.bfloat16), torch.tensor(3), "s"]
        return sample


BAD = {3: RuntimeError, 5: FakeDECORDError, 7: IndexError}


def expected(key: tuple[int, int], bad: set[int], n: int) -> tuple[int, int]:
    """(replaced, index delivered) by the documented rule: draws of bad indices count, in order."""
    index, seed = key
    count = 0
    while index in bad:
        count += 1
        index, _ = replacement_key(seed, count, n)
    return count, index


def children() -> list[int]:
    """Live (or zombie) processes whose parent is this one."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry))
    return found


def epoch(dataset: RobustDataset, num_workers: int, batch_size: int = 4, seed: int = 7) -> list[dict]:
    sampler = ResumableSampler(len(dataset), len(dataset), seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        collate_fn=dataset.collate)
    return list(loader)


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_planted_failures_are_replaced_counted_and_logged(tmp_path, caplog):
    log = tmp_path / "bad.jsonl"
    inner = Planted(raise_at=BAD)
    robust = RobustDataset(inner, log_path=log)
    with caplog.at_level(logging.WARNING, logger="tessera.data"):
        samples = {i: robust[(i, 1000 + i)] for i in range(len(robust))}
    for i, sample in samples.items():
        count, delivered = expected((i, 1000 + i), set(BAD), len(inner))
        assert sample["replaced"] == count and sample["index"] == delivered
        assert sample["index"] not in BAD
    assert all(samples[i]["replaced"] >= 1 for i in BAD)
    assert set(robust.bad) == set(BAD)
    assert "planted failure" in robust.bad[3] and robust.bad[5].startswith("FakeDECORDError")
    assert robust.bad[7].startswith("IndexError")
    lines = log_lines(log)
    assert {(e["index"], e["path"]) for e in lines} == {(i, inner.entry_path(i)) for i in BAD}
    assert all(set(e) == {"index", "path", "reason"} for e in lines)
    for i in BAD:
        assert any(inner.entry_path(i) in r.getMessage() for r in caplog.records if r.name == "tessera.data")


def test_replacement_is_deterministic_and_known_bad_are_not_read_again(tmp_path):
    inner = Planted(raise_at=BAD)
    robust = RobustDataset(inner)
    key = (3, 123456789)
    first = robust[key]
    reads = list(inner.reads)
    second = robust[key]  # 3 is known bad now: replaced without reading it
    assert inner.reads[len(reads):] == [first["index"]]
    fresh = RobustDataset(Planted(raise_at=BAD))[key]
    for other in (second, fresh):
        assert other["index"] == first["index"] and other["replaced"] == first["replaced"] == 1
        assert torch.equal(other["video"], first["video"])
    # The replacement's own seed comes from (seed, attempt): another seed gives another draw.
    assert (first["replaced"], first["index"]) == expected(key, set(BAD), len(inner))
    assert robust[(3, 1)]["index"] == expected((3, 1), set(BAD), len(inner))[1] != first["index"]
    # A plain index works too (seed = index, as VideoPretrainDataset does).
    assert robust[5]["index"] == RobustDataset(Planted(raise_at=BAD))[5]["index"] == expected((5, 5), set(BAD), 24)[1]


def test_count_does_not_depend_on_what_a_process_already_knows(tmp_path):
    """A worker that learned every bad file and a fresh one report the same samples and counts."""
    keys = [(i, 77 * i + 5) for i in range(24)] * 2
    learned = RobustDataset(Planted(raise_at=BAD))
    for key in keys:
        learned[key]
    for key in keys:
        a, b = learned[key], RobustDataset(Planted(raise_at=BAD))[key]
        assert (a["index"], a["replaced"]) == (b["index"], b["replaced"]) == expected(key, set(BAD), 24)[::-1]


def test_log_teaches_a_new_process_the_bad_files(tmp_path):
    log = tmp_path / "bad.jsonl"
    RobustDataset(Planted(raise_at=BAD), log_path=log)[(3, 9)]
    log.write_text(log.read_text() + json.dumps({"index": 4, "path": "/elsewhere/x.mp4", "reason": "r"}) + "\n{half")
    inner = Planted(raise_at=BAD)
    robust = RobustDataset(inner, log_path=log)
    sample = robust[(3, 9)]
    assert 3 not in inner.reads and sample["replaced"] == 1
    assert 4 not in robust.bad  # its path does not match this dataset's entry 4
    assert len(log_lines_ok(log)) == 2


def log_lines_ok(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_give_up_after_max_retries_and_other_errors_propagate():
    everything_bad = Planted(n=6, raise_at={i: RuntimeError for i in range(6)})
    with pytest.raises(TooManyBadSamples, match=r"no readable replacement for sample 2 \(/videos/clip_002.mp4\) in 4"):
        RobustDataset(everything_bad, max_retries=4)[(2, 3)]
    narrow = RobustDataset(Planted(raise_at={1: ValueError}), errors=(RuntimeError,))
    with pytest.raises(ValueError, match="planted failure"):
        narrow[(1, 0)]
    with pytest.raises(IndexError, match="outside"):
        narrow[(24, 0)]


def test_check_bad_fraction_rule_and_message(tmp_path):
    check_bad_fraction(0, 100, 0.0, 1000)
    with pytest.raises(TooManyBadSamples):
        check_bad_fraction(1, 100, 0.0, 1000)  # a zero limit refuses the first bad read
    check_bad_fraction(10, 50, 0.01, 1000)  # early: the dataset size is the denominator (10 <= 10)
    with pytest.raises(TooManyBadSamples) as info:
        check_bad_fraction(11, 50, 0.01, 1000, log_path=tmp_path / "bad.jsonl")
    message = str(info.value)
    assert "11 of 61 sample reads failed (18.03%)" in message and "max_bad_fraction=0.01" in message
    assert str(tmp_path / "bad.jsonl") in message and "dataset size 1000" in message
    check_bad_fraction(30, 2970, 0.01, 1000)  # later: failed reads over reads, 30 / 3000
    with pytest.raises(TooManyBadSamples):
        check_bad_fraction(31, 2970, 0.01, 1000)
    with pytest.raises(ValueError):
        check_bad_fraction(0, 1, 1.5, 10)
    robust = RobustDataset(Planted(), max_bad_fraction=0.1, log_path=tmp_path / "x.jsonl")
    robust.check(2, 20)
    with pytest.raises(TooManyBadSamples, match="x.jsonl"):
        robust.check(3, 20)


def test_isolated_reader_survives_abort_and_returns_identical_samples(tmp_path):
    plain = RobustDataset(Mixed(raise_at=BAD))
    robust = RobustDataset(Mixed(raise_at=BAD, abort_at=(11,)), isolate=True, log_path=tmp_path / "bad.jsonl")
    try:
        for i in (0, 3, 11, 12):
            got, want = robust[(i, i + 40)], plain[(i, i + 40)]
            if i != 11:
                assert got["index"] == want["index"] and got["replaced"] == want["replaced"]
                assert torch.equal(got["video"], want["video"]) and got["video"].dtype == torch.uint8
                assert np.array_equal(got["extra"][0], want["extra"][0]) and got["extra"][0].dtype == np.float64
                assert torch.equal(got["extra"][1], want["extra"][1]) and got["extra"][1].dtype == torch.bfloat16
                assert got["extra"][2].shape == () and got["extra"][3] == "s"
        assert robust.bad[11] == "decoder killed its process (signal 6, SIGABRT)"
        assert robust[(11, 51)]["replaced"] == 1
        assert len(children()) == 1  # one reader child, restarted after the abort
        # Pickle-safe: the handle is not pickled, the copy starts its own child.
        copy = pickle.loads(pickle.dumps(robust))
        assert copy._reader is None and copy.bad == robust.bad
        assert copy[(12, 52)]["index"] == 12
        assert len(children()) == 2
        start = time.monotonic()
        robust.close()  # its child exits at once: the copy's child holds no copy of its socket
        assert time.monotonic() - start < 0.5 and len(children()) == 1
        copy.close()
    finally:
        robust.close()
    assert children() == []


def test_isolated_reader_timeout_kills_a_hung_decoder():
    robust = RobustDataset(Planted(sleep_at=(2,)), isolate=True, timeout=0.5)
    try:
        start = time.monotonic()
        sample = robust[(2, 8)]
        assert time.monotonic() - start < 5 and sample["replaced"] == 1
        assert "longer than 0.5 s" in robust.bad[2]
    finally:
        robust.close()
    assert children() == []


@pytest.mark.parametrize("num_workers", [0, 2])
def test_abort_in_a_dataloader_epoch_costs_one_sample(tmp_path, num_workers):
    log, pids = tmp_path / "bad.jsonl", tmp_path / "pids.txt"
    inner = Planted(n=24, raise_at={5: FakeDECORDError}, abort_at=(9,), pid_log=pids)
    robust = RobustDataset(inner, isolate=True, log_path=log)
    assert robust[(0, 1)]["replaced"] == 0  # a reader child of this process exists before the workers fork
    batches = epoch(robust, num_workers)
    assert robust[(9, 1)]["replaced"] == 1 and robust[(1, 1)]["replaced"] == 0  # and still serves here
    robust.close()
    sampler = ResumableSampler(24, 24, seed=7)
    want = [expected(key, {5, 9}, 24) for key in sampler]
    assert sum(len(b["index"]) for b in batches) == 24
    assert torch.cat([b["replaced"] for b in batches]).tolist() == [count for count, _ in want]
    assert torch.cat([b["index"] for b in batches]).tolist() == [index for _, index in want]
    entries = {e["path"]: e["reason"] for e in log_lines(log)}
    assert entries[inner.entry_path(9)] == "decoder killed its process (signal 6, SIGABRT)"
    assert set(entries) == {inner.entry_path(5), inner.entry_path(9)}
    readers = {int(p) for p in pids.read_text().split()}
    assert os.getpid() not in readers and not any(os.path.exists(f"/proc/{p}") for p in readers)
    assert children() == []


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[VideoEntry]:
    root = tmp_path_factory.mktemp("videos")
    entries = read_path_label_list(write_synthetic_videos(root, 5, frames=16))
    broken = root / "broken"
    broken.mkdir()
    (broken / "empty.mp4").write_bytes(b"")
    (broken / "x.mp4").mkdir()
    (broken / "notes.mp4").write_text("this is not a video\n")
    data = Path(entries[0].path).read_bytes()
    (broken / "truncated.mp4").write_bytes(data[: len(data) // 2])
    bad = [VideoEntry(str(broken / name)) for name in ("empty.mp4", "x.mp4", "notes.mp4", "truncated.mp4")]
    return entries[:2] + [bad[0]] + entries[2:4] + bad[1:3] + entries[4:] + [bad[3]]


@pytest.mark.parametrize("isolate,num_workers", [(False, 0), (True, 2)])
def test_real_broken_files_through_the_video_dataset(clips, tmp_path, isolate, num_workers):
    log = tmp_path / "bad.jsonl"
    bad_paths = {e.path for e in clips if "broken" in e.path}
    bad = {i for i, e in enumerate(clips) if e.path in bad_paths}
    videos = VideoPretrainDataset(clips, clip_len=4, stride=2, out_size=32)
    robust = RobustDataset(videos, max_bad_fraction=0.5, isolate=isolate, log_path=log)
    batches = epoch(robust, num_workers, batch_size=3, seed=3)
    robust.close()
    want = [expected(key, bad, len(clips)) for key in ResumableSampler(len(clips), len(clips), seed=3)]
    replaced = torch.cat([b["replaced"] for b in batches])
    assert replaced.tolist() == [count for count, _ in want]
    assert torch.cat([b["index"] for b in batches]).tolist() == [index for _, index in want]
    assert all(b["video"].dtype == torch.uint8 and b["video"].shape[1:] == (3, 4, 32, 32) for b in batches)
    reasons = {e["path"]: e["reason"] for e in log_lines(log)}
    assert set(reasons) == bad_paths
    assert "empty" in reasons[str(Path(clips[2].path))] and "not a regular file" in reasons[str(Path(clips[5].path))]
    robust.check(int(replaced.sum()), len(replaced))  # 4 of 9 files are bad, under the 0.5 limit
    with pytest.raises(TooManyBadSamples, match="bad.jsonl"):
        check_bad_fraction(int(replaced.sum()), len(replaced), 0.1, len(clips), log)
    assert children() == []
