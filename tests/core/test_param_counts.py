"""Parameter counts of the reference ViT-S (reference D), built but never run."""

from __future__ import annotations

import pytest

from tessera.core.decoder import MAEDecoder
from tessera.core.encoder import Encoder
from tessera.modalities.video.tokenizer import TubeletTokenizer


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def vit_s():
    tokenizer = TubeletTokenizer(384)
    encoder = Encoder(384, 12, 6, block="beit")
    decoder = MAEDecoder(384, 192, 4, 3, patch_dim=1536, grid=tokenizer.grid)
    return tokenizer, encoder, decoder


def test_videomae_small_counts(vit_s) -> None:
    tokenizer, encoder, decoder = vit_s
    assert _count(tokenizer) + _count(encoder) == 21_879_936
    bridge = _count(decoder.encoder_to_decoder) + decoder.mask_token.numel()
    assert bridge == 73_920
    assert _count(decoder) - bridge == 2_075_520
    assert _count(tokenizer) + _count(encoder) + _count(decoder) == 24_029_376


def test_no_position_keys(vit_s) -> None:
    keys = [k for m in vit_s for k in m.state_dict()]
    assert not any("pos" in k for k in keys)
    assert not any("k_bias" in k for k in keys)


def test_vit_block_has_extra_k_bias() -> None:
    tokenizer = TubeletTokenizer(384)
    assert _count(tokenizer) + _count(Encoder(384, 12, 6, block="vit")) == 21_884_544
