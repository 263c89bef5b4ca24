"""The documentation builds with warnings as errors, executing every example notebook.

This is `make docs` into a temporary directory, so CI (which runs `make test`) also checks the
Sphinx site, the API reference generated from the docstrings and the notebooks under
examples/ (a cell that raises fails the build).
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_without_warnings_and_notebooks_execute(tmp_path):
    # fresh output, doctree and (myst-nb's, beside the output) notebook-cache directories:
    # every notebook is executed
    out = tmp_path / "html"
    command = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
        "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    for page in ("index", "guide", "reference/samplers", "examples/trap_diagnostics"):
        assert (out / f"{page}.html").is_file(), page
    # the notebooks ran: their outputs (report tables, figures) are in the pages
    trap_page = (out / "examples" / "trap_diagnostics.html").read_text()
    assert "trap report: FAIL" in trap_page and "trap report: OK" in trap_page
    reproduction_page = (out / "examples" / "reproduction.html").read_text()
    assert "TRAPPED at" in reproduction_page and "MEMORIZED" in reproduction_page
    assert len(list((out / "_images").glob("*.png"))) >= 2, "the figures were not rendered"
