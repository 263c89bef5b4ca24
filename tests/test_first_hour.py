"""A newcomer's first hour (issue 15): the command answers at once, the license is there,
mistakes get early errors in the user's terms, rs.run labels and numbers draws like ArviZ,
progress is visible where it helps and quiet elsewhere, ULA rejects non-finite moves."""

import importlib.metadata
import shutil
import subprocess
import sys
import time
import tomllib
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

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


def test_the_lazy_namespace_keeps_rs_run_the_function_and_the_import_system_as_it_was():
    # rs.run's module is robust_score.sampling: importing it first leaves `rs.run` the
    # function, with no import hook and no module class of the package's own
    code = (
        "import sys, types\n"
        "finders = list(sys.meta_path)\n"
        "import robust_score\n"
        "assert sys.meta_path == finders\n"
        "import robust_score.sampling\n"
        "import robust_score as rs\n"
        "assert callable(rs.run) and rs.run.__name__ == 'run', rs.run\n"
        "assert not hasattr(rs, 'sys')\n"
        "from robust_score import ula, scores\n"
        "assert type(rs) is types.ModuleType\n"
        "assert not any(type(f).__module__.startswith('robust_score') for f in sys.meta_path)\n"
        "print(sorted(set(rs.__all__) - set(dir(rs))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "first",
    [
        "import arviz_base\nimport robust_score as rs\nrs.run",  # the user's ArviZ first
        "import robust_score.sampling",  # a module of the package imports ArviZ first
        "import arviz_base\nimport robust_score.numpyro",  # NumPyro's submodules after ArviZ
    ],
)
def test_numpyro_loads_whole_whatever_imports_arviz_base_first(first):
    # arviz_base loads numpyro lazily, and a numpyro whose lazy load a submodule import sets
    # off leaves numpyro.infer.util (and .initialization, which from_numpyro reads) off
    # numpyro.infer: the package's modules import numpyro whole before ArviZ or a submodule
    code = (
        f"{first}\n"
        "from numpyro.infer import MCMC\n"
        "import numpyro.infer\n"
        "print(hasattr(numpyro.infer, 'util'), hasattr(numpyro.infer, 'initialization'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"


# -- 2. license and index metadata ------------------------------------------------------------
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


# -- 3. early errors in the user's terms ------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        (
            jnp.int32,
            r"must hold floating-point arrays \(float32, JAX's default float\), got dtype int32",
        ),
        (jnp.float16, r"has dtype float16: half precision .* float32 and float64 are"),
        (jnp.bfloat16, r"has dtype bfloat16: half precision .* float32 and float64 are"),
    ],
)
def test_positions_of_an_unsupported_dtype_are_refused_by_name(dtype, message):
    with pytest.raises(TypeError, match=r"`initial_positions` " + message):
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3), dtype), 5)


def test_numpy_arrays_are_taken_as_jax_takes_them():
    # NumPy's int64 is named as it is (JAX would call it int32); its float64 becomes float32
    # with x64 off, as jnp.asarray makes it
    with pytest.raises(TypeError, match=r"got dtype int64: pass `positions.astype"):
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), np.zeros((2, 3), np.int64), 5)
    tree = rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), np.zeros((2, 3)), 5)
    assert tree.posterior["x"].dtype == np.float32


def test_float32_positions_under_x64_are_refused_not_cast(x64):
    with pytest.raises(TypeError, match=r"JAX's default float is float64 \(jax_enable_x64 is on\)"):
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3), jnp.float32), 5)


def test_a_forgotten_chain_axis_is_named_with_the_fix():
    with pytest.raises(ValueError, match=r"read as 3 chains .* `positions\[None\]`") as info:
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros(3), 5)
    assert "distribution has dimension 3" in str(info.value)  # the score's own complaint
    # a score that takes scalars runs 3 chains of scalar positions, as before
    tree = rs.run(rs.ula(lambda x: -x, 0.1), jax.random.key(0), jnp.zeros(3), 5)
    assert tree.posterior["x"].shape == (3, 5)


