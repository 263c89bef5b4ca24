"""A newcomer's first hour (issue 15): the command answers at once, the license is there,
mistakes get early errors in the user's terms, rs.run labels and numbers draws like ArviZ,
progress is visible where it helps and quiet elsewhere, ULA rejects non-finite moves."""

import importlib.metadata
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import jax.numpy as jnp
import pytest

import robust_score as rs
from robust_score import cli

ROOT = Path(__file__).resolve().parents[1]
STANDARD = rs.scores.gaussian(jnp.zeros(3), 1.0)
VE = rs.schedules.ve()


def _command():
    """The installed ``robust-score`` script, else the module behind it."""
    script = shutil.which("robust-score", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "robust_score.cli"]


# -- 1. the command line ----------------------------------------------------------------------


def test_help_answers_fast_and_version_is_the_installed_one():
    started = time.perf_counter()
    result = subprocess.run([*_command(), "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    # ~0.2 s measured (JAX is not imported); loose, so a busy machine does not fail it
    assert elapsed < 5.0, f"`robust-score --help` took {elapsed:.1f} s"
    assert "demo" in result.stdout and "reproduce" in result.stdout
    assert "4-6 min" in result.stdout and "1.5 min" in result.stdout
    version = subprocess.run([*_command(), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"robust-score {importlib.metadata.version('robust-score')}"
    assert rs.__version__ == importlib.metadata.version("robust-score")


def test_importing_the_package_or_its_command_loads_no_jax():
    code = (
        "import sys, robust_score, robust_score.cli\n"
        "print(sorted(m for m in ('jax', 'numpyro', 'arviz_base') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_option_has_help_and_its_default():
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    text = subcommands["reproduce"].format_help()
    for option in ("--quick", "--out DIR", "--seed SEED"):
        assert option in text
    assert "(default: reproduce-out)" in text and "(default: 0)" in text
    assert "(default: off, the full run)" in text
    for action in subcommands["reproduce"]._actions:
        assert action.help, action.dest


def test_reproduce_forwards_its_options(monkeypatch):
    from robust_score.paper import reproduce

    calls = []
    monkeypatch.setattr(reproduce, "main", calls.append)
    cli.main(["reproduce", "--quick", "--out", "somewhere", "--seed", "3"])
    cli.main(["reproduce"])
    assert calls == [
        ["--out", "somewhere", "--seed", "3", "--quick"],
        ["--out", "reproduce-out", "--seed", "0"],
    ]
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--seed", "three"])


def test_the_lazy_namespace_keeps_rs_run_the_function():
    # importing the submodule robust_score.run first must not make `rs.run` the module
    code = (
        "import robust_score.run\n"
        "import robust_score as rs\n"
        "assert callable(rs.run) and rs.run.__name__ == 'run', rs.run\n"
        "assert not hasattr(rs, 'sys')\n"
        "from robust_score import ula, scores\n"
        "print(sorted(set(rs.__all__) - set(dir(rs))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_license_is_the_apache_text_the_metadata_declares():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    classifiers = set(project["classifiers"])
    for classifier in (
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Intended Audience :: Science/Research",
    ):
        assert classifier in classifiers
    urls = project.get("urls", {})
    assert not any("example" in url or "TODO" in url for url in urls.values())
