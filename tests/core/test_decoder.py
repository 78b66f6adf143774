from __future__ import annotations

import torch

from tessera.core.decoder import MAEDecoder
from tessera.core.masking import Mask, gather_tokens


def _setup(num_prefix: int = 0):
    torch.manual_seed(0)
    dec = MAEDecoder(24, 16, 2, 2, patch_dim=12, grid=(2, 2, 2), num_prefix=num_prefix).eval()
    mask = Mask(visible=torch.tensor([[0, 3, 6], [1, 2, 7]]), hidden=torch.tensor([[1, 2, 4, 5, 7], [0, 3, 4, 5, 6]]))
    latent = torch.randn(2, num_prefix + 3, 24)
    return dec, mask, latent


def test_output_shape_and_no_position_key() -> None:
    dec, mask, latent = _setup()
    assert dec(latent, mask).shape == (2, 5, 12)
    assert not any("pos" in k for k in dec.state_dict())
    assert dec.no_weight_decay_names() == {"mask_token"}
    assert dec.encoder_to_decoder.bias is None
    assert dec.mask_token.abs().max() <= 0.02


def test_visible_first_order_matches_manual_computation() -> None:
    dec, mask, latent = _setup(num_prefix=1)
    x = dec.encoder_to_decoder(latent)
    pos = dec.pos_embed
    vis = x[:, 1:] + gather_tokens(pos, mask.visible)
    hid = dec.mask_token + gather_tokens(pos, mask.hidden)
    seq = torch.cat([x[:, :1], vis, hid], dim=1)  # prefix, visible, hidden: not unshuffled
    for block in dec.blocks:
        seq = block(seq)
    expected = dec.head(dec.norm(seq[:, -5:]))
    torch.testing.assert_close(dec(latent, mask), expected)


def test_hidden_predictions_depend_on_visible_content() -> None:
    dec, mask, latent = _setup()
    latent = latent.requires_grad_(True)
    out = dec(latent, mask)
    out.sum().backward()
    assert latent.grad.abs().sum() > 0
    other = latent.detach().clone()
    other[:, 0] += 1.0
    assert not torch.allclose(dec(other, mask), out)


def test_learned_positions_are_parameters() -> None:
    dec = MAEDecoder(8, 8, 1, 2, patch_dim=4, grid=(3,), position_kind="learned")
    assert "pos_embed" in dict(dec.named_parameters())
    assert dec.no_weight_decay_names() == {"mask_token", "pos_embed"}