@pytest.mark.parametrize("step_size", ["0.1", b"0.1", True, None])
def test_step_sizes_must_be_numbers(step_size):
    with pytest.raises(TypeError, match="`step_size` must be a positive number"):
        rs.ula(STANDARD, step_size)
    with pytest.raises(TypeError, match="`step_size` must be a positive number"):
        rs.annealed_langevin(lambda x, t: -x, VE, step_size=step_size or "x")
    with pytest.raises(TypeError, match="`snr` must be a positive number"):
        rs.AnnealedLangevin(VE, snr="0.16")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: rs.scores.gaussian(jnp.zeros(3), jnp.ones(4)),
            r"`cov` must match `mean` \(dimension 3\): a scalar \(isotropic\), 3 variances "
            r"\(the diagonal, shape \(3,\)\) or a 3 x 3 matrix; got shape \(4,\)\.",
        ),
        (
            lambda: rs.scores.gaussian(jnp.zeros(3), jnp.eye(2)),
            r"`cov` must match `mean` .* got shape \(2, 2\)",
        ),
        (
            lambda: rs.scores.gaussian(jnp.zeros((2, 3)), 1.0),
            r"`mean` must be a vector .* rs.scores.gaussian_mixture",
        ),
        (
            lambda: rs.scores.gaussian_mixture(jnp.ones(3), jnp.zeros((2, 3)), 1.0),
            r"`weights` must have one entry per component: `means` has 2 rows \(components\), "
            r"so shape \(2,\); got shape \(3,\)",
        ),
        (
            lambda: rs.scores.gaussian_mixture(jnp.ones(2), jnp.zeros(3), 1.0),
            r"`means` must be shaped \(num_components, dim\).* pass `means\[None\]`",
        ),
        (
            lambda: rs.scores.gaussian_mixture(jnp.ones(2), jnp.zeros((2, 3)), jnp.ones(4)),
            r"`covs` must match `means` \(2 components in dimension 3\).* got shape \(4,\)",
        ),
        (
            lambda: rs.scores.gaussian_mixture(jnp.ones(2), jnp.zeros((2, 3)), jnp.ones((2, 3, 2))),
            r"\(2, 3, 3\) \(a full matrix per component\); got shape \(2, 3, 2\)",
        ),
        (lambda: rs.scores.gaussian("zero", 1.0), r"`mean` must be an array of numbers"),
    ],
)
def test_exact_score_shapes_are_explained_in_the_users_terms(build, message):
    with pytest.raises((TypeError, ValueError), match=message) as info:
        build()
    assert "(1, 4)" not in str(info.value) and "(1, 3)" not in str(info.value)


def test_exact_scores_accept_every_documented_covariance_form():
    x = jnp.array([0.5, -1.0, 2.0])
    for cov in (2.0, jnp.full(3, 2.0), 2.0 * jnp.eye(3)):
        np.testing.assert_allclose(rs.scores.gaussian(jnp.zeros(3), cov)(x), -x / 2, rtol=1e-6)
    means = jnp.zeros((2, 3))
    for covs in (2.0, jnp.full(2, 2.0), jnp.full((2, 3), 2.0), 2.0 * jnp.stack([jnp.eye(3)] * 2)):
        score = rs.scores.gaussian_mixture(jnp.ones(2), means, covs)
        np.testing.assert_allclose(score(x), -x / 2, rtol=1e-6)


def test_annealed_langevin_has_defaults_in_one_place():
    settings = rs.AnnealedLangevin(VE)
    assert (settings.num_levels, settings.steps_per_level) == (100, 10)
    assert settings.snr == 0.16 and settings.step_size is None
    assert settings == rs.AnnealedLangevin(VE, 100, 10, snr=0.16)
    assert rs.AnnealedLangevin(VE, step_size=2e-5).snr is None
    time_score = rs.scores.gaussian(jnp.zeros(2), 1.0, schedule=VE)
    sampler = rs.annealed_langevin(time_score, VE)
    state, info = jax.jit(sampler.step)(jax.random.key(0), sampler.init(jnp.zeros(2)))
    assert int(info.num_score_evals) == settings.num_score_evals == 1001
    assert bool(jnp.all(jnp.isfinite(state.position)))


