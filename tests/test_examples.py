"""The example scripts and the demo run as users would run them; the demo shows the paper's
verdicts and ordering (for `robust-score reproduce` too, which tabulates the same rows)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


# The README quickstart runs, and shows the trap, in tests/test_docs.py (with every other code
# block of README.md and the docs pages: test_page_code_blocks_run[README.md]).


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

    # the ordering, by the numbers: the value and target columns, counted from the right (the
    # metric ||x||/sqrt(d) holds bars)
    def value(experiment, sampler, start):
        cells = rows[(experiment, sampler, start)].split("|")
        return float(cells[-7]), float(cells[-6])

    # Thm 1: every sampler that anneals from noise beats Langevin from the center
    trapped, target = value(thm1, "ULA, trapped score", "center")
    for sampler in ("annealed Langevin (VE)", "reverse SDE (VP)", "PF-ODE Heun (VP)"):
        annealed_value, _ = value(thm1, f"{sampler}, trapped score", "noise")
        assert abs(annealed_value - target) < 0.1 * abs(trapped - target), sampler
    # Thm 7: fresh starts beat training-point starts (distance to the nearest training point)
    memorized, baseline = value(thm7, "ULA, memorizing score", "training points")
    fresh, _ = value(thm7, "ULA, memorizing score", "fresh samples")
    assert memorized < 0.2 * baseline < 0.9 * baseline < fresh
