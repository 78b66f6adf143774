"""Masked autoencoding (MAE, VideoMAE) over any tokenizer: hide tokens, encode the rest, predict pixels.

The encoder runs on the visible tokens only; the decoder predicts the hidden tokens only, and the loss
is the MSE on those. Masks are drawn on the device from a generator the objective owns and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from tessera.core.masking import Mask, gather_tokens, shard_rows
from tessera.objectives.generator import GeneratorState

Masker = Callable[[int, torch.Generator, torch.device], Mask]
DecoderMasker = Callable[[Mask, torch.Generator], Mask]
TARGET_NORMS = ("tubelet", "patch", "none")


def normalized_targets(patches: Tensor, channels: int, mode: str) -> Tensor:
    """Pixel targets from `patches` (B, N, P*C) flattened in (pixel, channel) order.

    tubelet: per token and per channel over its P pixels, unbiased std, +1e-6 on the std
             (VideoMAE engine_for_pretraining.py; reference D confirms the +1e-6 is on the std);
    patch:   per token over all P*C values, (x - mean) / sqrt(var + 1e-6) (facebookresearch/mae
             models_mae.py `norm_pix_loss`, unbiased var);
    none:    the pixels as they are.
    """
    if mode == "none":
        return patches
    if mode == "tubelet":
        b, n, _ = patches.shape
        per_channel = patches.reshape(b, n, -1, channels)
        mean = per_channel.mean(dim=-2, keepdim=True)
        std = per_channel.std(dim=-2, unbiased=True, keepdim=True)
        return ((per_channel - mean) / (std + 1e-6)).reshape(b, n, -1)
    if mode == "patch":
        mean = patches.mean(dim=-1, keepdim=True)
        var = patches.var(dim=-1, unbiased=True, keepdim=True)
        return (patches - mean) / (var + 1e-6).sqrt()
    raise ValueError(f"unknown target normalisation {mode!r}; valid: {', '.join(TARGET_NORMS)}")


def denormalized_predictions(pred: Tensor, patches: Tensor, channels: int, mode: str) -> Tensor:
    """Predictions back in pixel space, using each token's own statistics (VideoMAE run_videomae_vis.py)."""
    if mode == "none":
        return pred
    b, n, _ = patches.shape
    if mode == "tubelet":
        per_channel = patches.reshape(b, n, -1, channels)
        mean = per_channel.mean(dim=-2, keepdim=True)
        std = per_channel.std(dim=-2, unbiased=True, keepdim=True)
        return (pred.reshape(b, n, -1, channels) * (std + 1e-6) + mean).reshape(b, n, -1)
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, unbiased=True, keepdim=True)
    return pred * (var + 1e-6).sqrt() + mean


class MAEObjective(GeneratorState):
    """`forward(batch) -> (loss, metrics)`; state beyond parameters (the mask generator) is checkpointed.

    `input_key` names the batch entry the tokenizer reads (`video`, `image`, ...); `pixel_mean` and
    `pixel_std` undo the input normalisation so targets are computed on pixels in [0, 1], as VideoMAE does.
    `decoder_masker` (training only) narrows the hidden tokens the decoder predicts (VideoMAE V2).
    """

    def __init__(
        self,
        tokenizer: nn.Module,
        encoder: nn.Module,
        decoder: nn.Module,
        masker: Masker,
        input_key: str,
        target_norm: str = "tubelet",
        pixel_mean: Sequence[float] | None = None,
        pixel_std: Sequence[float] | None = None,
        seed: int = 0,
        decoder_masker: DecoderMasker | None = None,
    ) -> None:
        super().__init__(seed)
        if target_norm not in TARGET_NORMS:
            raise ValueError(f"unknown target normalisation {target_norm!r}; valid: {', '.join(TARGET_NORMS)}")
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.decoder = decoder
        self.masker = masker
        self.decoder_masker = decoder_masker
        self.input_key = input_key
        self.target_norm = target_norm
        self.register_buffer("pixel_mean", _channel_stats(pixel_mean, 0.0, tokenizer.channels), persistent=False)
        self.register_buffer("pixel_std", _channel_stats(pixel_std, 1.0, tokenizer.channels), persistent=False)
        self.rank, self.world = 0, 1

    def set_shard(self, rank: int, world: int) -> None:
        """Under DDP: draw masks for the global batch and keep this rank's rows (world-size invariant)."""
        self.rank, self.world = rank, world

    # ---------------------------------------------------------------------------------------------
    def pixels(self, x: Tensor) -> Tensor:
        """Undo the input normalisation: the reconstruction targets are pixels in [0, 1]."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.pixel_std.view(shape) + self.pixel_mean.view(shape)

    def predict(self, x: Tensor, mask: Mask) -> Tensor:
        tokens = self.tokenizer(x)
        latent, _ = self.encoder(tokens, keep=mask.visible, num_prefix=self.tokenizer.num_prefix)
        return self.decoder(latent, mask)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x = batch[self.input_key]
        generator = self.device_generator(x.device)
        mask = self.masker(x.shape[0] * self.world, generator, x.device)
        if self.decoder_masker is not None:
            mask = self.decoder_masker(mask, generator)
        mask = shard_rows(mask, self.rank, self.world)
        pred = self.predict(x, mask)
        with torch.no_grad():
            patches = self.tokenizer.patchify(self.pixels(x.float()))
            target = gather_tokens(normalized_targets(patches, self.tokenizer.channels, self.target_norm), mask.hidden)
        loss = torch.mean((pred.float() - target) ** 2)
        return loss, {}

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """(B, D): the mean of the final-normed encoder states of the whole, unmasked input (RankMe, probes)."""
        states, _ = self.encoder(self.tokenizer(x), num_prefix=self.tokenizer.num_prefix)
        return states[:, self.tokenizer.num_prefix:].mean(dim=1)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Original, masked input and reconstruction in pixel space [0, 1] (input layout), and the loss.

        Visible tokens of the reconstruction are the original pixels; hidden ones are the predictions.
        """
        mask = self.masker(x.shape[0], generator, x.device)
        pred = self.predict(x, mask).float()
        original = self.pixels(x.float())
        patches = self.tokenizer.patchify(original)
        hidden_patches = gather_tokens(patches, mask.hidden)
        filled = patches.clone()
        index = mask.hidden.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        filled.scatter_(1, index, denormalized_predictions(pred, hidden_patches, self.tokenizer.channels,
                                                             self.target_norm))
        target = normalized_targets(hidden_patches, self.tokenizer.channels, self.target_norm)
        loss = torch.mean((pred - target) ** 2)
        masked = patches.clone()
        masked.scatter_(1, index, torch.zeros_like(hidden_patches))
        unpatchify = self.tokenizer.unpatchify
        return {
            "original": original.clamp(0, 1),
            "masked": unpatchify(masked).clamp(0, 1),
            "reconstruction": unpatchify(filled).clamp(0, 1),
            "loss": loss,
        }


def _channel_stats(values: Sequence[float] | None, default: float, channels: int) -> Tensor:
    if values is None:
        return torch.full((channels,), default)
    if len(values) != channels:
        raise ValueError(f"expected {channels} per-channel values, got {list(values)}")
    return torch.tensor(list(values), dtype=torch.float32)
