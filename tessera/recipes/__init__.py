"""Shipped recipes (YAML package data) and how a name or a path becomes a validated config."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from tessera.config import ConfigError, apply_override, load_yaml_chain, parse_overrides, resolve_interpolations

CONFIG_DIR = Path(str(resources.files("tessera.recipes") / "configs"))


def list_recipes() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_recipe(name: str, relative_to: Path | None = None) -> Path:
    """A shipped recipe by name, or a YAML file by path (relative to the file that names it as base)."""
    shipped = CONFIG_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    for candidate in (Path(name), (relative_to or Path.cwd()) / name):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    raise ConfigError(f"no recipe named {name!r}; shipped recipes: {', '.join(list_recipes())} (or a path to a .yaml file)")


def raw_recipe(name: str, overrides: Sequence[str] = ()) -> dict:
    """The merged, overridden and interpolated recipe as plain dicts, before validation."""
    path = find_recipe(name)
    raw = load_yaml_chain(path, find_recipe)
    for key, value in parse_overrides(overrides):
        apply_override(raw, key, value)
    return resolve_interpolations(raw, str(path))


def load_recipe(name: str, overrides: Sequence[str] = ()):
    """Validated RecipeConfig for a shipped name or a YAML path, with `key.sub=value` overrides."""
    from tessera.recipes.schema import recipe_from_dict

    return recipe_from_dict(raw_recipe(name, overrides), Path(name).stem if name.endswith((".yaml", ".yml")) else name)