def test_readme_table_shows_real_arguments():
    rows = [
        line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `rs.")
    ]
    assert len(rows) >= 10
    for row in rows:
        assert "..." not in row and "…" not in row, row


# -- 4. rs.run labels and continued draws -----------------------------------------------------
def test_var_names_dims_and_coords_label_the_posterior():
    tree = rs.run(
        rs.ula(STANDARD, 0.1),
        jax.random.key(0),
        jnp.zeros((2, 3)),
        10,
        var_names="theta",
        dims={"theta": ["param"]},
        coords={"param": ["a", "b", "c"]},
    )
    assert list(tree.posterior.data_vars) == ["theta"]
    assert tree.posterior["theta"].dims == ("chain", "draw", "param")
    assert list(tree.posterior["param"].values) == ["a", "b", "c"]
    assert tree.sample_stats["diverging"].dims == ("chain", "draw")


def test_var_names_rename_the_arrays_of_a_pytree_position():
    def score(p):
        return {"mu": -p["mu"], "tau": -p["tau"]}

    starts = {"mu": jnp.zeros((2, 4)), "tau": jnp.ones(2)}
    tree = rs.run(rs.ula(score, 0.1), jax.random.key(0), starts, 5, var_names=["loc", "scale"])
    assert tree.posterior["loc"].shape == (2, 5, 4) and tree.posterior["scale"].shape == (2, 5)


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        ({"var_names": ["a", "b"]}, ValueError, r"`var_names` must give 1 distinct name"),
        ({"var_names": 3}, TypeError, r"`var_names` must be a variable name"),
        ({"var_names": "has space"}, TypeError, r"`var_names` must be a variable name"),
        ({"dims": {"theta": ["p"]}}, ValueError, r"`dims` names the variable 'theta'.*\['x'\]"),
        ({"dims": {"x": ["p", "q"]}}, ValueError, r"`dims\['x'\]` must name each of the 1 axes"),
        ({"dims": ["x"]}, TypeError, r"`dims` must be a dict"),
        (
            {"dims": {"x": ["p"]}, "coords": {"p": [1, 2]}},
            ValueError,
            r"`coords\['p'\]` has 2 values, but the axis 'p' has length 3",
        ),
        ({"coords": {"draw": [0]}}, ValueError, r"`coords` must not set 'draw'"),
    ],
)
def test_bad_labels_are_named(labels, error, message):
    with pytest.raises(error, match=message):
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3)), 5, **labels)


def test_continued_runs_number_their_draws_after_the_earlier_ones():
    algorithm = rs.ula(STANDARD, 0.1)
    starts = jax.random.normal(jax.random.key(3), (2, 3))
    whole = rs.run(algorithm, jax.random.key(4), starts, 60, thin=2)
    first, state = rs.run(algorithm, jax.random.key(4), starts, 20, thin=2, return_state=True)
    assert state.num_draws == 10
    second, state = rs.run(algorithm, jax.random.key(4), state, 40, thin=2, return_state=True)
    assert state.num_draws == 30 and state.step == 60
    assert list(first.posterior["draw"].values) == list(range(10))
    assert list(second.posterior["draw"].values) == list(range(10, 30))
    joined = xr.concat([first.posterior.to_dataset(), second.posterior.to_dataset()], dim="draw")
    xr.testing.assert_equal(joined["x"], whole.posterior["x"])
    stats = xr.concat(
        [first.sample_stats.to_dataset(), second.sample_stats.to_dataset()], dim="draw"
    )
    assert list(stats["draw"].values) == list(range(30))


# -- 5. progress ------------------------------------------------------------------------------
def test_progress_bar_shows_warmup_then_sampling_and_divergences(capsys):
    rs.run(
        rs.ula(STANDARD, 0.1),
        jax.random.key(0),
        jnp.zeros((2, 3)),
        40,
        num_warmup=10,
        progress_bar=True,
    )
    err = capsys.readouterr().err
    assert "warmup" in err and "sampling" in err and "50/50" in err
    assert "divergent=0" in err
    with pytest.warns(rs.DivergenceWarning):
        rs.run(rs.ula(STANDARD, 3.0), jax.random.key(0), jnp.ones((2, 3)), 100, progress_bar=True)
    err = capsys.readouterr().err
    assert "warmup" not in err
    last = err.rsplit("divergent=", 1)[1]
    assert int(last.split("]")[0].strip()) > 0


def test_dsm_training_is_quiet_by_default_and_rate_limited_when_asked(capsys):
    from robust_score.learn import dsm

    data = jax.random.normal(jax.random.key(0), (64, 2))
    rs.learn.train_dsm(
        data, rs.schedules.vp(), rng_key=jax.random.key(1), num_steps=4, batch_size=8,
        hidden=(8,),
    )  # fmt: skip
    assert capsys.readouterr().err == ""
    bar = dsm._progress(10)
    assert bar.mininterval >= 1.0
    bar.close()


# -- 7. one ULA divergence policy -------------------------------------------------------------
def test_ula_rejects_a_non_finite_move_and_flags_it():
    def score(x):  # NaN past x0 > 1: every move from there is non-finite
        return jnp.where(x[0] > 1.0, jnp.nan, -x)

    kernel = rs.ula.build_kernel()
    stuck = jnp.array([2.0, 0.0, 0.0])
    state, info = kernel(jax.random.key(0), rs.ula.init(stuck, lambda x: -x), score, 0.1)
    assert bool(info.is_divergent)
    np.testing.assert_array_equal(state.position, stuck)  # the chain stays where it was
    with pytest.warns(rs.DivergenceWarning):
        tree = rs.run(rs.ula(score, 0.5), jax.random.key(0), jnp.zeros((8, 3)), 100)
    x, diverging = tree.posterior["x"].values, tree.sample_stats["diverging"].values
    assert np.isfinite(x).all() and diverging.any()
    # a flagged draw repeats the previous one
    chain, draw = np.argwhere(diverging[:, 1:])[0]
    np.testing.assert_array_equal(x[chain, draw + 1], x[chain, draw])


def test_a_healthy_ula_run_is_unchanged_by_the_policy():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3)), 20)
    assert not tree.sample_stats["diverging"].values.any()


def test_a_network_written_for_batches_is_told_the_one_position_convention():
    weights = jnp.eye(3)

    def batched(xs):  # a network for (batch, 3) inputs, given as the score
        return jax.vmap(lambda x: -(x @ weights))(xs)

    told = r"(?s)one position \(shaped \(3,\)\).*net\(x\[None\]\)\[0\]"
    with pytest.raises(TypeError, match=told):
        rs.run(rs.ula(batched, 0.1), jax.random.key(0), jnp.zeros((4, 3)), 5)
    # starts laid out (dim, chains): the score meets a position shaped (4,) and says so
    with pytest.raises(TypeError, match=r"(?s)shaped \(4,\).*\(chains, \*position shape\)"):
        rs.run(rs.ula(lambda x: -(weights @ x), 0.1), jax.random.key(0), jnp.zeros((3, 4)), 5)
