"""rs.run: chains, thinning, determinism, DataTree output, divergences, compile-once, errors."""

import warnings

import arviz_stats
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import robust_score as rs

STANDARD = rs.scores.gaussian(jnp.zeros(3), 1.0)


def test_returns_datatree_arviz_reads():
    tree = rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((4, 3)), 200)
    assert isinstance(tree, xr.DataTree)
    assert tree.posterior["x"].dims == ("chain", "draw", "x_dim_0")
    assert tree.posterior["x"].shape == (4, 200, 3)
    assert tree.sample_stats["diverging"].shape == (4, 200)
    assert tree.posterior.attrs["created_by"] == "robust_score.run"
    rhat = arviz_stats.rhat(tree)
    ess = arviz_stats.ess(tree)
    assert rhat["x"].shape == (3,) and ess["x"].shape == (3,)
    summary = arviz_stats.summary(tree)
    assert len(summary) == 3


def test_same_key_same_draws_and_chains_do_not_depend_on_their_neighbors():
    algorithm = rs.ula(STANDARD, 0.1)
    starts = jax.random.normal(jax.random.key(1), (4, 3))
    first = rs.run(algorithm, jax.random.key(5), starts, 50).posterior["x"].values
    again = rs.run(algorithm, jax.random.key(5), starts, 50).posterior["x"].values
    other = rs.run(algorithm, jax.random.key(6), starts, 50).posterior["x"].values
    two = rs.run(algorithm, jax.random.key(5), starts[:2], 50).posterior["x"].values
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # same random numbers; XLA may vectorize a batch of 2 differently from 4 (rounding only)
    np.testing.assert_allclose(first[:2], two, rtol=1e-4, atol=1e-5)


def test_thinning_keeps_every_thin_th_step_and_warmup_is_discarded():
    algorithm = rs.mala(lambda x: -0.5 * jnp.sum(x**2), 0.5)
    starts = jnp.zeros((3, 3))
    full = rs.run(algorithm, jax.random.key(2), starts, 60, num_warmup=10)
    thinned = rs.run(algorithm, jax.random.key(2), starts, 60, num_warmup=10, thin=4)
    assert thinned.posterior["x"].shape == (3, 15, 3)
    np.testing.assert_array_equal(
        thinned.posterior["x"].values, full.posterior["x"].values[:, 3::4]
    )
    # a thinning block reports its mean acceptance, not only the kept step's
    blocks = full.sample_stats["acceptance_rate"].values.reshape(3, 15, 4).mean(axis=-1)
    np.testing.assert_allclose(thinned.sample_stats["acceptance_rate"].values, blocks, rtol=1e-5)
    # warm-up steps shift the draws: the post-warm-up draws equal a longer run's tail
    long = rs.run(algorithm, jax.random.key(2), starts, 70)
    np.testing.assert_array_equal(full.posterior["x"].values, long.posterior["x"].values[:, 10:])


def test_pytree_positions_become_one_variable_per_site():
    def logdensity(p):
        return -0.5 * (jnp.sum(p["mu"] ** 2) + p["tau"] ** 2)

    starts = {"mu": jnp.zeros((2, 4)), "tau": jnp.ones(2)}
    tree = rs.run(rs.mala(logdensity, 0.5), jax.random.key(0), starts, 30)
    assert set(tree.posterior.data_vars) == {"mu", "tau"}
    assert tree.posterior["mu"].shape == (2, 30, 4) and tree.posterior["tau"].shape == (2, 30)
    assert tree.sample_stats["acceptance_rate"].shape == (2, 30)


def test_float64_runs_stay_float64(x64):
    tree = rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3), jnp.float64), 10)
    assert tree.posterior["x"].dtype == np.float64


def test_blackjax_native_algorithms_run_too():
    nuts = blackjax.nuts(lambda x: -0.5 * jnp.sum(x**2), 0.5, jnp.ones(3))
    tree = rs.run(nuts, jax.random.key(0), jnp.zeros((2, 3)), 20)
    assert {"diverging", "acceptance_rate", "num_integration_steps"} <= set(
        tree.sample_stats.data_vars
    )


def test_non_finite_runs_are_flagged_divergent_with_a_warning():
    # step 3 on N(0, I): x' = -2x + noise, which overflows to inf and then NaN
    with pytest.warns(rs.DivergenceWarning, match=r"of 800 draws \(4 of 4 chains\)"):
        tree = rs.run(rs.ula(STANDARD, 3.0), jax.random.key(0), jnp.ones((4, 3)), 200)
    diverging = tree.sample_stats["diverging"].values
    x = tree.posterior["x"].values
    assert diverging.any()
    # every non-finite draw carries the flag: no silent NaN
    assert diverging[~np.isfinite(x).all(axis=-1)].all()


def test_score_nan_in_a_region_is_flagged():
    def score(x):  # NaN once a chain wanders past x0 > 1
        return jnp.where(x[0] > 1.0, jnp.nan, -x)

    with pytest.warns(rs.DivergenceWarning):
        tree = rs.run(rs.ula(score, 0.5), jax.random.key(0), jnp.zeros((8, 3)), 100)
    assert int(tree.sample_stats["diverging"].sum()) > 0


