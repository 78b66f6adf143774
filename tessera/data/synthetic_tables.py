"""Generated tables with mixed numerical and categorical columns, for tiny recipes, tests and benchmarks.

Every row draws a latent z ~ N(0, I_4); the features are noisy views of it, so they predict each other
(what T-JEPA learns from), and the targets need features jointly:

    num_0 = z0 + noise, num_1 = z1 + noise       alone, each says nothing about the label
    num_j (j >= 2)  random mixtures of z, some through tanh or exp, the last one pure noise
    cat_0           the quadrant of (z2, z3): q0..q3
    cat_j (j >= 1)  one of 3 to 6 levels, drawn with probabilities that depend on z
    label           1 if z0 * z1 + 0.5 z2 > 0, else 0; 5% of labels flipped
    value           z0 * z1 + sin(2 z2) + 0.5 [cat_0 in (q0, q2)] + 0.1 noise

The sign of z0 * z1 is an XOR of the signs of num_0 and num_1: neither column alone carries it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

LATENT = 4
DONE_MARKER = "DONE"


def make_table(rows: int = 2000, numerical: int = 8, categorical: int = 4, missing: float = 0.0, seed: int = 0):
    """A pandas DataFrame: num_*, cat_*, then `label` (0/1) and `value` (float)."""
    import pandas as pd

    if numerical < 2 or categorical < 1:
        raise ValueError(f"a synthetic table needs >= 2 numerical and >= 1 categorical columns, "
                         f"got {numerical}, {categorical}")
    if not 0 <= missing < 1:
        raise ValueError(f"missing must be in [0, 1), got {missing}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, LATENT))
    columns: dict[str, object] = {}
    columns["num_0"] = z[:, 0] + 0.3 * rng.standard_normal(rows)
    columns["num_1"] = z[:, 1] + 0.3 * rng.standard_normal(rows)
    for j in range(2, numerical):
        if j == numerical - 1 and numerical > 3:
            columns[f"num_{j}"] = rng.standard_normal(rows)  # pure noise
            continue
        mix = z @ rng.standard_normal(LATENT) / np.sqrt(LATENT)
        shape = j % 3
        values = np.tanh(mix) if shape == 1 else np.exp(0.5 * mix) if shape == 2 else mix
        columns[f"num_{j}"] = values + 0.3 * rng.standard_normal(rows)
    quadrant = (z[:, 2] < 0).astype(int) + 2 * (z[:, 3] < 0).astype(int)
    names = np.array(["q0", "q1", "q3", "q2"])  # (+,+) q0, (-,+) q1, (+,-) q3, (-,-) q2
    columns["cat_0"] = names[quadrant]
    for j in range(1, categorical):
        levels = 3 + (j % 4)
        logits = 1.5 * z @ rng.standard_normal((LATENT, levels)) + rng.gumbel(size=(rows, levels))
        columns[f"cat_{j}"] = np.array([chr(ord("a") + k) for k in range(levels)])[logits.argmax(axis=1)]
    frame = pd.DataFrame(columns)
    if missing > 0:
        for name in list(frame.columns):
            holes = rng.random(rows) < missing
            frame[name] = frame[name].where(~holes)
    label = (z[:, 0] * z[:, 1] + 0.5 * z[:, 2] > 0).astype(int)
    flip = rng.random(rows) < 0.05
    frame["label"] = np.where(flip, 1 - label, label)
    same_diagonal = np.isin(columns["cat_0"], ["q0", "q2"]).astype(float)
    frame["value"] = z[:, 0] * z[:, 1] + np.sin(2 * z[:, 2]) + 0.5 * same_diagonal + 0.1 * rng.standard_normal(rows)
    return frame


def write_table(frame, path: Path) -> Path:
    """Write CSV or Parquet by the suffix, through a temporary name (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def ensure_synthetic_table(folder: Path, rows: int = 2000, numerical: int = 8, categorical: int = 4,
                           missing: float = 0.0, format: str = "csv", seed: int = 0) -> Path:
    """The generated table's file in `folder`, written on first use; later calls reuse it."""
    folder = Path(folder)
    path = folder / f"table.{format}"
    settings = {"rows": rows, "numerical": numerical, "categorical": categorical, "missing": missing,
                "format": format, "seed": seed}
    marker = folder / DONE_MARKER
    if marker.exists() and path.exists() and json.loads(marker.read_text()) == settings:
        return path
    write_table(make_table(rows, numerical, categorical, missing, seed), path)
    marker.write_text(json.dumps(settings))
    return path
