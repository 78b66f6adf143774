"""Typed recipe configs: YAML files with `base:` variants, `key.sub=value` overrides, strict validation.

OmegaConf reads the YAML, merges a variant over its base and the overrides over both, and resolves
`${...}` interpolations; the validation is ours, because a wrong key must be refused with *all* the
valid keys at its node and a wrong value with the accepted type or choices, before any work starts.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A recipe, variant or override that cannot be used; the message names the key and the fix."""


# --------------------------------------------------------------------------------------------------
# Validation: plain dicts (from YAML) -> dataclasses, refusing unknown keys and wrong types.


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def convert(tp: Any, value: Any, where: str) -> Any:
    """Check `value` against the annotation `tp` and return it in that type (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: null is not allowed, expected {_type_name(tp)}")
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return convert(arm, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{where}: {value!r} is not one of the valid choices: {choices}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
                return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
            item = args[0] if args else Any
            items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif origin in (dict, Mapping):
        if isinstance(value, Mapping):
            return {str(k): convert(args[1] if args else Any, v, _join(where, str(k))) for k, v in value.items()}
    else:
        raise TypeError(f"config annotation {tp!r} at {where} is not supported")
    raise ConfigError(f"{where}: {value!r} is not a valid {_type_name(tp)}")


def valid_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from a mapping; any unknown key is refused with the valid keys at that node."""
    node = where or "the top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{node}: expected a mapping of settings, got {data!r}")
    names = valid_keys(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown key '{_join(where, str(unknown[0]))}'; valid keys at {node}: {', '.join(names)}"
        )
    hints = typing.get_type_hints(cls)
    values = {k: convert(hints[k], v, _join(where, k)) for k, v in data.items()}
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.name not in values and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{node}: missing required key(s): {', '.join(_join(where, m) for m in missing)}")
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ConfigError as error:
            raise ConfigError(f"{node}: {error}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts, lists and scalars (what YAML, JSON and weights_only accept)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------------------------------
# YAML: variants and overrides.


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """`a.b=value` pairs; the value is read as YAML (`6`, `0.9`, `[2,16,16]`, `null`, `true`)."""
    import yaml

    pairs = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({error})") from None
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads `5e-2` (no dot) as a string
        pairs.append((key, value))
    return pairs


def apply_override(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {key}: '{where}' is a value ({child!r}), not a section")
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict, update: Mapping) -> dict:
    """`update` over `base`: mappings merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_yaml_chain(path: Path, find: typing.Callable[[str, Path], Path], seen: tuple[Path, ...] = ()) -> dict:
    """Read a recipe file and the chain of `base:` recipes it names, merged base-first."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = path.resolve()
    if path in seen:
        chain = " -> ".join(p.name for p in (*seen, path))
        raise ConfigError(f"{path}: `base:` recipes form a cycle: {chain}")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except (OSError, OmegaConfBaseException, ValueError) as error:
        raise ConfigError(f"{path}: cannot read the recipe ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    base_name = raw.pop("base", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: `base:` must name a recipe, got {base_name!r}")
    return deep_merge(load_yaml_chain(find(base_name, path.parent), find, (*seen, path)), raw)


def resolve_interpolations(raw: dict, source: str) -> dict:
    """Resolve `${section.key}` references after all merges, so overrides flow into them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(raw), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        raise ConfigError(f"{source}: {error}".splitlines()[0]) from None
