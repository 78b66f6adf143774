"""Pretraining step throughput: our VideoMAE step against a reference-style baseline, in one process.

    python bench/pretrain_step.py --sizes small base --batch 2 --steps 3 --repeats 3
    python bench/pretrain_step.py --smoke            # tiny model and clip, seconds (used by the tests)

Every row is the same model (TubeletTokenizer + Encoder with timm BEiT blocks + MAEDecoder, tube masking
at 0.9 on 16x224x224 clips, tubelets 2x16x16 -> 1568 tokens, 160 visible), built from the same seed; only
the speed choices differ:

    baseline    what the reference (MCG-NJU/VideoMAE) does: eager matmul-softmax attention
                (set_fused_attention(False)), fp32, for-loop AdamW (foreach=False, fused=False) and a
                per-parameter grad norm, the tube mask drawn in numpy on the host (as its workers do) and
                copied over, a float32 clip normalised on the host, the decoder over all 1568 tokens.
    ours        SDPA attention, fused AdamW fed the found-inf flag and a foreach grad norm (as
                tessera.train.loop.Trainer does), masks drawn on the device, a uint8 clip normalised on the
                device; fp32 or bf16 autocast (--precisions).
    ours + dm   the same with VideoMAE V2 decoder masking (--decoder-mask running_cell, ratio 0.5): the
                decoder gets the 160 visible tokens plus 704 of the 1408 hidden ones.
    --ablation  adds rows that change one thing of the baseline at a time.

Timing: each repeat builds each variant afresh (variants interleaved, so drift on a shared machine hits
them alike), runs --warmup untimed steps, then times --steps steps; a repeat's figure is the mean step
time, and the table shows the median over --repeats (min and max beside it).

Memory ("step MiB"): the peak during one training step over the resting state just before it, i.e.
activations, gradients and temporaries; the weights and AdamW state, present before the step and the same
for every row of a size, are printed once per size. CUDA: torch.cuda.max_memory_allocated after
reset_peak_memory_stats, minus memory_allocated before. CPU: the process's peak RSS (VmHWM, reset through
/proc/self/clear_refs) minus its RSS before the step, measured in a final pass after malloc_trim with
glibc's mmap threshold fixed at 128 KiB so that freed tensors leave the RSS (that pass is not timed).

FLOPs (the "GFLOP/s" and, on CUDA, "MFU" columns) are counted analytically per clip, matmuls only
(layer norms, softmax, GELU and the optimizer are left out), backward = 2x forward:
    block(n, d)   = 2 n (4 + 2 r) d^2 + 4 n^2 d     qkv + proj (4 d^2) and MLP (2 r d^2) per token,
                                                    Q K^T and A V (2 n d each) per token; r = MLP ratio
    forward       = 2 N d P                          tubelet embedding over all N tokens, P = 1536
                  + depth * block(Nv, d)             encoder over the visible tokens
                  + 2 Nv d d'                        encoder_to_decoder
                  + depth' * block(Nv + Nq, d')      decoder over visible + query tokens
                  + 2 Nq d' P                        head over the Nq predicted tokens
    step          = 3 * forward * batch
MFU = step FLOPs / step time / 989e12 (H100 SXM dense bf16 peak), shown on CUDA only.
tokens/s counts the clip's N = 1568 input tokens, not only the ones the encoder sees.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run the checkout's tessera

import numpy as np  # noqa: E402
import torch  # noqa: E402

from machine_info import cpu_model, load_average  # noqa: E402  (bench/, the script's folder)
from tessera.core.blocks import set_fused_attention  # noqa: E402
from tessera.core.decoder import MAEDecoder  # noqa: E402
from tessera.core.encoder import Encoder  # noqa: E402
from tessera.core.masking import Mask, RandomDecoderMask  # noqa: E402
from tessera.core.sizes import SIZES, ViTSize  # noqa: E402
from tessera.modalities.video.masking import RunningCellDecoderMask, TubeMasker  # noqa: E402
from tessera.modalities.video.tokenizer import TubeletTokenizer  # noqa: E402
from tessera.modalities.video.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_clip_batch  # noqa: E402
from tessera.objectives.mae import MAEObjective  # noqa: E402
from tessera.train.config import OptimConfig  # noqa: E402
from tessera.train.optim import make_optimizer, param_groups  # noqa: E402

H100_BF16_PEAK = 989e12  # dense bf16 tensor-core FLOP/s of an H100 SXM
SMOKE_SIZE = ViTSize(64, 2, 2, 32, 1, 2)
MASK_RATIO = 0.9


@dataclass(frozen=True)
class Variant:
    """The speed choices of one row; everything else is the same model from the same seed."""

    name: str
    sdpa: bool = True
    bf16: bool = False
    fused_adamw: bool = True
    device_masks: bool = True  # our masks on the device; else the reference's numpy mask on the host
    uint8_input: bool = True  # uint8 clip normalised on the device; else a float32 clip from the host
    decoder_mask: str = "none"
    compile: bool = False


BASELINE = Variant("baseline", sdpa=False, bf16=False, fused_adamw=False, device_masks=False, uint8_input=False)


@dataclass(frozen=True)
class Shape:
    frames: int
    size: int
    tubelet: tuple[int, int, int]

    @property
    def grid(self) -> tuple[int, int, int]:
        return (self.frames // self.tubelet[0], self.size // self.tubelet[1], self.size // self.tubelet[2])


class HostTubeMasker:
    """The reference's mask: drawn per sample in numpy (VideoMAE masking_generator.py TubeMaskingGenerator
    runs in its DataLoader workers), a bool (B, N) batch turned into index rows and copied to the device.
    The draw itself is ours; only where and how it runs is the reference's."""

    def __init__(self, grid: tuple[int, int, int], ratio: float, seed: int = 0) -> None:
        self.frames, self.slice_size = grid[0], grid[1] * grid[2]
        self.hidden_per_slice = int(ratio * self.slice_size)
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Mask:
        rows = []
        for _ in range(batch_size):
            spatial = np.hstack([np.zeros(self.slice_size - self.hidden_per_slice),
                                 np.ones(self.hidden_per_slice)])
            self.rng.shuffle(spatial)
            rows.append(np.tile(spatial, (self.frames, 1)).flatten())
        hidden_mask = torch.from_numpy(np.stack(rows)).to(device).bool()
        index = torch.arange(hidden_mask.shape[1], device=device).expand_as(hidden_mask)
        return Mask(visible=index[~hidden_mask].reshape(batch_size, -1),
                    hidden=index[hidden_mask].reshape(batch_size, -1))


