"""The bench scripts run on a CPU in their smoke mode and print their tables with ratios.

Only that they run and report: speed and memory are measured by the benchmarks themselves (ratios
against a baseline in the same process), never asserted here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
RATIO = r"\d+\.\d\dx"


def run_smoke(script: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TESSERA_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"{script} --smoke failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def table_rows(output: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def test_pretrain_step_smoke(tmp_path):
    out = run_smoke("pretrain_step.py", tmp_path)
    assert "| variant |" in out and "clips/s ours/base" in out
    rows = {r[0]: r for r in table_rows(out, "baseline") + table_rows(out, "ours fp32") + table_rows(out, "ours bf16")}
    assert set(rows) == {"baseline", "ours fp32", "ours bf16"}, out
    assert rows["baseline"][-2] == "1.00x", out  # the baseline against itself
    for row in rows.values():
        assert re.fullmatch(RATIO, row[-2]), row
        assert float(row[2]) > 0  # clips/s
    assert re.search(r"\| ours fp32 \+ dm running_cell 0\.5 \|.*" + RATIO, out), out


def test_data_loading_smoke(tmp_path):
    out = run_smoke("data_loading.py", tmp_path)
    assert "## clips/s per worker" in out and "## data wait share" in out
    baseline, ours = table_rows(out, "baseline (PIL per frame)"), table_rows(out, "ours")
    assert len(baseline) == 2 and len(ours) == 2, out  # one row in each table
    assert baseline[0][-1] == "1.00x" and re.fullmatch(RATIO, ours[0][-1]), out  # clips/s per worker
    assert float(ours[0][1].split()[0]) > 0
    assert ours[1][1:3] == ["1", "5"], out  # 1 worker, 5 ms stand-in step
    assert re.fullmatch(r"[\d.]+% \[[\d.]+%, [\d.]+%\]", ours[1][4]), out  # the wait share
    assert re.fullmatch(RATIO + "|n/a", ours[1][-1]), out
    assert not (tmp_path / "cache").exists()  # smoke videos live in a temporary folder


def test_video_pretraining_payoff_smoke(tmp_path):
    out = run_smoke("video_pretraining_payoff.py", tmp_path)
    rows = table_rows(out, "2") + table_rows(out, "4")  # the measurements at steps 2 and 4 of 4
    assert len(rows) == 2 and all(re.search(RATIO, cell) for row in rows for cell in row[3:]), out
    arms = table_rows(out, "pretrained") + table_rows(out, "scratch")
    assert [row[0] for row in arms] == ["pretrained", "scratch"], out
    assert re.search(r"pretrained / scratch test top-1: " + RATIO, out), out
