"""``robust-score reproduce --quick``: runs every experiment and writes its outputs
(learned-score numbers are reported as measured, not asserted against the paper; the paper's
ordering on the constructions, which reproduce shares with ``robust-score demo``, is asserted
by the demo test in tests/test_examples.py). The paper's applications stay out of the
library's import graph."""

import csv
import functools
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from robust_score.cli import main
from robust_score.paper import demo, reproduce
from robust_score.paper.experiments import Settings
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


def test_reproduce_tabulates_the_demo_constructions_at_the_demos_sizes(monkeypatch):
    # reproduce's construction rows are `robust-score demo`'s, computed by the same functions
    # with the same (default) sizes; tests/test_examples.py asserts the paper's verdicts and
    # ordering on them (the demo test), so the reproduce test below runs them small
    calls = []

    def rows(name, **kwargs):
        calls.append((name, kwargs))
        return [Row(name, "ULA", "center", "norm", 1.0, 7.0, 20, l2_error=0.1, max_rhat=1.0)]

    monkeypatch.setattr(demo, "center_trap_rows", lambda **kw: rows("Thm 1", **kw))
    monkeypatch.setattr(demo, "memorization_rows", lambda **kw: rows("Thm 7", **kw))
    constructions = reproduce.construction_rows()
    assert calls == [("Thm 1", {}), ("Thm 7", {})]
    assert [r.experiment for r in constructions] == ["Thm 1", "Thm 7"]
    # the reproduce table has no L2-error or R-hat columns
    assert all(r.l2_error is None and r.max_rhat is None for r in constructions)


# `reproduce --quick` with its learned-score experiments smaller still: every sampler, start
# and repeat of both targets runs and writes a finite metric and its curve. The quick sizes
# themselves run in the reproduction notebook (executed by tests/test_docs.py, the mixture);
# the full sizes only in `robust-score reproduce`.
TINY = Settings(num_train=200, duplicate=2, train_steps=100, hidden=(32, 32), batch_size=64,
                langevin_steps=60, num_chains=8, diffusion_steps=20, annealed_steps_per_level=2,
                record_every=20, num_repeats=2)  # fmt: skip


@pytest.mark.slow
def test_reproduce_quick_writes_outputs_and_every_row(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Settings, "quick", classmethod(lambda cls: TINY))
    # the constructions at a tenth of their steps: the verdicts are test_examples.py's
    small = {"center": demo.center_trap_rows, "memorization": demo.memorization_rows}
    monkeypatch.setattr(demo, "center_trap_rows", functools.partial(small["center"], num_steps=200))
    monkeypatch.setattr(
        demo,
        "memorization_rows",
        functools.partial(small["memorization"], experiment=demo.THM7._replace(num_steps=200)),
    )
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
    out = capsys.readouterr().out
    assert "| Thm 1 center trap |" in out and f"Settings: {TINY}" in out
    assert (tmp_path / "table.md").read_text() in out
    constructions = [r for r in rows if r["experiment"].startswith("Thm")]
    assert len(constructions) == 11 and all(r["verdict"] for r in constructions)
    # the learned-score experiments produce a finite number for every sampler and start
    learned = [r for r in rows if not r["experiment"].startswith("Thm")]
    assert len(learned) == 10
    assert all(math.isfinite(float(r["value"])) for r in learned)
    assert {r["repeats"] for r in learned} == {"2"}
    starts = {r["start"] for r in learned}
    assert starts == {"vanilla N(0, I)", "fresh samples", "training samples", "noise"}