def build(variant: Variant, size: ViTSize, shape: Shape, device: torch.device):
    """The model and optimizer of one row, from seed 0."""
    torch.manual_seed(0)
    tokenizer = TubeletTokenizer(size.dim, frames=shape.frames, size=shape.size, tubelet=shape.tubelet)
    encoder = Encoder(size.dim, size.depth, size.heads, block="beit")
    decoder = MAEDecoder(size.dim, size.decoder_dim, size.decoder_depth, size.decoder_heads,
                         patch_dim=tokenizer.patch_dim, grid=tokenizer.grid, block="beit")
    masker = TubeMasker(tokenizer.grid, MASK_RATIO) if variant.device_masks else HostTubeMasker(tokenizer.grid, MASK_RATIO)
    decoder_masker = {"none": None, "running_cell": RunningCellDecoderMask(tokenizer.grid, 0.5),
                      "random": RandomDecoderMask(0.5)}[variant.decoder_mask]
    objective = MAEObjective(tokenizer, encoder, decoder, masker, "video", "tubelet", IMAGENET_MEAN, IMAGENET_STD,
                             seed=0, decoder_masker=decoder_masker).to(device)
    set_fused_attention(objective, variant.sdpa)
    if variant.fused_adamw:
        optimizer = make_optimizer(objective, OptimConfig(lr=1e-4, fused=True), device)
    else:
        cfg = OptimConfig(lr=1e-4)
        optimizer = torch.optim.AdamW(param_groups(objective, cfg.weight_decay), lr=1e-4, betas=cfg.betas,
                                      eps=cfg.eps, foreach=False, fused=False)
    model = torch.compile(objective) if variant.compile else objective
    return objective, model, optimizer


