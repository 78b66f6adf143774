"""Data loading for VideoMAE pretraining: our worker path against a reference-style one, in one process.

    python bench/data_loading.py --workers 1 2
    python bench/data_loading.py --smoke            # tiny videos, seconds (used by the tests)

Both paths read the same clips: the same video, the same 16 frame indices at stride 4
(`pretrain_clip_indices`) and the same multi-scale crop box (`multiscale_crop_box`), from one seed per
sample, so they do the same decoding and the same amount of resizing:

    baseline   what MCG-NJU/VideoMAE's workers do (kinetics.py, transforms.py, volume_transforms.py,
               re-written here): decord decode, one PIL image per frame (`.convert("RGB")`), crop and
               PIL bilinear resize frame by frame, stack the frames into an (H, W, 3T) array, to a float
               tensor / 255, normalise with a Python loop over the 3T channel planes, view as
               (3, T, S, S), and the tube mask drawn in numpy: a float32 clip leaves the worker.
    ours       tessera.modalities.video.dataset.VideoPretrainDataset: decord decode, one crop of the
               uint8 (T, H, W, 3) array, one antialiased bilinear torch resize of the whole uint8 clip
               (torch's uint8 kernel), uint8 out (normalisation and masks wait for the accelerator, where
               they are batched).
    ours + normalise on the CPU   the same plus normalize_clip_batch in the worker, for a like-for-like
               comparison with the baseline's float output.
    ours with a float resize round trip   the same, resizing a float copy and rounding back to uint8
               (our earlier worker path, and what crop_resize_clip does off the CPU): what the uint8
               kernel saves.
    decode only  opening the file and decoding the 16 frames: the floor both paths share.

"clips/s per worker" runs each path in this process with one torch thread (as a DataLoader worker has),
paths interleaved within each repeat, and reports the median over --repeats of clips / time.

"data wait share": a DataLoader with N workers (--workers) feeds a stand-in training step that takes
--step-ms per batch: it normalises the batch where the accelerator would (ours) and then sleeps for the
rest of the step, as a host does while its GPU computes. The share is the time spent waiting in
`next(loader)` over the whole time, the first batch (worker start-up) left out; median over --repeats,
paths interleaved. The stand-in step leaves the CPU to the workers, as a GPU step would: on a CPU-only
run the training step itself needs the same cores, so there the share says little.

The videos are synthetic (tessera.data.synthetic): --width x --height, --frames frames at 25 fps, libx264,
one keyframe per 250 frames (x264's default), like the reference's preprocessed Kinetics (short side 320
or 240, about 10 s). They are written once into --data-dir (a cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run the checkout's tessera

import decord  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from machine_info import cpu_model, load_average  # noqa: E402  (bench/, the script's folder)
from tessera.data.lists import read_path_label_list  # noqa: E402
from tessera.data.synthetic import ensure_synthetic_videos  # noqa: E402
from tessera.modalities.video.dataset import VideoPretrainDataset  # noqa: E402
from tessera.modalities.video.reading import open_video, pretrain_clip_indices, read_frames  # noqa: E402
from tessera.modalities.video.transforms import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    multiscale_crop_box,
    normalize_clip_batch,
)

SCALES = (1, .875, .75, .66)
FLOAT_RESIZE = "ours with a float resize round trip"


class ReferenceStyleDataset(Dataset):
    """The reference's pretraining sample, frame by frame with PIL (our own code, same steps).

    Returns {"video": float32 (3, T, S, S) normalised, "mask": bool (N,), "index": int}.
    """

    def __init__(self, paths: list[str], clip_len: int, stride: int, out_size: int, tubelet: tuple[int, int, int],
                 mask_ratio: float = 0.9) -> None:
        self.paths = paths
        self.clip_len, self.stride, self.out_size = clip_len, stride, out_size
        self.mask_grid = (clip_len // tubelet[0], out_size // tubelet[1], out_size // tubelet[2])
        self.mask_ratio = mask_ratio

    def __len__(self) -> int:
        return len(self.paths)

    def _tube_mask(self, rng: np.random.Generator) -> np.ndarray:
        frames, height, width = self.mask_grid
        per_frame = height * width
        hidden = int(self.mask_ratio * per_frame)
        spatial = np.hstack([np.zeros(per_frame - hidden), np.ones(hidden)])
        rng.shuffle(spatial)
        return np.tile(spatial, (frames, 1)).flatten()

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, (tuple, list)) else (key, key)
        path = self.paths[index]
        rng = np.random.default_rng(seed)
        reader = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
        indices = pretrain_clip_indices(len(reader), self.clip_len, self.stride, rng)
        buffer = reader.get_batch(indices).asnumpy()
        del reader
        images = [Image.fromarray(frame).convert("RGB") for frame in buffer]
        # GroupMultiScaleCrop: one box for the clip, then crop + bilinear resize of each PIL frame.
        width, height = images[0].size
        top, left, crop_h, crop_w = multiscale_crop_box(height, width, self.out_size, SCALES, 1, rng)
        size = (self.out_size, self.out_size)
        images = [img.crop((left, top, left + crop_w, top + crop_h)).resize(size, Image.BILINEAR) for img in images]
        # Stack + ToTorchFormatTensor(div=True): (H, W, 3T) -> float (3T, H, W) / 255.
        stacked = np.concatenate([np.asarray(img) for img in images], axis=2)
        tensor = torch.from_numpy(stacked).permute(2, 0, 1).contiguous().float().div(255)
        # GroupNormalize: one plane at a time, the mean and std repeated for every frame.
        means, stds = list(IMAGENET_MEAN) * self.clip_len, list(IMAGENET_STD) * self.clip_len
        for plane, mean, std in zip(tensor, means, stds):
            plane.sub_(mean).div_(std)
        video = tensor.view(self.clip_len, 3, self.out_size, self.out_size).transpose(0, 1)
        return {"video": video, "mask": torch.from_numpy(self._tube_mask(rng)).bool(), "index": index}


class DecodeOnly(Dataset):
    def __init__(self, paths: list[str], clip_len: int, stride: int) -> None:
        self.paths, self.clip_len, self.stride = paths, clip_len, stride

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key) -> dict:
        index, seed = key
        rng = np.random.default_rng(seed)
        reader = open_video(self.paths[index])
        frames = read_frames(reader, self.paths[index], pretrain_clip_indices(len(reader), self.clip_len, self.stride, rng))
        return {"frames": torch.from_numpy(frames)}


class NormalizedOurs(Dataset):
    """Our sample normalised in the worker (what the baseline's float output costs us, for comparison)."""

    def __init__(self, ours: VideoPretrainDataset) -> None:
        self.ours = ours

    def __len__(self) -> int:
        return len(self.ours)

    def __getitem__(self, key) -> dict:
        sample = self.ours[key]
        return {"video": normalize_clip_batch(sample["video"]), "index": sample["index"]}


class OursFloatResize(Dataset):
    """Ours as it was before the uint8 kernel: the crop converted to float, resized with the antialiased
    bilinear filter, rounded and cast back to uint8 (what crop_resize_clip still does off the CPU).
    Same frames, box and draw order as VideoPretrainDataset; kept to show what the uint8 kernel saves."""

    def __init__(self, ours: VideoPretrainDataset) -> None:
        self.ours = ours

    def __len__(self) -> int:
        return len(self.ours)

    def __getitem__(self, key) -> dict:
        index, seed = key
        ours, path = self.ours, self.ours.entries[index].path
        rng = np.random.default_rng(seed)
        reader = open_video(path)
        frames = read_frames(reader, path, pretrain_clip_indices(len(reader), ours.clip_len, ours.stride, rng))
        del reader
        top, left, crop_h, crop_w = multiscale_crop_box(frames.shape[1], frames.shape[2], ours.out_size, ours.scales,
                                                        ours.max_distort, rng)
        video = torch.from_numpy(frames)[:, top:top + crop_h, left:left + crop_w].permute(0, 3, 1, 2)
        if (crop_h, crop_w) != (ours.out_size, ours.out_size):
            resized = F.interpolate(video.float(), size=(ours.out_size, ours.out_size), mode="bilinear",
                                    align_corners=False, antialias=True)
            video = resized.round_().clamp_(0, 255).to(torch.uint8)
        return {"video": video.permute(1, 0, 2, 3).contiguous(), "index": index}


class Keys(torch.utils.data.Sampler):
    """(index, seed) keys: video i % n with seed i, so every path reads the same clips in the same order."""

    def __init__(self, num_videos: int, count: int, start: int = 0) -> None:
        self.num_videos, self.count, self.start = num_videos, count, start

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter([(i % self.num_videos, i) for i in range(self.start, self.start + self.count)])


def output_bytes(sample: dict) -> int:
    return sum(v.numel() * v.element_size() for v in sample.values() if torch.is_tensor(v))


def per_worker(paths_by_name: dict[str, Dataset], args, num_videos: int) -> dict[str, tuple[list[float], int]]:
    """clips/s of each path in this process with one thread; interleaved per repeat."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {name: ([], 0) for name in paths_by_name}
        for name, dataset in paths_by_name.items():  # warm-up: imports, decoder libraries, page cache
            results[name] = ([], output_bytes(dataset[(0, 10_000)]))
        for repeat in range(args.repeats):
            keys = list(Keys(num_videos, args.clips, start=repeat * args.clips))
            for name, dataset in paths_by_name.items():
                start = time.perf_counter()
                for key in keys:
                    dataset[key]
                rate = len(keys) / (time.perf_counter() - start)
                results[name][0].append(rate)
                print(f"#   repeat {repeat + 1}/{args.repeats} {name}: {rate:.2f} clips/s", flush=True)
        return results
    finally:
        torch.set_num_threads(threads)


def collate_stack(samples: list[dict]) -> dict:
    return torch.utils.data.default_collate(samples)


def wait_share(dataset: Dataset, workers: int, step_s: float, args, num_videos: int, normalize: bool) -> tuple[float, float]:
    """(wait share, clips/s delivered) of a DataLoader with `workers` feeding a `step_s` stand-in step."""
    loader = DataLoader(dataset, batch_size=args.batch, sampler=Keys(num_videos, args.batch * (args.batches + 1)),
                        num_workers=workers, collate_fn=collate_stack, prefetch_factor=2 if workers else None,
                        pin_memory=torch.cuda.is_available())
    iterator = iter(loader)
    batch = next(iterator)  # worker start-up, not counted
    waited = total = 0.0
    clips = 0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        waited += time.perf_counter() - t0
        t1 = time.perf_counter()
        if normalize:  # what our accelerator does first: uint8 -> normalised float
            normalize_clip_batch(batch["video"])
        remaining = step_s - (time.perf_counter() - t1)
        if remaining > 0:
            time.sleep(remaining)
        clips += batch["video"].shape[0]
    total = time.perf_counter() - start
    del iterator
    return waited / total, clips / total


def machine_line() -> str:
    model = cpu_model()
    return f"CPU {model}, {os.cpu_count()} cores, torch {torch.__version__}, decord {decord.__version__}, " \
           f"Pillow {Image.__version__}"


def default_data_dir(args) -> Path:
    root = Path(os.environ.get("TESSERA_CACHE", Path.home() / ".cache" / "tessera"))
    return root / f"bench-videos-{args.width}x{args.height}x{args.frames}-{args.videos}"


def run(args) -> int:
    tmp = None
    if args.smoke:
        tmp = tempfile.TemporaryDirectory(prefix="tessera-bench-")
        data_dir = Path(tmp.name)
    else:
        data_dir = Path(args.data_dir) if args.data_dir else default_data_dir(args)
    try:
        start = time.perf_counter()
        list_file = ensure_synthetic_videos(data_dir, args.videos, frames=args.frames, height=args.height,
                                            width=args.width, seed=0)
        made = time.perf_counter() - start
        entries = read_path_label_list(list_file)
        paths = [e.path for e in entries]
        tubelet = (2, args.out_size // 14, args.out_size // 14) if args.out_size % 14 == 0 else (2, 8, 8)
        ours = VideoPretrainDataset(entries, clip_len=args.clip_len, stride=args.stride, out_size=args.out_size)
        baseline = ReferenceStyleDataset(paths, args.clip_len, args.stride, args.out_size, tubelet)
        print(f"# data loading: {machine_line()}")
        print(f"# {len(paths)} synthetic videos {args.width}x{args.height}, {args.frames} frames (ready in {made:.1f} s); "
              f"clips of {args.clip_len} frames at stride {args.stride} -> {args.out_size}x{args.out_size}; "
              f"median over {args.repeats} repeats of {args.clips} clips")
        print(f"# load average at start (1, 5, 15 min): {load_average()}")
        paths_by_name = {
            "decode only": DecodeOnly(paths, args.clip_len, args.stride),
            "baseline (PIL per frame)": baseline,
            "ours": ours,
            "ours + normalise on the CPU": NormalizedOurs(ours),
            FLOAT_RESIZE: OursFloatResize(ours),
        }
        results = per_worker(paths_by_name, args, len(paths))
        print()
        print("## clips/s per worker (one process, one thread)")
        print()
        print("| path | clips/s (median [min, max]) | ms/clip | bytes out/clip | clips/s ours/base |")
        print("|---|---|---|---|---|")
        base = statistics.median(results["baseline (PIL per frame)"][0])
        for name, (rates, nbytes) in results.items():
            rate = statistics.median(rates)
            ratio = "-" if name == "decode only" else f"{rate / base:.2f}x"
            print(f"| {name} | {rate:.2f} [{min(rates):.2f}, {max(rates):.2f}] | {1e3 / rate:.0f} | "
                  f"{nbytes / 2**20:.2f} MiB | {ratio} |")
        print()
        print(f"## data wait share of the step (DataLoader, batch {args.batch}, {args.batches} batches after the "
              f"first; median over {args.repeats} repeats, paths interleaved)")
        print()
        print("| path | workers | step ms | clips/s delivered | data wait share (median [min, max]) | "
              "wait share ours/base |")
        print("|---|---|---|---|---|---|")
        loaders = (("baseline (PIL per frame)", baseline, False), ("ours", ours, True))
        for workers in args.workers:
            for step_ms in args.step_ms:
                runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in loaders}
                for _ in range(args.repeats):
                    for name, dataset, normalize in loaders:
                        runs[name].append(wait_share(dataset, workers, step_ms / 1e3, args, len(paths), normalize))
                base_share = statistics.median(s for s, _ in runs["baseline (PIL per frame)"])
                for name, _, _ in loaders:
                    shares = [s for s, _ in runs[name]]
                    share, rate = statistics.median(shares), statistics.median(r for _, r in runs[name])
                    ratio = f"{share / base_share:.2f}x" if base_share > 0 else "n/a"
                    print(f"| {name} | {workers} | {step_ms:g} | {rate:.2f} | {share:.1%} [{min(shares):.1%}, "
                          f"{max(shares):.1%}] | {ratio} |", flush=True)
        print(f"\n# load average at end (1, 5, 15 min): {load_average()}")
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="DataLoader workers for the wait share")
    parser.add_argument("--step-ms", nargs="+", type=float, default=[100.0, 250.0],
                        help="stand-in training step per batch, ms")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per wait-share run")
    parser.add_argument("--clips", type=int, default=12, help="clips per path per repeat (per-worker rate)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--out-size", type=int, default=224)
    parser.add_argument("--data-dir", default=None, help="where the synthetic videos are cached")
    parser.add_argument("--smoke", action="store_true", help="tiny videos and counts: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.videos, args.frames, args.width, args.height = 2, 24, 80, 64
        args.clip_len, args.stride, args.out_size = 4, 2, 32
        args.clips, args.repeats, args.batch, args.batches = 2, 1, 2, 2
        args.workers, args.step_ms = [1], [5.0]
    if min(args.workers) < 0 or args.batch < 1 or args.batches < 1 or args.clips < 1 or args.repeats < 1:
        parser.error("--workers must be >= 0; --batch, --batches, --clips and --repeats >= 1")
    return args


if __name__ == "__main__":
    sys.exit(run(parse_args()))
