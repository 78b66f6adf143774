"""Video RandAugment: timm's RandAugment operations, drawn once per clip and applied to every frame.

The reference (MCG-NJU/VideoMAE video_transforms.py `create_random_augment`, rand_augment.py) builds
a timm-style RandAugment whose ops take the list of a clip's PIL frames: the ops, the skip decision,
the magnitude and the sign are drawn once, then the same operation is applied to each frame. Its
settings: `--aa rand-m7-n4-mstd0.5-inc1`, `translate_const = int(0.45 * input_size)`, interpolation
from `--train_interpolation` (bicubic by default), fill grey (128, 128, 128).

We build the op list with timm's own parser and ops (`timm.data.auto_augment.rand_augment_transform`;
torchvision's RandAugment has other ops and magnitudes) and drive the per-clip draw ourselves, in the
reference's order, from the sample's `np.random.Generator`:
  1. the ops: `rng.choice(len(ops), n, replace=choice_weights is None, p=choice_weights)`
     (the reference's `np.random.choice` call);
  2. per op: skip when `rng.random() > prob` (reference `random.random() > self.prob`);
  3. magnitude: `rng.normal(m, mstd)` (reference `random.gauss`), or uniform in [0, m] when mstd is
     infinite, clipped to [0, magnitude_max or 10];
  4. the op's arguments: timm's level function, whose random sign (`_randomly_negate`) reads
     Python's global `random`. That call, and each frame's op call, runs with Python's global random
     state temporarily seeded from a number drawn from `rng`, then restored: so the sign is a
     function of the sample seed, every frame sees the same state (an op with internal randomness
     would still treat all frames alike), and code outside sees its random state untouched.
     (Safe in DataLoader workers, which are processes; two threads augmenting at once in one
     process would interleave their seeding.)
A fixed `resample` is used when the interpolation is a tuple (timm's "random"): one choice per clip.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from timm.data import auto_augment as timm_aa

_LEVEL_DENOM = 10.0  # timm's _LEVEL_DENOM: the magnitude scale's top, also the default clip bound

_INTERPOLATIONS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "hamming": Image.Resampling.HAMMING,
    "nearest": Image.Resampling.NEAREST,
}


@contextmanager
def _python_random_state() -> Iterator[None]:
    """Save Python's global random state and restore it on exit (the body may reseed it)."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def _posterize_to_black(image: Image.Image, bits: int, **_: Any) -> Image.Image:
    """Posterize keeping 0 bits: what ImageOps.posterize gave before Pillow refused 0 (a mask of 0
    clears every channel). PosterizeIncreasing reaches 0 bits only at magnitude 10 (7 + 6 std)."""
    return Image.new(image.mode, image.size)


@dataclass(frozen=True)
class DrawnOp:
    """One operation as drawn for a clip: apply `fn(frame, *args, **kwargs)` to every frame."""

    name: str
    magnitude: float
    args: tuple
    kwargs: dict = field(default_factory=dict)
    seed: int = 0  # Python random state seen by every frame's call
    fn: Callable[..., Image.Image] | None = None


class VideoRandAugment:
    """`VideoRandAugment(config)(frames, rng)`: uint8 (T, H, W, 3) numpy or tensor in, same type out.

    config: timm's RandAugment string (reference default `rand-m7-n4-mstd0.5-inc1`: magnitude 7,
    4 ops, magnitude std 0.5, the "increasing" op set). input_size sets `translate_const` as the
    reference (only the absolute translate ops use it; the rand sets use relative translation).
    """

    def __init__(self, config: str = "rand-m7-n4-mstd0.5-inc1", input_size: int = 224,
                 interpolation: str = "bicubic") -> None:
        if not config.startswith("rand"):
            raise ValueError(f"video RandAugment takes a 'rand-...' config, got {config!r}")
        # video_transforms.py create_random_augment: translate_const = int(min(img_size) * 0.45) and a
        # fixed interpolation unless it is "random" (then timm's (bilinear, bicubic) tuple).
        hparams: dict[str, Any] = {"translate_const": int(input_size * 0.45)}
        if interpolation != "random":
            if interpolation not in _INTERPOLATIONS:
                raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATIONS)} or 'random', "
                                 f"got {interpolation!r}")
            hparams["interpolation"] = _INTERPOLATIONS[interpolation]
        transform = timm_aa.rand_augment_transform(config, hparams)
        self.config = config
        self.ops = list(transform.ops)
        self.num_layers = int(transform.num_layers)
        self.choice_weights = None if transform.choice_weights is None else np.asarray(transform.choice_weights)

    def draw(self, rng: np.random.Generator) -> list[DrawnOp]:
        """The clip's operations with their arguments, in application order (skipped ops left out)."""
        chosen = rng.choice(len(self.ops), self.num_layers, replace=self.choice_weights is None,
                            p=self.choice_weights)
        drawn = []
        for i in chosen:
            op = self.ops[int(i)]
            if op.prob < 1.0 and rng.random() > op.prob:
                continue
            magnitude = float(op.magnitude)
            if op.magnitude_std == float("inf"):
                magnitude = float(rng.uniform(0, magnitude))
            elif op.magnitude_std > 0:
                magnitude = float(rng.normal(magnitude, op.magnitude_std))
            magnitude = max(0.0, min(magnitude, op.magnitude_max or _LEVEL_DENOM))
            seed = int(rng.integers(2**63))
            with _python_random_state():
                random.seed(seed)
                args = tuple(op.level_fn(magnitude, op.hparams)) if op.level_fn is not None else ()
            kwargs = dict(op.kwargs)
            resample = kwargs.get("resample")
            if isinstance(resample, (list, tuple)):  # timm's "random" interpolation: one pick per clip
                kwargs["resample"] = resample[int(rng.integers(len(resample)))]
            fn = op.aug_fn
            if fn is timm_aa.posterize and args and args[0] < 1:
                fn = _posterize_to_black  # Pillow >= 10 refuses 0 bits, which older Pillow turned black
            drawn.append(DrawnOp(op.name, magnitude, args, kwargs, seed, fn))
        return drawn

    @staticmethod
    def apply(frames: np.ndarray | torch.Tensor, ops: Sequence[DrawnOp]) -> np.ndarray | torch.Tensor:
        """Apply drawn ops to every frame alike; uint8 (T, H, W, 3) in and out, type kept."""
        is_tensor = isinstance(frames, torch.Tensor)
        array = frames.numpy() if is_tensor else np.asarray(frames)
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (T, H, W, 3), got {array.shape} {array.dtype}")
        if not ops:
            return frames
        images = [Image.fromarray(frame) for frame in array]
        with _python_random_state():
            for op in ops:
                out = []
                for image in images:
                    random.seed(op.seed + 1)  # every frame sees one state: identical treatment
                    out.append(op.fn(image, *op.args, **op.kwargs))
                images = out
        result = np.stack([np.asarray(image.convert("RGB")) for image in images])
        return torch.from_numpy(result) if is_tensor else result

    def __call__(self, frames: np.ndarray | torch.Tensor, rng: np.random.Generator) -> np.ndarray | torch.Tensor:
        return self.apply(frames, self.draw(rng))

    def __repr__(self) -> str:
        return f"VideoRandAugment({self.config!r}, n={self.num_layers}, ops={[op.name for op in self.ops]})"


__all__ = ["VideoRandAugment", "DrawnOp"]