def make_step(variant: Variant, objective, model, optimizer, device: torch.device):
    """One optimizer step on a host batch; the steps mirror Trainer._micro_step and _optimizer_step."""
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if variant.bf16 else nullcontext
    params = [p for p in objective.parameters() if p.requires_grad]

    def step(host_clip: torch.Tensor) -> None:
        if variant.uint8_input:
            x = normalize_clip_batch(host_clip.to(device, non_blocking=True))
        else:
            x = host_clip.to(device)
        with autocast():
            loss, _ = model({"video": x})
        loss.backward()
        if variant.fused_adamw:  # as the trainer: foreach norm, skip on the device via found_inf
            norm = torch.nn.utils.clip_grad_norm_(params, float("inf"), foreach=True)
            optimizer.found_inf = (~torch.isfinite(norm)).float()
            optimizer.step()
        else:  # the reference's NativeScalerWithGradNormCount: a norm per parameter, then the step
            torch.nn.utils.clip_grad_norm_(params, float("inf"), foreach=False)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def host_batch(variant: Variant, batch: int, shape: Shape, device: torch.device) -> torch.Tensor:
    """A random clip batch where the DataLoader would leave it: uint8 (ours) or normalised float32."""
    g = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (batch, 3, shape.frames, shape.size, shape.size), dtype=torch.uint8, generator=g)
    if not variant.uint8_input:
        clip = normalize_clip_batch(clip)
    return clip.pin_memory() if device.type == "cuda" else clip


def step_flops(size: ViTSize, shape: Shape, decoder_mask: str, mlp_ratio: float = 4.0) -> float:
    """Matmul FLOPs of one training step per clip (see the module docstring)."""
    grid = shape.grid
    n = math.prod(grid)
    slice_size = grid[1] * grid[2]
    hidden = grid[0] * int(MASK_RATIO * slice_size)
    visible = n - hidden
    queries = hidden if decoder_mask == "none" else max(1, round(hidden * 0.5))
    patch = 3 * math.prod(shape.tubelet)

    def block(tokens: int, d: int) -> float:
        return 2 * tokens * (4 + 2 * mlp_ratio) * d * d + 4 * tokens * tokens * d

    forward = (2 * n * size.dim * patch + size.depth * block(visible, size.dim)
               + 2 * visible * size.dim * size.decoder_dim
               + size.decoder_depth * block(visible + queries, size.decoder_dim)
               + 2 * queries * size.decoder_dim * patch)
    return 3 * forward


# -- memory ------------------------------------------------------------------------------------------------
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    return _LIBC


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# glibc mallopt parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4


def keep_freed_memory() -> bool:
    """--allocator keep: glibc serves every allocation from its heap (no mmap) and never trims it, so a
    step reuses the pages the previous step freed instead of faulting in fresh zeroed ones. The same as
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 in the environment."""
    libc = _libc()
    if not libc:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def prepare_cpu_memory_pass() -> None:
    libc = _libc()
    if libc:
        libc.mallopt(M_MMAP_MAX, 65536)  # glibc's default, in case --allocator keep turned mmap off
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)  # fixed, so freed tensors go back to the OS


