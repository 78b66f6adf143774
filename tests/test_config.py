"""Recipe loading: variants, overrides and refusals that name the key and the valid choices."""

from __future__ import annotations

import pytest

from tessera.config import ConfigError, parse_overrides, to_dict
from tessera.recipes import list_recipes, load_recipe, raw_recipe


def test_shipped_recipes_validate():
    names = list_recipes()
    assert {"videomae-pretrain", "videomae-pretrain-ssv2", "videomae-pretrain-ucf101", "videomae-pretrain-tiny"} <= set(names)
    for name in names:
        load_recipe(name)


def test_reference_defaults_of_the_videomae_recipes():
    k400 = load_recipe("videomae-pretrain")
    assert (k400.model.dim, k400.model.depth, k400.model.heads, k400.model.decoder_depth) == (768, 12, 12, 4)
    assert k400.optim.base_lr == 1.5e-4 and k400.optim.betas == (0.9, 0.95) and k400.optim.lr is None
    assert (k400.train.epochs, k400.train.warmup_epochs) == (800, 40)
    assert k400.objective.mask_ratio == 0.9 and k400.data.sampling_rate == 4
    ssv2 = load_recipe("videomae-pretrain-ssv2")
    assert ssv2.data.sampling_rate == 2 and ssv2.objective.mask_ratio == 0.9
    ucf = load_recipe("videomae-pretrain-ucf101")
    assert (ucf.objective.mask_ratio, ucf.optim.base_lr, ucf.data.batch_size, ucf.train.epochs) == (0.75, 3e-4, 24, 3200)


def test_overrides_are_typed_and_reach_nested_keys():
    cfg = load_recipe("videomae-pretrain", ["model.depth=6", "data.tubelet=[2,8,8]", "optim.clip_grad=1"])
    assert cfg.model.depth == 6
    assert cfg.data.tubelet == (2, 8, 8)
    assert cfg.optim.clip_grad == 1.0 and isinstance(cfg.optim.clip_grad, float)


def test_variant_inherits_and_overrides_its_base():
    tiny = load_recipe("videomae-pretrain-tiny")
    assert tiny.optim.betas == (0.9, 0.95)  # from the base
    assert tiny.model.dim == 64 and tiny.data.input_size == 32


def test_unknown_key_is_refused_with_the_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_recipe("videomae-pretrain", ["model.detph=6"])
    message = str(info.value)
    assert "model.detph" in message and "depth" in message and "decoder_heads" in message


def test_unknown_section_and_choices_are_refused():
    with pytest.raises(ConfigError, match="valid keys at the top level"):
        load_recipe("videomae-pretrain", ["modle.depth=6"])
    with pytest.raises(ConfigError, match="'auto', 'bf16', 'fp32'"):
        load_recipe("videomae-pretrain", ["train.precision=fp16"])
    with pytest.raises(ConfigError, match="data.modality.*'video'"):
        load_recipe("videomae-pretrain", ["data.modality=audio"])


def test_wrong_types_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match="model.depth.*not a valid"):
        load_recipe("videomae-pretrain", ["model.depth=six"])
    with pytest.raises(ConfigError, match="train.epochs"):
        load_recipe("videomae-pretrain", ["train.epochs=1.5"])
    with pytest.raises(ConfigError, match="data.tubelet.*expected 3 values"):
        load_recipe("videomae-pretrain", ["data.tubelet=[2,16]"])
    with pytest.raises(ConfigError, match="train.seed"):
        load_recipe("videomae-pretrain", ["train.seed=true"])


def test_value_checks():
    with pytest.raises(ConfigError, match="mask_ratio"):
        load_recipe("videomae-pretrain", ["objective.mask_ratio=1.2"])
    with pytest.raises(ConfigError, match="exactly one of optim.lr"):
        load_recipe("videomae-pretrain", ["optim.lr=0.001"])
    with pytest.raises(ConfigError, match="multiples of data.tubelet"):
        load_recipe("videomae-pretrain", ["data.input_size=200"])
    with pytest.raises(ConfigError, match="not divisible"):
        load_recipe("videomae-pretrain", ["model.heads=5"])


def test_malformed_override_and_unknown_recipe():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["model.depth"])
    with pytest.raises(ConfigError, match="shipped recipes: .*videomae-pretrain"):
        load_recipe("videomae-pretrian")


def test_user_yaml_with_base_and_interpolation(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: videomae-pretrain-tiny\ndata:\n  batch_size: 4\ntrain:\n  seed: ${data.batch_size}\n")
    cfg = load_recipe(str(path), ["data.batch_size=2"])
    assert cfg.name == "mine" and cfg.data.batch_size == 2 and cfg.train.seed == 2


def test_base_cycle_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        raw_recipe(str(tmp_path / "a.yaml"))


def test_resolved_config_round_trips_through_plain_dicts():
    cfg = load_recipe("videomae-pretrain-tiny")
    plain = to_dict(cfg)
    assert plain["model"]["dim"] == 64 and plain["data"]["tubelet"] == [2, 8, 8]
    from tessera.recipes.schema import recipe_from_dict

    again = recipe_from_dict({k: v for k, v in plain.items() if k != "name"}, "tiny")
    assert to_dict(again)["model"] == plain["model"]


def test_exponent_without_a_dot_is_a_number():
    cfg = load_recipe("videomae-pretrain", ["optim.base_lr=5e-2", "optim.min_lr=1E-6"])
    assert cfg.optim.base_lr == 0.05 and cfg.optim.min_lr == 1e-6
