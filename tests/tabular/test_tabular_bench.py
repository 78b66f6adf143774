"""bench/tabular_benchmark.py --smoke runs on a CPU and prints its comparison table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tabular_benchmark.py"


def test_smoke_prints_the_comparison(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TESSERA_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(tmp_path / "r.json")], env=env,
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    rows: dict[str, str] = {}
    for line in done.stdout.splitlines():  # the first table: one row per dataset
        if line.startswith("| "):
            rows.setdefault(line.split("|")[1].strip(), line)
    score = r"\d\.\d{4} ± \d\.\d{4}"
    assert re.search(rf"\| 178 x 13 \| accuracy \| {score} \| {score} \| {score} \|", rows["wine"])
    assert re.search(rf"\| 400 x 12 \| rmse \| {score} \| {score} \| {score} \|", rows["mixed-reg"])
    assert "Machine:" in done.stdout and (tmp_path / "r.json").exists()
