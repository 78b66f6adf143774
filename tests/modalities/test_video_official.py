"""VideoMAE release checkpoints, built here in the reference's key layout (A8) with random weights."""

from __future__ import annotations

import argparse

import pytest
import torch

from tessera.core.encoder import Encoder
from tessera.core.heads import PooledHead
from tessera.modalities.video.official import read_initial_weights
from tessera.modalities.video.tokenizer import TubeletTokenizer
from tessera.objectives.supervised import SupervisedObjective
from tessera.train.checkpoint import CheckpointError, load_weights

D, DEPTH, DD, CLASSES = 32, 2, 16, 7  # tiny widths: the layout, not the size, is under test


def block_keys(prefix: str, dim: int) -> dict[str, torch.Tensor]:
    keys = {}
    for i in range(DEPTH):
        p = f"{prefix}blocks.{i}."
        keys.update({
            p + "norm1.weight": torch.randn(dim), p + "norm1.bias": torch.randn(dim),
            p + "attn.qkv.weight": torch.randn(3 * dim, dim),  # no qkv bias: q_bias and v_bias apart
            p + "attn.q_bias": torch.randn(dim), p + "attn.v_bias": torch.randn(dim),
            p + "attn.proj.weight": torch.randn(dim, dim), p + "attn.proj.bias": torch.randn(dim),
            p + "norm2.weight": torch.randn(dim), p + "norm2.bias": torch.randn(dim),
            p + "mlp.fc1.weight": torch.randn(4 * dim, dim), p + "mlp.fc1.bias": torch.randn(4 * dim),
            p + "mlp.fc2.weight": torch.randn(dim, 4 * dim), p + "mlp.fc2.bias": torch.randn(dim),
        })
    return keys


def pretrain_release() -> dict:
    model = {"encoder.patch_embed.proj.weight": torch.randn(D, 3, 2, 8, 8), "encoder.patch_embed.proj.bias": torch.randn(D)}
    model.update(block_keys("encoder.", D))
    model.update({"encoder.norm.weight": torch.randn(D), "encoder.norm.bias": torch.randn(D),
                  "encoder_to_decoder.weight": torch.randn(DD, D), "mask_token": torch.randn(1, 1, DD)})
    model.update(block_keys("decoder.", DD))
    model.update({"decoder.norm.weight": torch.randn(DD), "decoder.norm.bias": torch.randn(DD),
                  "decoder.head.weight": torch.randn(384, DD), "decoder.head.bias": torch.randn(384)})
    return {"model": model, "args": argparse.Namespace(model="pretrain_videomae_small_patch16_224")}


def finetune_release(classes: int = CLASSES) -> dict:
    module = {"patch_embed.proj.weight": torch.randn(D, 3, 2, 8, 8), "patch_embed.proj.bias": torch.randn(D)}
    module.update(block_keys("", D))
    module.update({"fc_norm.weight": torch.randn(D), "fc_norm.bias": torch.randn(D),
                   "head.weight": torch.randn(classes, D), "head.bias": torch.randn(classes)})
    return {"module": module}


def classifier() -> SupervisedObjective:
    tokenizer = TubeletTokenizer(D, frames=4, size=16, tubelet=(2, 8, 8))
    # mean pooling + fc_norm: the encoder has no final norm, as VideoMAE's fine-tuning model
    return SupervisedObjective(tokenizer, Encoder(D, DEPTH, 2, final_norm=False), PooledHead(D, CLASSES), "video")


def test_pretraining_release_loads_into_the_encoder_by_name(tmp_path):
    release = pretrain_release()
    path = tmp_path / "videomae_pretrain.pth"
    torch.save(release, path)
    weights, kind = read_initial_weights(path)
    assert kind == "videomae" and "tokenizer.proj.weight" in weights and "decoder.mask_token" in weights
    model = classifier()
    report = load_weights(model, weights, str(path))
    assert report.missing == ["head.fc_norm.bias", "head.fc_norm.weight", "head.head.bias", "head.head.weight"]
    assert all(k.startswith(("decoder.", "encoder.norm.")) for k in report.unexpected)
    assert "encoder.norm.weight" in report.unexpected  # unused under mean pooling
    assert torch.equal(model.encoder.blocks[1].attn.q_bias, release["model"]["encoder.blocks.1.attn.q_bias"])
    assert torch.equal(model.tokenizer.proj.weight, release["model"]["encoder.patch_embed.proj.weight"])
    assert "loaded" in report.summary() and "missing" in report.summary()


def test_finetuned_release_loads_whole_and_a_new_head_is_dropped(tmp_path):
    path = tmp_path / "videomae_finetuned.pth"
    torch.save(finetune_release(), path)
    weights, _ = read_initial_weights(path)
    model = classifier()
    report = load_weights(model, weights, str(path))
    assert report.missing == [] and report.unexpected == []
    torch.save(finetune_release(classes=400), path)
    report = load_weights(classifier(), read_initial_weights(path)[0], str(path))
    assert report.dropped == ["head.head.bias", "head.head.weight"]


def test_shape_mismatch_is_refused_naming_the_keys(tmp_path):
    release = finetune_release()
    release["module"]["blocks.0.mlp.fc1.weight"] = torch.randn(5, D)
    path = tmp_path / "bad.pth"
    torch.save(release, path)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.mlp\.fc1\.weight: checkpoint \(5, 32\)"):
        load_weights(classifier(), read_initial_weights(path)[0], str(path))


def test_unknown_layouts_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.layer1.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="not a VideoMAE checkpoint"):
        read_initial_weights(path)
    torch.save({"model": {"encoder.patch_embed.proj.weight": torch.zeros(1), "extra.thing": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="extra.thing"):
        read_initial_weights(path)
