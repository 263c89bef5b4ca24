"""The documentation: every code block on a page runs, every example notebook executes, and
the Sphinx site builds with warnings as errors.

`make docs` builds the site and executes the notebooks in one go (myst-nb, 2-4 min on two
cores). `make test` checks the same things in three cheaper, independent parts that pytest-xdist
spreads over the cores:

- every example notebook (examples/*.md, MyST notebooks) is executed exactly once, by
  :func:`test_example_notebook_executes`, with the kernel and executor myst-nb uses
  (nbclient); a cell that raises fails it, and the outputs the pages promise (report tables,
  verdicts, figures) are asserted on the executed notebook;
- the Sphinx build (:func:`test_docs_build_without_warnings`) runs with notebook execution off
  (``-D nb_execution_mode=off``), still with ``-W``: broken references, toctrees, directives
  and the API reference generated from the docstrings fail it;
- every fenced code block of README.md and of the Markdown pages under docs/ is executed or
  tested by :func:`test_page_code_blocks_run` / :func:`test_shell_blocks_name_real_commands`,
  by the rules of :data:`FENCE_RULES` (a block of any other kind fails
  :func:`test_every_code_block_has_a_rule`), and every code block of the library's docstrings
  (the API reference pages) by :func:`test_docstring_code_blocks_run`.

Until issue 15 this file was one test, `make docs` into a temporary directory (2-6 min);
its assertions are in test_example_notebook_executes (the notebooks' outputs: report
verdicts, figures) and test_docs_build_without_warnings (the build, its pages).
"""

import dataclasses
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# the MyST notebooks (docs/examples is a symlink to ../examples); their pages are these files
NOTEBOOKS = sorted((ROOT / "examples").glob("*.md"))


# -- the pages' fenced code blocks ------------------------------------------------------------
def _pages() -> list[Path]:
    """README.md and every Markdown page of the site that is not a notebook (docs/examples/ is
    executed as notebooks below; _build/ and _static/ are outputs)."""
    pages = [ROOT / "README.md"]
    for path in sorted(DOCS.rglob("*.md")):
        if path.relative_to(DOCS).parts[0] not in ("examples", "_build", "_static"):
            pages.append(path)
    return pages


PAGES = _pages()


@dataclasses.dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence
    info: str  # the fence's info string: "python", "bash", "{toctree}", ...
    code: str

    @property
    def kind(self) -> str:
        return self.info.split()[0] if self.info else ""


_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page (CommonMark fences, top level or indented)."""
    blocks, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        match = _FENCE.match(lines[i].lstrip())
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(lines[i]) - len(lines[i].lstrip())
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and set(lines[end].strip()) == {fence[0]}
        ):
            end += 1
        body = "\n".join(line[indent:] for line in lines[i + 1 : end])
        blocks.append(Block(path.relative_to(ROOT).as_posix(), i + 1, match["info"].strip(), body))
        i = end + 1
    return blocks


# What happens to each kind of fence. A kind missing here fails test_every_code_block_has_a_rule.
FENCE_RULES = {
    "python": "executed, page by page in one namespace (test_page_code_blocks_run)",
    "bash": "each command checked (test_shell_blocks_name_real_commands)",
    # MyST directives are markup, not code: the Sphinx build (-W) checks each of them
    "{toctree}": "the Sphinx build",
    "{eval-rst}": "the Sphinx build (autodoc: the API reference)",
    "{image}": "the Sphinx build (a missing image is a warning, so an error)",
    "{figure}": "the Sphinx build",
    "{note}": "the Sphinx build",
    "{warning}": "the Sphinx build",
    # literal text (program output, a layout): nothing to run
    "text": "not code",
}


def test_every_code_block_has_a_rule():
    unknown = [
        f"{b.page}:{b.line} ```{b.info}" for p in PAGES for b in code_blocks(p)
        if b.kind not in FENCE_RULES
    ]  # fmt: skip
    assert not unknown, f"fenced blocks nobody runs or checks (add a rule): {unknown}"
    # the parser sees the blocks it must: the README's three, the landing page's quickstart
    readme = [b.kind for b in code_blocks(ROOT / "README.md")]
    assert readme == ["bash", "bash", "python"], readme
    assert "python" in [b.kind for b in code_blocks(DOCS / "index.md")]


# Pages' Python blocks are fragments of a user's program: some use names the prose defines
# ("tree from rs.run", "data: (n, d)", a NumPyro `model`). SETUP gives each such page those
# names, small, before its first block runs. SIZES shrinks what the page shows at full size
# (training steps, MCMC draws) and fills `...` placeholders: each (old, new) pair must occur in
# the page's blocks, so a stale rule fails instead of silently running the full size.
SETUP = {
    "docs/diagnostics.md": """
