"""Does VideoMAE pretraining learn the motion of the demo's clips, and does it pay off downstream?

    python bench/video_pretraining_payoff.py                  # CPU, about 8 min: the BENCHMARKS.md figures
    python bench/video_pretraining_payoff.py --device cuda --pretrain-steps 100000 --batch 64   # a GPU budget
    python bench/video_pretraining_payoff.py --smoke          # seconds (used by the tests)

`tessera demo` answers the question end to end on .mp4 files within minutes of a CPU; this script
measures the model alone, so that longer budgets and other designs cost minutes, not hours. Clips come
from the demo's generator (tessera.data.synthetic.render_clip: six motion classes, no single frame tells
the class), rendered in memory at the demo's resolution (32 x 40, 8 frames at stride 4, 32 x 32 crops).

Three measurements, each a ratio against a baseline computed in the same process:

1. What the reconstruction knows. At evenly spaced points of the pretraining, on hidden tokens of
   held-out clips: the error on tokens the shape covers, over the error of predicting the clip's
   static background there (the per-pixel temporal median: a model that ignores the shape); and the
   error on background tokens, over copying that background. A model that tracks the shape gets the
   first ratio well under 1; one that ignores it sits at 1 or above.
2. Frozen features: kNN and linear probes (tessera.eval.probes protocols) of the mean-pooled encoder
   states, pretrained over a randomly initialised encoder of the same seed.
3. Fine-tuning with few labels: --per-class labelled clips per class, a fixed number of steps (no
   selection, so the test clips never steer it), pretrained and from scratch, over --seeds seeds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run the checkout's tessera

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from machine_info import cpu_model, load_average  # noqa: E402  (bench/, the script's folder)
from tessera.core.decoder import MAEDecoder  # noqa: E402
from tessera.core.encoder import Encoder  # noqa: E402
from tessera.core.heads import PooledHead  # noqa: E402
from tessera.core.masking import RandomMasker, gather_tokens  # noqa: E402
from tessera.data.synthetic import MOTION_CLASSES, render_clip  # noqa: E402
from tessera.demo import mean_std  # noqa: E402
from tessera.eval.probes import probe  # noqa: E402
from tessera.modalities.video.masking import TubeMasker  # noqa: E402
from tessera.modalities.video.tokenizer import TubeletTokenizer  # noqa: E402
from tessera.objectives.mae import MAEObjective  # noqa: E402
from tessera.objectives.supervised import SupervisedObjective  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HEIGHT, WIDTH, SIZE = 32, 40, 32  # the demo's clips after the resize of the short side to 32


@dataclass
class Clips:
    video: Tensor  # uint8 (N, T, H, W, 3)
    label: Tensor  # (N,)


def render(count: int, seed: int, frames: int, stride: int) -> Clips:
    """Balanced labels, each clip from its own seeded generator (as write_synthetic_videos)."""
    labels = np.random.default_rng([seed, 0]).permutation(np.arange(count) % len(MOTION_CLASSES))
    video = np.empty((count, frames, HEIGHT, WIDTH, 3), np.uint8)
    for i, label in enumerate(labels.tolist()):
        clip = render_clip(MOTION_CLASSES[label], np.random.default_rng([seed, 1, i]), 32, HEIGHT, WIDTH)
        video[i] = clip[: frames * stride : stride]
    return Clips(torch.from_numpy(video), torch.from_numpy(labels))


def to_input(video: Tensor, device: torch.device, offsets: list[int] | None = None) -> Tensor:
    """uint8 (B, T, H, W, 3) -> normalised (B, 3, T, 32, 32): the given crop offsets, or the centre."""
    x = video.to(device).permute(0, 4, 1, 2, 3).float().div_(255)
    if offsets is None:
        left = (WIDTH - SIZE) // 2
        x = x[..., left:left + SIZE]
    else:
        x = torch.stack([x[i, ..., o:o + SIZE] for i, o in enumerate(offsets)])
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1, 1)
    return (x - mean) / std


def split(clips: Clips, per_class: int) -> tuple[list[int], list[int]]:
    """The first `per_class` clips of each class train, the rest test."""
    train, test = [], []
    for c in range(len(MOTION_CLASSES)):
        ids = (clips.label == c).nonzero().flatten().tolist()
        train += ids[:per_class]
        test += ids[per_class:]
    return train, test


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.autocast = args.device == "cuda"

    def tokenizer(self) -> TubeletTokenizer:
        a = self.args
        return TubeletTokenizer(a.dim, frames=a.frames, size=SIZE, tubelet=(2, 8, 8), position_kind=a.position)

    def mae(self) -> MAEObjective:
        a = self.args
        torch.manual_seed(a.seed)
        tokenizer = self.tokenizer()
        masker = (TubeMasker(tokenizer.grid, a.mask_ratio) if a.mask == "tube"
                  else RandomMasker(math.prod(tokenizer.grid), a.mask_ratio))
        decoder = MAEDecoder(a.dim, a.decoder_dim, 1, max(1, a.decoder_dim // 32), patch_dim=tokenizer.patch_dim,
                             grid=tokenizer.grid, position_kind=a.position)
        return MAEObjective(tokenizer, Encoder(a.dim, a.depth, a.heads), decoder, masker, "video", target_norm="none",
                            pixel_mean=MEAN, pixel_std=STD, seed=a.seed).to(self.device)

    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> float:
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
            loss, _ = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    # ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruction(self, mae: MAEObjective, clips: Clips) -> tuple[float, float]:
        """(shape-token error / background-only error, background-token error / copy error)."""
        mae.eval()
        x = to_input(clips.video, self.device)
        mask = mae.masker(len(x), torch.Generator(self.device).manual_seed(0), self.device)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
            pred = mae.predict(x, mask).float()
        pixels = mae.pixels(x)
        background = pixels.median(dim=2, keepdim=True).values.expand_as(pixels)
        hidden = gather_tokens(mae.tokenizer.patchify(pixels), mask.hidden)
        static = gather_tokens(mae.tokenizer.patchify(background), mask.hidden)
        on_shape = (hidden - static).abs().amax(dim=-1) > 0.25  # a shape pixel differs by > 64 grey levels
        model_error = ((pred - hidden) ** 2).mean(dim=-1)
        static_error = ((static - hidden) ** 2).mean(dim=-1)
        mae.train()
        shape = (model_error[on_shape].mean() / static_error[on_shape].mean()).item()
        back = (model_error[~on_shape].mean() / static_error[~on_shape].mean().clamp_min(1e-12)).item()
        return shape, back

    @torch.no_grad()
    def features(self, tokenizer: torch.nn.Module, encoder: torch.nn.Module, video: Tensor) -> Tensor:
        tokenizer.eval(), encoder.eval()
        out = []
        for start in range(0, len(video), 128):
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
                states, _ = encoder(tokenizer(to_input(video[start:start + 128], self.device)))
            out.append(states.float().mean(dim=1).cpu())
        return torch.cat(out)

    def probes(self, tokenizer, encoder, labelled: Clips, train: list[int], test: list[int]) -> dict[str, float]:
        train_x, test_x = self.features(tokenizer, encoder, labelled.video[train]), self.features(
            tokenizer, encoder, labelled.video[test])
        classes = len(MOTION_CLASSES)
        return {kind: probe(kind, train_x, labelled.label[train], test_x, labelled.label[test], classes)["top1"]
                for kind in ("knn", "linear")}

    def pretrain(self, unlabeled: Clips, labelled: Clips, train: list[int], test: list[int],
                 held_out: Clips) -> tuple[MAEObjective, list[dict]]:
        a = self.args
        mae = self.mae()
        optimizer = torch.optim.AdamW(mae.parameters(), lr=a.pretrain_lr, betas=(0.9, 0.95), weight_decay=0.05)
        generator = torch.Generator().manual_seed(a.seed)
        points = {round(a.pretrain_steps * (k + 1) / a.points) for k in range(a.points)}
        rows, losses, start = [], [], time.perf_counter()
        for step in range(1, a.pretrain_steps + 1):
            warm = min(1.0, step / max(1, a.pretrain_steps // 20))
            for group in optimizer.param_groups:
                group["lr"] = a.pretrain_lr * warm * 0.5 * (1 + math.cos(math.pi * step / a.pretrain_steps))
            index = torch.randint(0, len(unlabeled.video), (a.batch,), generator=generator)
            offsets = torch.randint(0, WIDTH - SIZE + 1, (a.batch,), generator=generator).tolist()
            losses.append(self.step(mae, optimizer, {"video": to_input(unlabeled.video[index], self.device, offsets)}))
            if step in points:
                shape, back = self.reconstruction(mae, held_out)
                rows.append({"step": step, "seconds": time.perf_counter() - start,
                             "loss": statistics.fmean(losses[-50:]), "shape": shape, "background": back,
                             **self.probes(mae.tokenizer, mae.encoder, labelled, train, test)})
                print(f"  pretraining step {step}: loss {rows[-1]['loss']:.5f}, shape {shape:.3f}", flush=True)
        return mae, rows

    def finetune(self, init: MAEObjective | None, labelled: Clips, train: list[int], test: list[int],
                 seed: int) -> float:
        """Test top-1 after a fixed number of steps (VideoMAE's head: mean pooling, fc_norm, init x 0.001)."""
        a = self.args
        torch.manual_seed(1000 + seed)
        tokenizer, encoder = self.tokenizer(), Encoder(a.dim, a.depth, a.heads, final_norm=False)
        if init is not None:
            tokenizer.load_state_dict(init.tokenizer.state_dict())
            loaded = encoder.load_state_dict(init.encoder.state_dict(), strict=False)  # its final norm is unused
            if loaded.missing_keys:
                raise RuntimeError(f"pretrained encoder lacks {loaded.missing_keys}")
        head = PooledHead(a.dim, len(MOTION_CLASSES), pool="mean", fc_norm=True, init_scale=0.001)
        model = SupervisedObjective(tokenizer, encoder, head, "video", label_smoothing=0.1).to(self.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=a.finetune_lr, weight_decay=0.05)
        generator = torch.Generator().manual_seed(2000 + seed)
        ids = torch.tensor(train)
        for step in range(1, a.finetune_steps + 1):
            warm = min(1.0, step / max(1, a.finetune_steps // 20))
            for group in optimizer.param_groups:
                group["lr"] = a.finetune_lr * warm * 0.5 * (1 + math.cos(math.pi * step / a.finetune_steps))
            index = ids[torch.randint(0, len(ids), (a.batch,), generator=generator)]
            offsets = torch.randint(0, WIDTH - SIZE + 1, (a.batch,), generator=generator).tolist()
            self.step(model, optimizer, {"video": to_input(labelled.video[index], self.device, offsets),
                                         "label": labelled.label[index].to(self.device)})
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(test), 128):
                chunk = test[start:start + 128]
                with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
                    logits = model.logits({"video": to_input(labelled.video[chunk], self.device)})
                correct += (logits.argmax(-1).cpu() == labelled.label[chunk]).sum().item()
        return correct / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--decoder-dim", type=int, default=96)
    parser.add_argument("--position", default="sincos_grid", choices=["sincos_flat", "sincos_grid", "learned"])
    parser.add_argument("--mask", default="tube", choices=["tube", "random"])
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--unlabeled", type=int, default=2000)
    parser.add_argument("--per-class", type=int, default=50, help="labelled training clips per class")
    parser.add_argument("--test-per-class", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pretrain-steps", type=int, default=6000)
    parser.add_argument("--pretrain-lr", type=float, default=1.5e-3)
    parser.add_argument("--points", type=int, default=3, help="measurements along the pretraining")
    parser.add_argument("--finetune-steps", type=int, default=750)
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true", help="a tiny model and budget, seconds")
    args = parser.parse_args()
    if args.smoke:
        args.dim, args.depth, args.heads, args.decoder_dim = 48, 1, 2, 24
        args.unlabeled, args.per_class, args.test_per_class, args.batch = 24, 2, 2, 4
        args.points, args.finetune_steps, args.seeds = 2, 3, 2
        args.pretrain_steps = min(args.pretrain_steps, 4)

    start = time.perf_counter()
    labelled_count = len(MOTION_CLASSES) * (args.per_class + args.test_per_class)
    # the demo's seeds: 1 for the unlabeled clips, 0 for the labelled ones
    unlabeled = render(args.unlabeled if args.pretrain_steps > 0 else 0, 1, args.frames, args.stride)
    labelled = render(labelled_count, 0, args.frames, args.stride)
    train, test = split(labelled, args.per_class)
    held_out = Clips(labelled.video[test[:96]], labelled.label[test[:96]])
    bench = Bench(args)
    device = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"CPU {cpu_model()}"
    print(f"# payoff: {device}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"load average at start (1, 5, 15 min): {load_average()}")
    print(f"data: {args.unlabeled} unlabeled clips, {len(train)} labelled training / {len(test)} test clips "
          f"({time.perf_counter() - start:.0f} s); model {args.dim} wide, {args.depth} deep, {args.position} "
          f"positions, {args.mask} masking at {args.mask_ratio}; device {args.device}, "
          f"{torch.get_num_threads()} threads", flush=True)
    arms: dict[str, MAEObjective | None] = {"scratch": None}
    if args.pretrain_steps > 0:  # 0: the supervised arm only (e.g. to compare position tables)
        random_init = bench.mae()
        random_probes = bench.probes(random_init.tokenizer, random_init.encoder, labelled, train, test)
        mae, rows = bench.pretrain(unlabeled, labelled, train, test, held_out)
        report_pretraining(rows, random_probes)
        arms = {"pretrained": mae, **arms}
    results = {arm: [bench.finetune(init, labelled, train, test, seed) for seed in range(args.seeds)]
               for arm, init in arms.items()}
    print(f"\nfine-tuning: {args.finetune_steps} steps of {args.batch} clips, lr {args.finetune_lr:g}, "
          f"{args.per_class} labelled clips per class, {args.seeds} seeds (chance {100 / len(MOTION_CLASSES):.1f}%)")
    print("| fine-tuned from | test top-1 |")
    print("|---|---|")
    for arm, values in results.items():
        print(f"| {arm} | {mean_std(values)} |")
    if "pretrained" in results:
        ratio = statistics.fmean(results["pretrained"]) / max(statistics.fmean(results["scratch"]), 1e-9)
        print(f"pretrained / scratch test top-1: {ratio:.2f}x")
    print(f"total {time.perf_counter() - start:.0f} s; load average at end (1, 5, 15 min): {load_average()}")


def report_pretraining(rows: list[dict], random_probes: dict[str, float]) -> None:
    print("\n| pretraining step | seconds | loss | shape tokens: error / background-only | background tokens: "
          "error / copy | kNN top-1 / random init | linear top-1 / random init |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['seconds']:.0f} | {r['loss']:.5f} | {r['shape']:.2f}x | {r['background']:.2f}x | "
              f"{100 * r['knn']:.1f}% / {100 * random_probes['knn']:.1f}% = "
              f"{r['knn'] / max(random_probes['knn'], 1e-9):.2f}x | {100 * r['linear']:.1f}% / "
              f"{100 * random_probes['linear']:.1f}% = {r['linear'] / max(random_probes['linear'], 1e-9):.2f}x |")


if __name__ == "__main__":
    main()
