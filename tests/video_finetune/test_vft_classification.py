"""VideoClassificationDataset on real mp4 files: train repeats, val view, test views, short videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tessera.data.lists import DatasetError, VideoEntry, read_path_label_list
from tessera.data.synthetic import write_synthetic_videos
from tessera.modalities.video import classification
from tessera.modalities.video.augment import resize_short_side
from tessera.modalities.video.classification import VideoClassificationDataset
from tessera.modalities.video.reading import VideoReadError, read_clip
from tessera.modalities.video.sampling import dense_test_indices, spatial_crop_starts, tsn_test_indices

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> list[VideoEntry]:
    """3 clips of 72 frames, 80x64: more than the 64-frame dense window."""
    out = tmp_path_factory.mktemp("long")
    return read_path_label_list(write_synthetic_videos(out, 3, frames=72, height=64, width=80, seed=1))


@pytest.fixture(scope="module")
def short_videos(tmp_path_factory) -> list[VideoEntry]:
    """2 clips of 10 frames, 64x48: shorter than a 16-frame clip."""
    out = tmp_path_factory.mktemp("short")
    return read_path_label_list(write_synthetic_videos(out, 2, frames=10, height=48, width=64, seed=2))


def test_train_repeats_come_from_one_decode(long_videos, monkeypatch):
    calls = []
    real = classification.read_frames

    def counting(reader, path, indices):
        calls.append(list(indices))
        return real(reader, path, indices)

    monkeypatch.setattr(classification, "read_frames", counting)
    ds = VideoClassificationDataset(long_videos, "train", input_size=32, repeats=3)
    sample = ds[(1, 99)]
    assert len(calls) == 1 and len(calls[0]) == 16
    assert sample["video"].shape == (3, 3, 16, 32, 32) and sample["video"].dtype == torch.float32
    assert sample["label"].tolist() == [long_videos[1].label] * 3 and sample["index"].tolist() == [1] * 3
    copies = sample["video"]
    assert not torch.equal(copies[0], copies[1]) and not torch.equal(copies[1], copies[2])
    # the key's seed fixes everything, frames and augmentation
    assert torch.equal(ds[(1, 99)]["video"], copies)
    assert not torch.equal(ds[(1, 100)]["video"], copies)


def test_train_collate_flattens_sample_major(long_videos):
    ds = VideoClassificationDataset(long_videos, "train", input_size=16, repeats=2, randaug=None)
    samples = [ds[(0, 1)], ds[(2, 2)]]
    samples[0]["replaced"] = 1  # as the robust wrapper adds it: one count per decode
    samples[1]["replaced"] = 0
    batch = VideoClassificationDataset.collate(samples)
    assert batch["video"].shape == (4, 3, 16, 16, 16)
    assert batch["index"].tolist() == [0, 0, 2, 2]
    assert batch["label"].tolist() == [long_videos[0].label] * 2 + [long_videos[2].label] * 2
    assert torch.equal(batch["video"][1], samples[0]["video"][1])
    assert batch["replaced"].tolist() == [1, 0]


def test_val_is_one_centre_view(long_videos):
    ds = VideoClassificationDataset(long_videos, "val", input_size=48, mean=ZERO, std=ONE)
    assert len(ds) == 3
    sample = ds[0]
    assert sample["video"].shape == (3, 16, 48, 48) and sample["index"] == 0
    assert torch.equal(ds[0]["video"], sample["video"])  # a plain index is its own seed
    fixed = VideoClassificationDataset(long_videos, "val", input_size=48, val_clip="center", mean=ZERO, std=ONE)
    # the centre window of 72 frames at stride 4: list of 18, start (18 - 16) // 2 = 1 -> frame 4
    frames = read_clip(long_videos[0].path, list(range(4, 68, 4)))
    expected = resize_short_side(frames, 48)[:, :, 6:54].permute(3, 0, 1, 2).float() / 255  # 48x60: left 6
    assert torch.allclose(fixed[0]["video"], expected, atol=1e-6)


def test_test_views_enumerate_videos_and_positions(long_videos):
    ds = VideoClassificationDataset(long_videos, "test", input_size=48, num_clips=5, num_crops=3,
                                    mean=ZERO, std=ONE)
    assert len(ds) == 3 * 15 and ds.num_views == 15
    seen = set()
    for item in range(len(ds)):
        video, view = ds.video_of(item)
        assert (video, view) == (item % 3, item // 3)  # the reference's order: view outer, video inner
        seen.add((video, view))
    assert seen == {(v, k) for v in range(3) for k in range(15)}
    item = 2 + 3 * 7  # video 2, view 7 = clip 2, crop 1
    sample = ds[item]
    assert (sample["sample_id"], sample["view"], sample["index"]) == (2, 7, item)
    assert ds.entry_path(item) == long_videos[2].path
    indices = dense_test_indices(72, 16, 4, 5)[2]
    resized = resize_short_side(read_clip(long_videos[2].path, indices), 48)  # 64x80 -> 48x60
    left = spatial_crop_starts(60, 48, 3)[1]
    expected = resized[:, :, left:left + 48].permute(3, 0, 1, 2).float() / 255
    assert left == 6 and torch.allclose(sample["video"], expected, atol=1e-6)
    batch = VideoClassificationDataset.collate([ds[0], ds[4]])
    assert batch["sample_id"].tolist() == [0, 1] and batch["view"].tolist() == [0, 1]
    assert batch["video"].shape == (2, 3, 16, 48, 48)


def test_tsn_test_views(long_videos):
    ds = VideoClassificationDataset(long_videos, "test", sampling="tsn", input_size=48, num_clips=2,
                                    num_crops=3, mean=ZERO, std=ONE)
    assert len(ds) == 3 * 6
    sample = ds[1 + 3 * 4]  # video 1, view 4 = clip 1 (segment centres), crop 1
    frames = read_clip(long_videos[1].path, tsn_test_indices(72, 16, 2)[1])
    expected = resize_short_side(frames, 48)[:, :, 6:54].permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(sample["video"], expected, atol=1e-6)
    with pytest.raises(ValueError):
        VideoClassificationDataset(long_videos, "test", sampling="tsn", num_clips=5)


def test_short_video_is_padded_as_the_reference(short_videos):
    # dense: 10 frames at stride 4 -> linspace(0, 10, 2) = [0, 9] then 14 copies of the last frame
    ds = VideoClassificationDataset(short_videos, "val", input_size=48, mean=ZERO, std=ONE)
    video = ds[0]["video"]
    last = read_clip(short_videos[0].path, [9])[0]
    assert torch.allclose(video[:, 1:], video[:, 1:2].expand(-1, 15, -1, -1))
    assert torch.allclose(video[:, 1], torch.from_numpy(last[:, 8:56]).permute(2, 0, 1).float() / 255)
    assert not torch.allclose(video[:, 0], video[:, 1])
    # TSN: fewer frames than segments -> frame 0 sixteen times
    tsn = VideoClassificationDataset(short_videos, "val", sampling="tsn", input_size=48, mean=ZERO, std=ONE)
    video = tsn[1]["video"]
    assert torch.allclose(video, video[:, :1].expand(-1, 16, -1, -1))
    # train works on short videos too, and test views are all the same clip
    train = VideoClassificationDataset(short_videos, "train", input_size=16, repeats=2)
    assert train[(0, 3)]["video"].shape == (2, 3, 16, 16, 16)
    test = VideoClassificationDataset(short_videos, "test", input_size=48, num_clips=5, num_crops=1)
    assert torch.equal(test[0]["video"], test[2 * 4]["video"])


def test_read_errors_and_missing_labels(tmp_path, long_videos):
    missing = VideoEntry(str(tmp_path / "nope.mp4"), 0)
    ds = VideoClassificationDataset([missing], "train", input_size=16)
    with pytest.raises(VideoReadError):
        ds[(0, 0)]
    with pytest.raises(DatasetError, match="no label"):
        VideoClassificationDataset([VideoEntry(long_videos[0].path)], "train")
    VideoClassificationDataset([VideoEntry(long_videos[0].path)], "test")  # unlabeled test videos are fine
    with pytest.raises(ValueError):
        VideoClassificationDataset(long_videos, "eval")


def test_flip_off_dataset_never_mirrors(long_videos):
    ds = VideoClassificationDataset(long_videos, "train", input_size=16, repeats=1, flip=False)
    for seed in range(10):
        ds[(0, seed)]
        assert ds.transform.last_params["flipped"] is False
    assert np.isclose(ds.transform.erase_prob, 0.25)