def test_a_healthy_run_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 3)), 10)


def test_repeated_calls_reuse_the_compiled_program():
    traces = []

    def score(x):
        traces.append(1)  # runs once per trace, never at run time
        return -x

    algorithm = rs.ula(score, 0.1)
    rs.run(algorithm, jax.random.key(0), jnp.zeros((2, 3)), 20)
    after_first = len(traces)
    rs.run(algorithm, jax.random.key(1), jnp.ones((2, 3)), 20)
    assert len(traces) == after_first


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"initial_positions": jnp.array([[0.0, jnp.inf, 0.0]])},
            ValueError,
            "`initial_positions` has 1 non-finite",
        ),
        ({"initial_positions": jnp.array(0.0)}, ValueError, "leading chain axis"),
        (
            {"initial_positions": {"a": jnp.zeros((2, 3)), "b": jnp.zeros(3)}},
            ValueError,
            "share the leading chain axis",
        ),
        ({"initial_positions": jnp.zeros((2, 3), jnp.int32)}, TypeError, "floating-point"),
        ({"num_steps": 0}, ValueError, "`num_steps` must be an integer >= 1"),
        ({"num_steps": 2.5}, ValueError, "`num_steps`"),
        ({"thin": 0}, ValueError, "`thin`"),
        ({"thin": 20}, ValueError, "must not exceed `num_steps`"),
        ({"num_warmup": -1}, ValueError, "`num_warmup`"),
        ({"rng_key": 3}, ValueError, "`rng_key` must be a JAX PRNG key"),
        ({"algorithm": STANDARD}, TypeError, "`algorithm` must be a blackjax.SamplingAlgorithm"),
    ],
)
def test_bad_run_arguments(kwargs, error, message):
    arguments = {
        "algorithm": rs.ula(STANDARD, 0.1),
        "rng_key": jax.random.key(0),
        "initial_positions": jnp.zeros((2, 3)),
        "num_steps": 10,
    }
    arguments.update(kwargs)
    extra = {k: arguments.pop(k) for k in ("thin", "num_warmup") if k in arguments}
    with pytest.raises(error, match=message):
        rs.run(**arguments, **extra)


def test_mis_shaped_initial_positions_name_the_score_problem():
    with pytest.raises(TypeError, match="`score_fn` could not be evaluated.*dimension 3"):
        rs.run(rs.ula(STANDARD, 0.1), jax.random.key(0), jnp.zeros((2, 5)), 10)


def test_a_run_resumed_from_its_state_continues_the_same_draws():
    algorithm = rs.mala(lambda x: -0.5 * jnp.sum(x**2), 0.5)
    starts = jax.random.normal(jax.random.key(3), (3, 3))
    whole = rs.run(algorithm, jax.random.key(4), starts, 60, num_warmup=10)
    first, state = rs.run(
        algorithm, jax.random.key(4), starts, 20, num_warmup=10, return_state=True
    )
    assert isinstance(state, rs.RunState) and state.step == 30
    second = rs.run(algorithm, jax.random.key(4), state, 40)
    joined = np.concatenate([first.posterior["x"].values, second.posterior["x"].values], axis=1)
    np.testing.assert_array_equal(joined, whole.posterior["x"].values)


SHARDED_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
import robust_score as rs
assert jax.device_count() == 4, jax.devices()
algorithm = rs.ula(rs.scores.gaussian(jnp.zeros(3), 1.0), 0.1)
starts = jax.random.normal(jax.random.key(0), (8, 3))
single = rs.run(algorithm, jax.random.key(1), starts, 50, thin=5)
positions, _, state = rs.sample_chains(
    algorithm, jax.random.key(1), starts, 50, thin=5, devices=jax.devices()
)
assert len(positions.sharding.device_set) == 4, positions.sharding
expected = single.posterior["x"].values
np.testing.assert_allclose(np.asarray(positions), expected, rtol=1e-5, atol=1e-6)
sharded = rs.run(algorithm, jax.random.key(1), starts, 50, thin=5, devices=jax.devices())
np.testing.assert_allclose(sharded.posterior["x"].values, expected, rtol=1e-5, atol=1e-6)
try:
    rs.run(algorithm, jax.random.key(1), starts[:6], 10, devices=jax.devices())
except ValueError as err:
    assert "multiple of the number of devices" in str(err)
else:
    raise AssertionError("6 chains on 4 devices should be refused")
print("sharded ok")
"""


def test_chains_shard_over_devices_with_the_same_draws():
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    result = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded ok" in result.stdout


def test_run_checks_convergence_unless_told_not_to():
    # chains that barely move from starts 5 apart: R̂ far above 1.01, warned about by default
    starts = jnp.arange(4.0)[:, None] * jnp.ones((4, 2)) * 5
    slow = rs.ula(lambda x: -1e-4 * x, 1e-3)
    with pytest.warns(rs.run_health.ConvergenceWarning, match="R̂ is"):
        rs.run(slow, jax.random.key(0), starts, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rs.run_health.ConvergenceWarning)
        rs.run(slow, jax.random.key(0), starts, 200, check_convergence=False)
    with pytest.raises(TypeError, match="check_convergence"):
        rs.run(slow, jax.random.key(0), starts, 10, check_convergence="no")
