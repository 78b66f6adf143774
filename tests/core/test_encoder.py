from __future__ import annotations

import pytest
import torch

from tessera.core.encoder import Encoder


def _encoder(**kw) -> Encoder:
    torch.manual_seed(0)
    return Encoder(16, 3, 2, **kw).eval()


def _manual(enc: Encoder, x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    for block in enc.blocks:
        x = block(x)
        outs.append(x)
    return outs


def test_keep_runs_prefix_and_kept_tokens_only() -> None:
    enc = _encoder()
    tokens = torch.randn(2, 2 + 6, 16)  # 2 prefix tokens, 6 body tokens
    keep = torch.tensor([[0, 3, 5], [1, 2, 4]])
    last, _ = enc(tokens, keep=keep, num_prefix=2)
    body = torch.stack([tokens[b, 2:][keep[b]] for b in range(2)])
    expected = enc.norm(_manual(enc, torch.cat([tokens[:, :2], body], dim=1))[-1])
    assert last.shape == (2, 5, 16)
    torch.testing.assert_close(last, expected)


def test_mask_token_at_replaces_exactly_the_chosen_tokens() -> None:
    enc = _encoder(mask_embed=True)
    tokens, positions = torch.randn(2, 1 + 6, 16), torch.randn(1, 6, 16)
    hide = torch.tensor([[1, 4], [0, 5]])
    seen: dict[str, torch.Tensor] = {}

    def record(module, args) -> None:
        seen["x"] = args[0].detach().clone()

    handle = enc.blocks[0].register_forward_pre_hook(record)
    last, _ = enc(tokens, mask_token_at=hide, positions=positions, num_prefix=1)
    handle.remove()
    manual = tokens.clone()
    for b in range(2):
        for i in hide[b].tolist():
            manual[b, 1 + i] = enc.mask_embed[0, 0] + positions[0, i]
    torch.testing.assert_close(seen["x"], manual)
    changed = (seen["x"] != tokens).any(-1)
    assert changed.sum() == 4 and not changed[:, 0].any()
    torch.testing.assert_close(last, enc.norm(_manual(enc, manual)[-1]))
    assert last.shape == (2, 7, 16)


def test_mask_token_errors() -> None:
    enc = _encoder(mask_embed=True)
    tokens, idx = torch.randn(2, 6, 16), torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="positions"):
        enc(tokens, mask_token_at=idx)
    with pytest.raises(ValueError, match="not both"):
        enc(tokens, keep=idx, mask_token_at=idx, positions=torch.zeros(1, 6, 16))
    with pytest.raises(ValueError, match="mask_embed=True"):
        _encoder()(tokens, mask_token_at=idx, positions=torch.zeros(1, 6, 16))


def test_return_layers_and_final_norm() -> None:
    enc = _encoder()
    tokens = torch.randn(2, 4, 16)
    outs = _manual(enc, tokens)
    last, states = enc(tokens, return_layers=(0, -1))
    assert set(states) == {0, 2}
    torch.testing.assert_close(states[0], outs[0])
    torch.testing.assert_close(states[2], outs[2])  # before the final norm
    torch.testing.assert_close(last, enc.norm(outs[2]))
    raw, _ = enc(tokens, final_norm=False)
    torch.testing.assert_close(raw, outs[2])
    with pytest.raises(ValueError, match="out of range"):
        enc(tokens, return_layers=(3,))
    assert isinstance(Encoder(16, 1, 2, final_norm=False).norm, torch.nn.Identity)


@pytest.mark.parametrize("block", ["beit", "vit", "post_norm"])
def test_each_block_kind_trains(block: str) -> None:
    torch.manual_seed(0)
    enc = Encoder(16, 2, 2, block=block, mask_embed=True)
    tokens = torch.randn(2, 5, 16, requires_grad=True)
    last, _ = enc(tokens, mask_token_at=torch.tensor([[1], [3]]), positions=torch.zeros(1, 5, 16))
    last.square().mean().backward()
    assert enc.mask_embed.grad is not None and tokens.grad is not None


def test_drop_path_schedule_and_weight_decay_names() -> None:
    enc = Encoder(16, 3, 2, drop_path=0.2)
    assert isinstance(enc.blocks[0].drop_path1, torch.nn.Identity)
    assert [round(b.drop_path1.drop_prob, 6) for b in enc.blocks[1:]] == [0.1, 0.2]
    assert enc.no_weight_decay_names() == set()
    assert Encoder(16, 1, 2, mask_embed=True).no_weight_decay_names() == {"mask_embed"}
