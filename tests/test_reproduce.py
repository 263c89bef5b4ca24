"""``robust-score reproduce --quick``: runs, writes its outputs, and shows the paper's
ordering on the constructions (learned-score numbers are reported as measured, not asserted
against the paper). The paper's applications stay out of the library's import graph."""

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from robust_score.cli import main
from robust_score.paper import reproduce
from robust_score.paper.records import Row

PACKAGE = Path(__file__).resolve().parents[1] / "robust_score"


def test_the_library_does_not_import_the_paper_applications():
    # only the command line (inside its subcommands) and the paper package itself may
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "paper" or relative == Path("cli.py"):
            continue
        source = path.read_text()
        assert not re.search(r"robust_score\.paper|from robust_score import .*\bpaper\b", source), (
            relative
        )
    # every public name loaded (the namespace is lazy), every subpackage imported
    code = (
        "import sys, robust_score as rs\n"
        "[getattr(rs, name) for name in rs.__all__]\n"
        "print(any(m.startswith('robust_score.paper') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_rows_write_empty_cells_for_fields_a_row_does_not_have(tmp_path):
    learned = Row("G", "ULA", "fresh", "KL", 1.25, score_evals=10, sd=0.5, repeats=2)
    construction = Row("Thm 1", "ULA", "center", "norm", 1.0, 7.0, 20, verdict="TRAPPED")
    reproduce._write_csv(tmp_path / "results.csv", [learned, construction])
    with open(tmp_path / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert (rows[0]["sd"], rows[0]["target"], rows[0]["verdict"]) == ("0.5", "", "")
    assert (rows[1]["sd"], rows[1]["repeats"], rows[1]["target"]) == ("", "", "7.0")
    table = reproduce._table([learned, construction], [], "settings", 1.0)
    assert "| G | ULA | fresh | KL | 1.250 ± 0.500 (2 runs) |  | 10 | 0 |  |" in table
    assert "| Thm 1 | ULA | center | norm | 1.000 | 7.000 | 20 | 0 | TRAPPED |" in table


@pytest.mark.slow
def test_reproduce_quick_writes_outputs_with_the_papers_ordering(tmp_path, capsys):
    main(["reproduce", "--quick", "--out", str(tmp_path)])
    for name in (
        "table.md",
        "results.csv",
        "metric_vs_steps_gaussian.png",
        "metric_vs_steps_mixture.png",
        "trap_trajectories.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert "| Thm 1 center trap |" in capsys.readouterr().out

    def value(experiment, sampler, start):
        (row,) = [
            r
            for r in rows
            if r["experiment"] == experiment and r["sampler"] == sampler and r["start"] == start
        ]
        return float(row["value"]), float(row["target"] or "nan")

    # Thm 1: every sampler that anneals from noise beats Langevin from the center
    trapped, target = value("Thm 1 center trap", "ULA, trapped score", "center")
    for sampler in ("annealed Langevin (VE)", "reverse SDE (VP)", "PF-ODE Heun (VP)"):
        annealed, _ = value("Thm 1 center trap", f"{sampler}, trapped score", "noise")
        assert abs(annealed - target) < 0.1 * abs(trapped - target)
    # Thm 7: fresh starts beat training-point starts (distance to the nearest training point)
    memorized, baseline = value("Thm 7 memorization", "ULA, memorizing score", "training points")
    fresh, _ = value("Thm 7 memorization", "ULA, memorizing score", "fresh samples")
    assert memorized < 0.2 * baseline < 0.9 * baseline < fresh
    # the learned-score experiments produce a finite number for every sampler and start
    learned = [r for r in rows if not r["experiment"].startswith("Thm")]
    assert len(learned) == 10
    assert all(math.isfinite(float(r["value"])) for r in learned)