def measure_step_memory(step, clip: torch.Tensor, device: torch.device) -> tuple[float | None, float | None]:
    """(MiB at rest, MiB peak of one step over the rest); None where the platform cannot say."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        rest = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step(clip)
        torch.cuda.synchronize()
        return rest / 2**20, (torch.cuda.max_memory_allocated(device) - rest) / 2**20
    libc = _libc()
    if libc:
        libc.malloc_trim(0)
    rest = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return (rest / 1024 if rest else None), None
    step(clip)
    peak = _status_kib("VmHWM")
    if rest is None or peak is None:
        return None, None
    return rest / 1024, (peak - rest) / 1024


# -- running ------------------------------------------------------------------------------------------------
def variants(args) -> list[Variant]:
    rows = [BASELINE]
    for precision in args.precisions:
        bf16 = precision == "bf16"
        ours = Variant(f"ours {precision}", bf16=bf16, compile=args.compile)
        rows.append(ours)
        if args.decoder_mask != "none":
            rows.append(replace(ours, name=f"ours {precision} + dm {args.decoder_mask} 0.5",
                                decoder_mask=args.decoder_mask))
    if args.ablation:
        rows += [
            replace(BASELINE, name="baseline + SDPA", sdpa=True),
            replace(BASELINE, name="baseline + fused AdamW", fused_adamw=True),
            replace(BASELINE, name="baseline + bf16", bf16=True),
            replace(BASELINE, name="baseline + device masks, uint8 in", device_masks=True, uint8_input=True),
            replace(BASELINE, name=f"baseline + dm {args.decoder_mask if args.decoder_mask != 'none' else 'running_cell'} 0.5",
                    decoder_mask=args.decoder_mask if args.decoder_mask != "none" else "running_cell"),
        ]
    return rows


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(variant: Variant, size: ViTSize, shape: Shape, args, device: torch.device) -> tuple[float, float]:
    """(mean seconds per timed step, minor page faults per timed step)."""
    objective, model, optimizer = build(variant, size, shape, device)
    step = make_step(variant, objective, model, optimizer, device)
    clip = host_batch(variant, args.batch, shape, device)
    for _ in range(args.warmup):
        step(clip)
    sync(device)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(args.steps):
        step(clip)
    sync(device)
    elapsed = (time.perf_counter() - start) / args.steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.steps
    del objective, model, optimizer, step, clip
    gc.collect()
    return elapsed, faults


def memory_variant(variant: Variant, size: ViTSize, shape: Shape, args, device: torch.device):
    objective, model, optimizer = build(variant, size, shape, device)
    step = make_step(variant, objective, model, optimizer, device)
    clip = host_batch(variant, args.batch, shape, device)
    step(clip)  # allocates the AdamW state, which then belongs to the resting state
    result = measure_step_memory(step, clip, device)
    del objective, model, optimizer, step, clip
    gc.collect()
    return result


def device_line(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    model = cpu_model()
    return (f"CPU {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, no GPU used")


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def run(args) -> int:
    device = torch.device(args.device)
    allocator = "glibc default"
    if args.allocator == "keep":
        allocator = ("glibc, mmap off and no trimming (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647)"
                     if keep_freed_memory() else "keep requested but mallopt unavailable: default")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        sizes = {"tiny": SMOKE_SIZE}
        shape = Shape(4, 32, (2, 8, 8))
    else:
        sizes = {name: SIZES[name] for name in args.sizes}
        shape = Shape(16, 224, (2, 16, 16))
    rows = variants(args)
    n = math.prod(shape.grid)
    cpu = device.type == "cpu"
    print(f"# pretraining step: {device_line(device)}")
    print(f"# clip {shape.frames}x{shape.size}x{shape.size}, tubelet {shape.tubelet}, {n} tokens, tube mask "
          f"{MASK_RATIO}; batch {args.batch}; median over {args.repeats} repeats of the mean of {args.steps} "
          f"timed steps after {args.warmup} warm-up steps; variants interleaved; host allocator: {allocator}")
    print(f"# load average at start (1, 5, 15 min): {load_average()}")
    status = 0
    for size_name, size in sizes.items():
        times: dict[str, list[float]] = {v.name: [] for v in rows}
        faults: dict[str, list[float]] = {v.name: [] for v in rows}
        for repeat in range(args.repeats):
            for variant in rows:
                t, f = time_variant(variant, size, shape, args, device)
                times[variant.name].append(t)
                faults[variant.name].append(f)
                print(f"#   {size_name} repeat {repeat + 1}/{args.repeats} {variant.name}: {t * 1e3:.0f} ms/step, "
                      f"{f / 1e3:.1f}k page faults/step", flush=True)
        memory: dict[str, tuple[float | None, float | None]] = {}
        if not args.no_memory:
            if cpu:
                prepare_cpu_memory_pass()
            for variant in rows:
                memory[variant.name] = memory_variant(variant, size, shape, args, device)
        params = sum(p.numel() for p in build(BASELINE, size, shape, torch.device("cpu"))[0].parameters())
        print()
        print(f"## {size_name}: dim {size.dim}, depth {size.depth}, decoder {size.decoder_dim}x{size.decoder_depth}; "
              f"{params / 1e6:.2f} M parameters; weights + AdamW state {3 * 4 * params / 2**20:.0f} MiB (fp32)")
        print()
        header = ["variant", "step ms (median [min, max])", "clips/s", "tokens/s", "GFLOP/s"]
        if not cpu:
            header.append("MFU")
        if cpu:
            header.append("page faults/step")
        header += ["step MiB", "clips/s ours/base", "step MiB ours/base"]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        base_time = statistics.median(times[BASELINE.name])
        base_mem = memory.get(BASELINE.name, (None, None))[1]
        for variant in rows:
            ts = times[variant.name]
            t = statistics.median(ts)
            clips = args.batch / t
            flops = step_flops(size, shape, variant.decoder_mask) * args.batch
            mem = memory.get(variant.name, (None, None))[1]
            cells = [variant.name, f"{t * 1e3:.0f} [{min(ts) * 1e3:.0f}, {max(ts) * 1e3:.0f}]", f"{clips:.2f}",
                     f"{clips * n:.0f}", f"{flops / t / 1e9:.1f}"]
            if not cpu:
                cells.append(f"{flops / t / H100_BF16_PEAK:.1%}")
            if cpu:
                cells.append(f"{statistics.median(faults[variant.name]) / 1e3:.0f}k")
            cells += [fmt(mem, ".0f"), f"{base_time / t:.2f}x",
                      (f"{mem / base_mem:.2f}x" if mem is not None and base_mem else "n/a")]
            print("| " + " | ".join(cells) + " |")
            if not math.isfinite(t) or t <= 0:
                status = 1
        print(f"\n(step FLOPs per clip, matmuls only: {step_flops(size, shape, 'none') / 1e9:.3g} GFLOP; "
              f"with decoder masking 0.5: {step_flops(size, shape, 'running_cell') / 1e9:.3g} GFLOP)", flush=True)
    print(f"# load average at end (1, 5, 15 min): {load_average()}")
    return status


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["small", "base"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per repeat (>= 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                        help="our rows: fp32 and/or bf16 autocast")
    parser.add_argument("--decoder-mask", default="running_cell", choices=["none", "running_cell", "random"],
                        help="add 'ours + dm' rows with this decoder masking at 0.5 (none: no such rows)")
    parser.add_argument("--ablation", action="store_true", help="add rows changing one baseline setting each")
    parser.add_argument("--compile", action="store_true", help="torch.compile our rows (slow to start on a CPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    parser.add_argument("--allocator", default="default", choices=["default", "keep"],
                        help="host allocator for the timed steps: glibc as it comes, or 'keep' (no mmap, no "
                             "trimming: freed pages are reused instead of faulted in again)")
    parser.add_argument("--smoke", action="store_true", help="tiny model and clip, one step: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.repeats, args.compile = 1, 1, 1, False
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1 or args.batch < 1:
        parser.error("--warmup, --steps, --repeats and --batch must be >= 1")
    return args


if __name__ == "__main__":
    sys.exit(run(parse_args()))
