"""The README quickstart, the example scripts and the demo run as users would run them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_readme_quickstart_runs_and_shows_the_trap(capsys):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README has no python block"
    exec(compile(blocks[0], "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    norms = [float(v) for v in re.findall(r"[\d.]+", lines[-1])]
    assert len(norms) == 4 and max(norms) < 2.0  # trapped near 1, far from 7.07


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_scripts_run(path):
    env = dict(os.environ, RS_EXAMPLE_QUICK="1")  # examples shrink their sizes under test
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_demo_prints_the_table_with_the_papers_verdicts(capsys):
    from robust_score.cli import main

    main(["demo"])
    out = capsys.readouterr().out
    rows = {
        tuple(cell.strip() for cell in line.split("|")[1:4]): line
        for line in out.splitlines()
        if line.startswith("| Thm")
    }
    assert len(rows) == 11
    thm1, thm7 = "Thm 1 center trap", "Thm 7 memorization"
    assert "reaches the target" in rows[(thm1, "ULA, exact score", "center")]
    assert "TRAPPED" in rows[(thm1, "ULA, trapped score", "center")]
    assert "reaches the target" in rows[(thm1, "ULA, trapped score", "fresh samples")]
    assert "MEMORIZED" in rows[(thm7, "ULA, memorizing score", "training points")]
    assert "generalizes" in rows[(thm7, "ULA, memorizing score", "fresh samples")]
    annealed = [line for key, line in rows.items() if key[2] == "noise"]
    assert len(annealed) == 6
    # the paper's positive result: every sampler that anneals from noise escapes both traps
    assert all("reaches the target" in line or "generalizes" in line for line in annealed)
