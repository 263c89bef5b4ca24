"""Sphinx configuration: `make docs` builds docs/ (Markdown pages, the example notebooks under
examples/ executed by myst-nb, the API reference from docstrings) with warnings as errors."""

import hashlib
import inspect
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import blackjax  # noqa: E402

import robust_score  # noqa: E402

project = "robust-score"
author = "robust-score maintainers"
copyright = "2026, robust-score maintainers"
release = version = robust_score.__version__

extensions = [
    "myst_nb",  # Markdown pages and MyST (jupytext) notebooks; loads myst_parser itself
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
# docs/examples is a symlink to ../examples: the notebooks live next to the example scripts
# _static holds generated outputs (e.g. reproduce's table.md), offered as downloads, not pages
exclude_patterns = ["_build", "_static", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# MyST
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# Notebook execution: every notebook runs at build time, and a cell that raises fails the
# build. Outputs are cached (jupyter-cache) by notebook source, beside the output directory,
# in a cache keyed by the library's source and pins (see _notebook_cache below): editing
# robust_score/ re-runs every notebook at the next build, editing only prose re-runs nothing.
# RS_DOCS_EXECUTION=force re-runs them regardless.
nb_execution_mode = os.environ.get("RS_DOCS_EXECUTION", "cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# text/markdown outputs (TrapReport's table) are GitHub-flavoured: tables need gfm
nb_render_markdown_format = "gfm"

# autodoc / napoleon
autodoc_member_order = "bysource"
# hints in signatures expand BlackJAX's ArrayTree alias into a page-wide Union: leave them to
# the docstrings, which say what each argument is
autodoc_typehints = "none"
autodoc_default_options = {"show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# HTML
html_theme = "pydata_sphinx_theme"
html_title = "robust-score"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # the top bar holds the "Start here" pages and the example notebooks (index.md's first
    # two toctrees); the guide's other pages and the reference follow under "More"
    "header_links_before_dropdown": 7,
}
html_static_path: list[str] = []

# Figures: let ipykernel pick its inline backend even where MPLBACKEND is set (e.g. to Agg).
os.environ.pop("MPLBACKEND", None)


def _sampling_api_signature(app, what, name, obj, options, signature, return_annotation):
    """`rs.ula` & co. are ``blackjax.GenerateSamplingAPI`` instances: document them with the
    signature of the factory they call (``as_top_level_api``), not ``(*args, **kwargs)``."""
    if isinstance(obj, blackjax.GenerateSamplingAPI):
        sig = inspect.signature(obj.differentiable)
        return str(sig.replace(return_annotation=inspect.Signature.empty)), None
    return None


def _sampling_api_docstring(app, what, name, obj, options, lines):
    """... and with that factory's docstring (runs before napoleon's handler)."""
    if isinstance(obj, blackjax.GenerateSamplingAPI):
        doc = inspect.getdoc(obj.differentiable) or ""
        lines[:] = doc.splitlines() + [
            "",
            f"Low-level pieces: ``{name}.init`` and ``{name}.build_kernel`` "
            f"(module :mod:`{obj.differentiable.__module__}`).",
        ]


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """NamedTuple fields carry only "Alias for field number N": the class signature lists them."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def _notebook_cache(app, config):
    """A notebook cache per state of the library, next to the output (docs/_build/ for
    `make docs`, a temporary directory for tests/test_docs.py, so that one always executes)."""
    key = hashlib.sha256(
        b"".join(
            path.relative_to(ROOT).as_posix().encode() + path.read_bytes()
            for path in sorted([*ROOT.glob("robust_score/**/*.py"), ROOT / "constraints.txt"])
            if path.is_file()
        )
    ).hexdigest()[:16]
    config.nb_execution_cache_path = str(Path(app.outdir).parent / ".jupyter_cache" / key)


def setup(app):
    app.connect("config-inited", _notebook_cache)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("autodoc-process-signature", _sampling_api_signature)
    app.connect("autodoc-process-docstring", _sampling_api_docstring, priority=100)