import arviz as az
import jax, jax.numpy as jnp
import numpyro, numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS
import robust_score as rs

exact = rs.scores.gaussian(jnp.full(5, 3.0), 1.0)
algorithm = rs.ula(rs.scores.center_trap(exact), step_size=0.1)
tree = rs.run(algorithm, jax.random.key(0), jnp.zeros((4, 5)), 400)

def model(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

key, sigma, y = jax.random.key(1), 1.0, jnp.array([0.3, -0.2, 1.1])
""",
    "docs/diffusion.md": """
import jax, jax.numpy as jnp
dim, key = 3, jax.random.key(0)
weights, means, covs = jnp.array([0.3, 0.7]), jnp.array([[-2.0, 0, 0], [2.0, 0, 0]]), 1.0
""",
    "docs/guide.md": """
import jax, jax.numpy as jnp
import robust_score as rs
key, position = jax.random.key(0), jnp.zeros(3)
logdensity_fn = rs.scores.gaussian_logdensity(jnp.zeros(3), jnp.array([1.0, 10.0, 100.0]))
""",
    "docs/learn.md": """
import jax
d, key = 2, jax.random.key(1)
data = jax.random.normal(jax.random.key(2), (64, d))
""",
    "docs/numpyro.md": """
import jax.numpy as jnp
import numpyro, numpyro.distributions as dist

def model(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)

model_args, model_kwargs = (), {"y": jnp.array([0.3, -0.2, 1.1, 0.8])}

def constrained_score_fn(x):  # the score of the prior, in the model's natural units
    return {"mu": -x["mu"] / 100.0, "sigma": -x["sigma"] / 4.0}
""",
}
SIZES = {
    "docs/diagnostics.md": [("num_warmup=500, num_samples=500", "num_warmup=100, num_samples=100")],
    "docs/learn.md": [
        ("num_steps=5000", "num_steps=50"),
        ("batch_size=256", "batch_size=32"),
        ("hidden=(256, 256, 256)", "hidden=(16, 16)"),
    ],
    "docs/diffusion.md": [("1000, (dim,)", "100, (dim,)")],
    "docs/numpyro.md": [
        ("num_warmup=1000", "num_warmup=100"),
        ("num_samples=1000", "num_samples=100"),
        ("*model_args,", "*model_args, **model_kwargs,"),
        ("model_args=..., model_kwargs=...", "model_args=model_args, model_kwargs=model_kwargs"),
    ],
}


def _norms(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"\d+\.\d+", line)]


def _readme_shows_the_trap(namespace, out):
    norms = _norms(out.strip().splitlines()[-1])
    assert len(norms) == 4 and max(norms) < 2.0, out  # trapped near 1, far from 7.07


def _index_shows_the_trap_and_the_escape(namespace, out):
    trapped, annealed = (_norms(line) for line in out.strip().splitlines()[-2:])
    assert len(trapped) == 4 and max(trapped) < 2.0, out  # ULA: trapped near 1
    assert len(annealed) == 4 and all(abs(v - 7.07) < 0.5 for v in annealed), out


def _numpyro_learned_prior_matches_the_closed_form(namespace, out):
    """The page's inverse problem: NUTS refuses naming the site, and both samplers' posterior
    means are within 0.5 posterior sd of the closed form on every coordinate (Monte-Carlo
    error: about 0.1 sd for 4 x 500 ULA draws, 0.05 for 400 annealed ones, 0.3 and 0.15 as
    the largest of 16; annealing's own bias 0.05); without the prior's score they are off by
    several sds."""
    assert "The ScorePrior at site 'x' has no log" in out, out
    a = np.asarray(namespace["A"], np.float64)
    y = np.asarray(namespace["y"], np.float64)
    covariance = np.linalg.inv(np.eye(16) + a.T @ a / 0.3**2)
    mean = covariance @ (np.ones(16) + a.T @ y / 0.3**2)
    sd = np.sqrt(np.diag(covariance))
    for name in ("pnp", "annealed"):
        draws = np.asarray(namespace[name].get_samples()["x"], np.float64)
        assert np.max(np.abs(draws.mean(axis=0) - mean) / sd) < 0.5, name


# what a page's blocks must show, beyond running (the pages state these numbers)
CHECKS = {
    "README.md": _readme_shows_the_trap,
    "docs/index.md": _index_shows_the_trap_and_the_escape,
    "docs/numpyro.md": _numpyro_learned_prior_matches_the_closed_form,
}

PYTHON_PAGES = [p for p in PAGES if any(b.kind == "python" for b in code_blocks(p))]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_blocks_run(page, capsys, monkeypatch):
    name = page.relative_to(ROOT).as_posix()
    blocks = [b for b in code_blocks(page) if b.kind == "python"]
    sources = [b.code for b in blocks]
    for old, new in SIZES.get(name, []):
        assert any(old in s for s in sources), f"{name}: the SIZES rule {old!r} matches nothing"
        sources = [s.replace(old, new) for s in sources]
    monkeypatch.setenv("MPLBACKEND", "Agg")  # report.plot() & co. draw off screen
    namespace = {"__name__": "__docs__"}
    exec(compile(SETUP.get(name, ""), f"{name} (test setup)", "exec"), namespace)
    capsys.readouterr()
    for block, source in zip(blocks, sources, strict=True):
        # the line numbers of a traceback are the page's
        code = compile("\n" * block.line + source, name, "exec")
        exec(code, namespace)
    if name in CHECKS:
        CHECKS[name](namespace, capsys.readouterr().out)


def test_page_sizes_and_setups_name_real_pages():
    names = {p.relative_to(ROOT).as_posix() for p in PYTHON_PAGES}
    assert set(SETUP) | set(SIZES) | set(CHECKS) <= names


def _shell_commands(block: Block) -> list[list[str]]:
    commands = []
    for line in block.code.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            commands.append(shlex.split(line))
    return commands


def test_shell_blocks_name_real_commands():
    """The rule for ```bash blocks: `make TARGET` names a target of the Makefile (`make test` is
    this suite; `make demo` is tests/test_examples.py's demo test; `make docs` is this file);
    `robust-score ARGS` is run, and must answer (its commands' full runs are tested in
    tests/test_examples.py and tests/test_reproduce.py, `--help` here); `pip install` lines are
    not run: they change the environment the suite runs in (the Makefile's venv target runs the
    same install)."""
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    seen = set()
    for page in PAGES:
        for block in (b for b in code_blocks(page) if b.kind == "bash"):
            for command in _shell_commands(block):
                where = f"{block.page}:{block.line}: {shlex.join(command)}"
                seen.add(command[0])
                if command[0] == "make":
                    assert set(command[1:]) <= targets, where
                elif command[0] == "robust-score":
                    assert "--help" in command or "--version" in command, (
                        f"{where}: only --help / --version are run here; add a rule"
                    )
                    result = subprocess.run(
                        [sys.executable, "-m", "robust_score.cli", *command[1:]],
                        capture_output=True, text=True, timeout=120,
                    )  # fmt: skip
                    assert result.returncode == 0 and result.stdout.strip(), where
                elif command[:2] == ["pip", "install"]:
                    assert command[2:3] in (["-e"], ["robust-score"]), where
                else:
                    pytest.fail(f"{where}: no rule for this command")
    assert {"make", "pip", "robust-score"} <= seen, seen


# -- the code blocks of the docstrings (the API reference pages) ----------------------------
def docstring_blocks() -> list[Block]:
    """Every ``.. code::`` and ``::`` literal block in a docstring of the library (the API
    reference renders them; robust_score/paper/ is the command line's, not documented there)."""
    import ast
    import textwrap

    blocks = []
    for path in sorted((ROOT / "robust_score").rglob("*.py")):
        if "paper" in path.relative_to(ROOT / "robust_score").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            doc = ast.get_docstring(node, clean=True)
            if not doc or "::" not in doc:
                continue
            lines = doc.splitlines()
            first = node.body[0].lineno  # the docstring's first line, for the block's id
            for i, line in enumerate(lines):
                if not (line.strip().startswith(".. code::") or line.rstrip().endswith("::")):
                    continue
                body = []
                for following in lines[i + 1 :]:
                    if following.strip() and not following.startswith((" ", "\t")):
                        break
                    body.append(following)
                code = textwrap.dedent("\n".join(body)).rstrip()
                skipped = len(code) - len(code.lstrip("\n"))  # blank lines after the marker
                if code.strip():
                    page = path.relative_to(ROOT).as_posix()
                    # line: the block's first line in the file, so tracebacks show it
                    blocks.append(Block(page, first + i + 1 + skipped, "python", code.lstrip()))
    return blocks


DOCSTRING_BLOCKS = docstring_blocks()
# The names the docstrings' fragments take as given, small; sizes shrink as for the pages
DOCSTRING_SETUP = """
import jax, jax.numpy as jnp
import numpyro, numpyro.distributions as dist
from numpyro.infer import MCMC
import robust_score as rs
from robust_score.numpyro import constrained_score_to_unconstrained  # its own docstring's name

dim, key = 3, jax.random.key(0)
rng_key, position, initial_positions = key, jnp.zeros(dim), jnp.zeros((2, dim))
mean, var = jnp.arange(dim, dtype=jnp.float32), jnp.array([1.0, 2.0, 4.0])
score_fn = rs.scores.gaussian(mean, var)
logdensity_fn = rs.scores.gaussian_logdensity(mean, var)
schedule = rs.schedules.vp()
time_score_fn = score = rs.scores.gaussian(mean, var, schedule=schedule)
data = jax.random.normal(jax.random.key(1), (64, dim))

def model(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

model_args = (jnp.array([0.3, -0.2, 1.1]),)
"""
# ... and, for the diagnostics' docstrings, a run (and for TrapReport's methods, its report)
DOCSTRING_RUN = """
algorithm = rs.ula(score_fn, step_size=0.1)
tree = rs.run(algorithm, key, initial_positions, 300)
"""
DOCSTRING_REPORT = "report = rs.diagnostics.trap_report(tree, sampler=algorithm)\n"
DOCSTRING_SIZES = [
    ("num_steps=5000", "num_steps=50, hidden=(16, 16)"),
    ("num_warmup=1000", "num_warmup=50"),
    ("num_samples=1000", "num_samples=50"),
    ("num_steps=1000", "num_steps=300"),
    ("1000, (dim,)", "100, (dim,)"),
]


def test_docstring_code_blocks_are_found():
    # the parser sees the blocks it must (a change to the docstrings' markup shows here)
    pages = {b.page for b in DOCSTRING_BLOCKS}
    assert len(DOCSTRING_BLOCKS) >= 10, DOCSTRING_BLOCKS
    assert {"robust_score/kernels/ula.py", "robust_score/numpyro/transforms.py"} <= pages


@pytest.mark.parametrize(
    "block", DOCSTRING_BLOCKS, ids=[f"{b.page}:{b.line}" for b in DOCSTRING_BLOCKS]
)
def test_docstring_code_blocks_run(block, monkeypatch):
    """Each block after :data:`DOCSTRING_SETUP` (and :data:`DOCSTRING_RUN` for the
    diagnostics), in a fresh namespace: the blocks are independent examples."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    code = block.code
    for old, new in DOCSTRING_SIZES:
        code = code.replace(old, new)
    namespace = {"__name__": "__docs__"}
    setup = DOCSTRING_SETUP
    if "/diagnostics/" in block.page:
        setup += DOCSTRING_RUN + (DOCSTRING_REPORT if block.page.endswith("report.py") else "")
    exec(compile(setup, "docstring setup", "exec"), namespace)
    exec(compile("\n" * (block.line - 1) + code, block.page, "exec"), namespace)


# -- the example notebooks --------------------------------------------------------------------
def _outputs(notebook) -> str:
    """Everything a notebook printed or displayed, as text (images by their MIME type)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            for mime, value in output.get("data", {}).items():
                parts.append(mime if mime.startswith("image/") else str(value))
    return "\n".join(parts)


# what each notebook's page shows (asserted on the executed notebook)
NOTEBOOK_OUTPUTS = {
    "bring_your_network.md": [
        "Flax NNX ε-net, dpmpp_2m, 11 score evaluations per draw",
        "Equinox denoiser, dpmpp_2m, 11 score evaluations per draw",
        "image/png",
    ],
    "trap_diagnostics.md": ["trap report: FAIL", "trap report: OK", "image/png"],
    "reproduction.md": ["TRAPPED at", "MEMORIZED", "image/png"],
    # the learned score does not memorize at this size; the Thm 7 wells added on top of it hold
    # the training-start chains only, and with the paper's wider radius catch fresh chains too
    "digits_memorization.md": [
        "learned score, training images: memorization OK",
        "learned score, diffusion draws: memorization OK",
        "with wells, training images: memorization FAIL",
        "with wells, diffusion draws: memorization OK",
        "with wells, noise: memorization OK",
        "paper's radius 0.16 sqrt(d), diffusion draws: memorization WARN",
        "learned score: memorization OK",
        "with wells: memorization FAIL; held by training points: fail",
        "empirical score: memorization FAIL; held by training points: ok",
        "pulled towards the training set: fail",
        "trap report: OK",
        "trap report: FAIL",
        "image/png",
    ],
    # a ScorePrior model: NUTS refuses it; DPS's weighted guidance keeps every path finite
    # (unweighted, all 20 diverged); the plug-and-play run is restart-sensitive (warn) but
    # agrees with its kernel restarted from annealed-posterior draws (the RMSEs: below)
    "digits_inpainting.md": [
        "DensityUnknownError: The ScorePrior at site 'x' has no log density",
        "0 of 20 paths diverged",
        "restart sensitivity: WARN",
        "Langevin vs annealed: OK",
        "trap report: WARN: inconclusive",
        "image/png",
    ],
}


def _table_row(shown: str, name: str) -> tuple[float, float]:
    """(RMSE on the masked pixels, on the observed ones) of a row of digits_inpainting.md's
    table."""
    match = re.search(rf"^{name}\s+(\d+\.\d+)\s+\[[^\]]*\]\s+(\d+\.\d+)", shown, flags=re.M)
    assert match, f"digits_inpainting.md shows no table row {name!r}"
    return float(match[1]), float(match[2])


def _inpainting_recovers_the_digits(shown: str):
    """Every sampler fits the observed pixels within the noise (sd 0.1; measured 0.085, 0.086
    and 0.092, the mean training image 0.49) and fills the masked ones: annealed Langevin's
    posterior mean measured 0.503 there, DPS's 0.465, plug-and-play ULA's 0.529, the mean
    training image 0.559. A sampler that dropped the likelihood misses the observed pixels;
    one that dropped the prior's score leaves the masked pixels where the noise or the start
    put them."""
    baseline, _ = _table_row(shown, "mean training image")
    annealed, annealed_observed = _table_row(shown, "annealed Langevin")
    dps, dps_observed = _table_row(shown, "DPS")
    plug_and_play, plug_and_play_observed = _table_row(shown, "plug-and-play ULA")
    assert max(annealed_observed, plug_and_play_observed, dps_observed) < 0.1, shown
    assert max(annealed, dps) < min(0.54, baseline), shown
    assert plug_and_play < 0.6, shown


# numbers a notebook's page states, beyond the strings above (a check of its outputs' text)
NOTEBOOK_CHECKS = {"digits_inpainting.md": _inpainting_recovers_the_digits}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_example_notebook_executes(path, monkeypatch):
    """What `make docs` does to each notebook: myst-nb's reader, nbclient on the notebook's
    kernel, run in the page's folder (docs/examples), a cell that raises fails."""
    import nbclient
    from myst_nb.core.read import read_myst_markdown_notebook

    text = path.read_text()
    notebook = read_myst_markdown_notebook(text)
    assert notebook.cells, path
    # as docs/conf.py: ipykernel picks its inline backend (figures become image/png outputs)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,  # docs/conf.py's nb_execution_timeout
        kernel_name=notebook.metadata.kernelspec.name,
        resources={"metadata": {"path": str(DOCS / "examples")}},
    )
    client.execute()  # raises CellExecutionError on the first cell that fails
    shown = _outputs(notebook)
    for expected in NOTEBOOK_OUTPUTS.get(path.name, []):
        assert expected in shown, f"{path.name} does not show {expected!r}"
    if path.name in NOTEBOOK_CHECKS:
        NOTEBOOK_CHECKS[path.name](shown)


def test_every_notebook_is_a_page_and_its_outputs_are_asserted():
    index = (DOCS / "index.md").read_text()
    for path in NOTEBOOKS:
        assert f"examples/{path.stem}" in index, f"{path.name} is not in the landing page's toctree"
    assert set(NOTEBOOK_OUTPUTS) | set(NOTEBOOK_CHECKS) <= {p.name for p in NOTEBOOKS}


# -- the Sphinx site --------------------------------------------------------------------------
@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    """`make docs` with the notebooks not executed (each is, once, above), into a temporary
    directory: warnings are errors, so a broken reference, toctree or docstring fails."""
    out = tmp_path / "html"
    command = [
        sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
        "-D", "nb_execution_mode=off",
        "-d", str(tmp_path / "doctrees"), str(DOCS), str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-5000:])
    pages = ["index", "guide", "api", "reference/samplers", "reference/diagnostics"]
    for page in pages + [f"examples/{p.stem}" for p in NOTEBOOKS]:
        assert (out / f"{page}.html").is_file(), page
    # the API reference was generated from the docstrings
    samplers = (out / "reference" / "samplers.html").read_text()
    assert "robust_score.ula" in samplers or "rs.ula" in samplers
    # the notebooks' code is on their pages (their outputs: test_example_notebook_executes)
    trap_page = (out / "examples" / "trap_diagnostics.html").read_text()
    assert "trap_report" in trap_page
