"""rs.numpyro.ScoreLangevin as a NumPyro kernel: agreement with NUTS, the score override, the
MCMCKernel protocol (chain methods, extra fields, re-runs, ArviZ) and input errors.

Monte-Carlo bounds: a posterior mean or sd from autocorrelated draws has standard error
sd / sqrt(ESS) (sd: sd * sqrt((kurtosis - 1) / (4 ESS))), ESS from NumPyro's estimator. Two
runs agree when every difference stays under 4.5 combined standard errors (10 sites x 2
statistics: a false alarm has probability ~1e-4 per comparison set; the keys are fixed anyway).
"""

import os
import subprocess
import sys
import textwrap

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC, NUTS

import robust_score as rs

Z_BOUND = 4.5
FIELDS = ("diverging", "accept_prob", "step_size")

# -- models ---------------------------------------------------------------------------------
SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(sigma, y=None):
    """Non-centerd eight schools: 10 latent dimensions."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def _logistic_data(n=200, p=9):
    key_x, key_beta, key_y = jax.random.split(jax.random.key(2026), 3)
    x = jax.random.normal(key_x, (n, p))
    beta = 0.7 * jax.random.normal(key_beta, (p,))
    y = jax.random.bernoulli(key_y, jax.nn.sigmoid(0.3 + x @ beta)).astype(jnp.float32)
    return np.asarray(x), np.asarray(y)


LOGISTIC_X, LOGISTIC_Y = _logistic_data()


def logistic_regression(x, y=None):
    """Intercept + 9 coefficients: 10 latent dimensions."""
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 2.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("obs", dist.Bernoulli(logits=alpha + x @ beta), obs=y)


def gaussian_model(dim=3):
    numpyro.sample("x", dist.Normal(jnp.zeros(dim), 1.0).to_event(1))


MODELS = {
    # log(tau) rather than tau: its tails are light, so its sd has a usable standard error
    "eight_schools": (
        eight_schools,
        (SCHOOLS_SIGMA,),
        {"y": SCHOOLS_Y},
        lambda s: [s["mu"][..., None], jnp.log(s["tau"])[..., None], s["theta_tilde"]],
    ),
    "logistic": (
        logistic_regression,
        (LOGISTIC_X,),
        {"y": LOGISTIC_Y},
        lambda s: [s["alpha"][..., None], s["beta"]],
    ),
}


def _draws(mcmc, name):
    """(chain, draw, 10) float64 matrix of the sites compared."""
    columns = MODELS[name][3](mcmc.get_samples(group_by_chain=True))
    return np.asarray(jnp.concatenate(columns, axis=-1), np.float64)


def _summary(draws):
    """Per column: mean, sd, and their Monte-Carlo standard errors."""
    ess = np.asarray(effective_sample_size(draws))
    flat = draws.reshape(-1, draws.shape[-1])
    mean, sd = flat.mean(0), flat.std(0)
    kurtosis = ((flat - mean) ** 4).mean(0) / sd**4
    return mean, sd, sd / np.sqrt(ess), sd * np.sqrt((kurtosis - 1) / (4 * ess))


def _run(kernel, name, *, num_warmup, num_samples, thinning=1, key=0, extra_fields=()):
    _, args, kwargs, _ = MODELS[name]
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thinning=thinning,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(key), *args, extra_fields=extra_fields, **kwargs)
    return mcmc


@pytest.fixture(scope="module")
def nuts_reference():
    cache = {}

    def get(name):
        if name not in cache:
            mcmc = _run(NUTS(MODELS[name][0]), name, num_warmup=500, num_samples=1000, key=1)
            cache[name] = _summary(_draws(mcmc, name))
        return cache[name]

    return get


# -- agreement with NUTS ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["eight_schools", "logistic"])
def test_mala_matches_nuts(name, nuts_reference):
    ref_mean, ref_sd, ref_mean_se, ref_sd_se = nuts_reference(name)
    kernel = rs.numpyro.ScoreLangevin(MODELS[name][0], adjust=True)
    mcmc = _run(kernel, name, num_warmup=1000, num_samples=10_000, thinning=5, extra_fields=FIELDS)
    mean, sd, mean_se, sd_se = _summary(_draws(mcmc, name))
    z_mean = (mean - ref_mean) / np.hypot(mean_se, ref_mean_se)
    z_sd = (sd - ref_sd) / np.hypot(sd_se, ref_sd_se)
    assert np.abs(z_mean).max() < Z_BOUND, f"means off NUTS: z = {np.round(z_mean, 1)}"
    assert np.abs(z_sd).max() < Z_BOUND, f"sds off NUTS: z = {np.round(z_sd, 1)}"
    extra = mcmc.get_extra_fields()
    assert 0.45 < float(extra["accept_prob"].mean()) < 0.75  # dual averaging hit 0.574
    # MALA's step is unstable in eight schools' τ tail (log ratios below -1000 on 0.8 % of
    # moves, benchmarks/hard_geometry.py): flagged, but too few to warn about; none elsewhere
    divergent = float(extra["diverging"].mean())
    assert divergent < (0.03 if name == "eight_schools" else 1e-9), divergent
    assert rs.numpyro.check_run(mcmc) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eight_schools", "logistic"])
def test_ula_matches_nuts_up_to_its_step_size_bias(name, nuts_reference):
    """ULA with the exact score is biased by O(h). Stated bound, in posterior sds: mean and
    sd within 4.5 standard errors plus 2 h lambda_max, lambda_max the largest eigenvalue of
    M⁻¹ P, P the posterior precision (estimated from the ULA draws) and M⁻¹ the chain's
    adapted inverse mass (the default warm-up adapts one): h lambda_max is the step in the
    whitened coordinates the move works in, and a Gaussian's sd is inflated by
    (1 - h lambda / 2)^(-1/2) - 1 ~ h lambda / 4 there. The worst chain sets the bound.
    Measured at target_accept_prob=0.95 with the default (dense) mass: eight schools
    2 h lambda_max = 0.36, worst bias 0.17 sd (a mean; the funnel is where ULA is least
    accurate); logistic 2 h lambda_max = 0.37, worst bias 0.05 sd. Checked once by hand: with
    the move's noise left unpreconditioned (the drift preconditioned, so the chain's law is
    wrong) the logistic case fails, means off NUTS by up to 4.1 sds."""
    ref_mean, ref_sd, ref_mean_se, ref_sd_se = nuts_reference(name)
    kernel = rs.numpyro.ScoreLangevin(MODELS[name][0], target_accept_prob=0.95)
    mcmc = _run(kernel, name, num_warmup=1000, num_samples=10_000, thinning=5, extra_fields=FIELDS)
    draws = _draws(mcmc, name)
    mean, sd, mean_se, sd_se = _summary(draws)
    # the compared columns are the unconstrained latent sites in ravel order (keys sorted)
    precision = np.linalg.inv(np.cov(draws.reshape(-1, draws.shape[-1]), rowvar=False))
    step_sizes = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["step_size"], np.float64)
    masses = np.asarray(mcmc.last_state.adapt_state.inverse_mass_matrix, np.float64)
    assert masses.shape[0] == step_sizes.shape[0] == 4  # one adapted mass per chain
    bias = 0.0
    for step_size, inverse_mass in zip(step_sizes.mean(1), masses, strict=True):
        if inverse_mass.ndim == 1:
            inverse_mass = np.diag(inverse_mass)
        factor = np.linalg.cholesky(inverse_mass)  # L L^T = M⁻¹: L^T P L has M⁻¹ P's spectrum
        curvature = np.linalg.eigvalsh(factor.T @ precision @ factor).max()
        bias = max(bias, 2 * step_size * curvature)
    assert bias < 0.6, f"the adapted step is not small: 2 h lambda_max = {bias:.2f}"
    mean_bound = Z_BOUND * np.hypot(mean_se, ref_mean_se) + bias * ref_sd
    sd_bound = Z_BOUND * np.hypot(sd_se, ref_sd_se) + bias * ref_sd
    assert np.all(np.abs(mean - ref_mean) < mean_bound), (
        f"means off NUTS by {np.round((mean - ref_mean) / ref_sd, 3)} sds (2 h lambda = {bias:.3f})"
    )
    assert np.all(np.abs(sd - ref_sd) < sd_bound), (
        f"sds off NUTS by {np.round(sd / ref_sd - 1, 3)} (relative; 2 h lambda = {bias:.3f})"
    )
    # moves whose drift changes by more than the move (eight schools' τ tail): measured
    # 0.08 % at this target (benchmarks/hard_geometry.py); none on the logistic regression
    divergent = float(mcmc.get_extra_fields()["diverging"].mean())
    assert divergent < (0.01 if name == "eight_schools" else 1e-9), divergent


# -- the score override ------------------------------------------------------------------------
def _gaussian_mcmc(kernel, num_samples=4000, num_warmup=0, key=0):
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(key), extra_fields=FIELDS)
    return mcmc


def test_a_shifted_score_shifts_ula_by_the_shift():
    """Model N(0, I); score -(x - m). ULA follows the score: its stationary law is exactly
    N(m, I / (1 - h/2)) (a linear drift), so the draws' mean is m, not 0."""
    shift = jnp.array([1.5, -2.0, 0.5])
    h = 0.2
    kernel = rs.numpyro.ScoreLangevin(
        gaussian_model,
        score_fn=lambda z: {"x": -(z["x"] - shift)},
        step_size=h,
        adapt_step_size=False,
    )
    mcmc = _gaussian_mcmc(kernel, num_warmup=200)
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"], np.float64)
    ess = np.asarray(effective_sample_size(x))
    variance = 1.0 / (1.0 - h / 2)
    error = x.reshape(-1, 3).mean(0) - np.asarray(shift)
    assert np.all(np.abs(error) < Z_BOUND * np.sqrt(variance / ess)), error
    var_error = x.reshape(-1, 3).var(0) / variance - 1
    assert np.all(np.abs(var_error) < Z_BOUND * np.sqrt(2 / ess)), var_error


def test_mala_uses_the_score_only_to_propose():
    """The same shifted score under MALA: the chain still targets the model's N(0, I), and the
    score's disagreement with the density shows as a lower acceptance rate."""
    shift = jnp.array([1.5, -2.0, 0.5])
    rates = {}
    for label, score_fn in (("exact", None), ("shifted", lambda z: {"x": -(z["x"] - shift)})):
        kernel = rs.numpyro.ScoreLangevin(
            gaussian_model, score_fn=score_fn, adjust=True, step_size=0.5, adapt_step_size=False
        )
        mcmc = _gaussian_mcmc(kernel, num_samples=3000, num_warmup=200, key=1)
        x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"], np.float64)
        ess = np.asarray(effective_sample_size(x))
        assert np.all(np.abs(x.reshape(-1, 3).mean(0)) < Z_BOUND / np.sqrt(ess)), label
        rates[label] = float(mcmc.get_extra_fields()["accept_prob"].mean())
    assert rates["shifted"] < rates["exact"] - 0.1, rates


def _constrained_model():
    a = numpyro.sample("a", dist.Gamma(2.0, 1.0))
    numpyro.sample("b", dist.Uniform(0.0, a))  # support depends on a
    numpyro.sample("w", dist.Dirichlet(jnp.array([2.0, 3.0, 4.0])))  # 3 values, 2 coordinates
    numpyro.sample("s", dist.HalfNormal(2.0).expand([2]).to_event(1))
    numpyro.sample("obs", dist.Normal(a, 1.0), obs=1.3)


def test_constrained_score_to_unconstrained_matches_numpyros_potential():
    """The log density's gradient in constrained space, moved by the helper, equals
    -grad of NumPyro's unconstrained potential (which has the log-det-Jacobian built in)."""
    model = _constrained_model

    def constrained_logdensity(x):
        return numpyro.infer.util.log_density(model, (), {}, x)[0]

    score_fn = rs.numpyro.constrained_score_to_unconstrained(
        model, jax.grad(constrained_logdensity)
    )
    exact_fn = jax.grad(lambda u: -numpyro.infer.util.potential_energy(model, (), {}, u))
    both = jax.jit(lambda u: (score_fn(u), exact_fn(u)))
    shapes = {"a": (), "b": (), "w": (2,), "s": (2,)}  # unconstrained: w lives on R^2
    for key in jax.random.split(jax.random.key(4), 3):
        keys = dict(zip(shapes, jax.random.split(key, len(shapes)), strict=True))
        u = {site: jax.random.normal(keys[site], shape) for site, shape in shapes.items()}
        got, expected = both(u)
        assert set(got) == set(shapes)
        for site in shapes:
            np.testing.assert_allclose(got[site], expected[site], rtol=2e-4, atol=2e-5)


def test_constrained_score_to_unconstrained_names_a_wrong_score():
    score_fn = rs.numpyro.constrained_score_to_unconstrained(
        _constrained_model, lambda x: {"a": x["a"]}
    )
    u = {"a": 0.0, "b": 0.0, "w": jnp.zeros(2), "s": jnp.zeros(2)}
    with pytest.raises(ValueError, match=r"latent sites \['a', 'b', 's', 'w'\], got \['a'\]"):
        score_fn(u)


# -- the MCMCKernel protocol ---------------------------------------------------------------
_PARALLEL_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, numpyro, numpyro.distributions as dist
    from numpyro.infer import MCMC
    import robust_score as rs

    assert jax.local_device_count() == 2, jax.local_device_count()

    def model():
        numpyro.sample("x", dist.Normal(np.array([1.0, -2.0]), 1.0).to_event(1))
        numpyro.sample("s", dist.LogNormal(0.0, 0.5))

    mcmc = MCMC(rs.numpyro.ScoreLangevin(model, adjust=True), num_warmup=50, num_samples=30,
                num_chains=2, chain_method="parallel", progress_bar=False)
    mcmc.run(jax.random.key(0), extra_fields=("diverging", "accept_prob", "step_size"))
    samples = mcmc.get_samples(group_by_chain=True)
    np.savez(__import__("sys").argv[1], x=samples["x"], s=samples["s"],
             step_size=mcmc.get_extra_fields(group_by_chain=True)["step_size"])
    """
)


def _two_site_model():
    numpyro.sample("x", dist.Normal(jnp.array([1.0, -2.0]), 1.0).to_event(1))
    numpyro.sample("s", dist.LogNormal(0.0, 0.5))


def test_chain_methods_agree_and_same_key_same_draws(tmp_path):
    draws = {}
    for method in ("sequential", "vectorized"):
        mcmc = MCMC(
            rs.numpyro.ScoreLangevin(_two_site_model, adjust=True),
            num_warmup=50,
            num_samples=30,
            num_chains=2,
            chain_method=method,
            progress_bar=False,
        )
        mcmc.run(jax.random.key(0), extra_fields=FIELDS)
        samples = mcmc.get_samples(group_by_chain=True)
        extra = mcmc.get_extra_fields(group_by_chain=True)
        assert samples["x"].shape == (2, 30, 2) and samples["s"].shape == (2, 30)
        assert all(extra[field].shape == (2, 30) for field in FIELDS)
        draws[method] = samples
    mcmc.run(jax.random.key(0), extra_fields=FIELDS)  # vectorized again, same key
    np.testing.assert_array_equal(
        mcmc.get_samples(group_by_chain=True)["x"], draws["vectorized"]["x"]
    )
    np.testing.assert_allclose(draws["sequential"]["x"], draws["vectorized"]["x"], rtol=1e-5)

    out = tmp_path / "parallel.npz"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run(
        [sys.executable, "-c", _PARALLEL_SCRIPT, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parallel = np.load(out)
    assert parallel["x"].shape == (2, 30, 2) and parallel["step_size"].shape == (2, 30)
    np.testing.assert_allclose(parallel["x"], draws["vectorized"]["x"], rtol=1e-5)


def test_protocol_fields_summary_rerun_and_arviz(capsys):
    kernel = rs.numpyro.ScoreLangevin(eight_schools, adjust=True)
    mcmc = MCMC(
        kernel,
        num_warmup=200,
        num_samples=100,
        num_chains=2,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.warmup(jax.random.key(0), SCHOOLS_SIGMA, y=SCHOOLS_Y)
    tuned = np.asarray(mcmc.post_warmup_state.adapt_state.step_size)
    mcmc.run(jax.random.key(1), SCHOOLS_SIGMA, y=SCHOOLS_Y, extra_fields=FIELDS)

    samples = mcmc.get_samples()
    assert set(samples) == {"mu", "tau", "theta_tilde", "theta"}  # deterministic site too
    assert samples["theta"].shape == (200, 8) and bool((samples["tau"] > 0).all())
    extra = mcmc.get_extra_fields(group_by_chain=True)
    # after warm-up the step size is frozen at the tuned one
    np.testing.assert_allclose(extra["step_size"], np.broadcast_to(tuned[:, None], (2, 100)))
    assert int(mcmc.last_state.i[0]) == 300

    # continue from the last state: no new warm-up, same step size
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(mcmc.post_warmup_state.rng_key, SCHOOLS_SIGMA, y=SCHOOLS_Y, extra_fields=FIELDS)
    np.testing.assert_allclose(mcmc.get_extra_fields(group_by_chain=True)["step_size"][:, 0], tuned)
    assert int(mcmc.last_state.i[0]) == 400

    mcmc.print_summary()
    out = capsys.readouterr().out
    assert "theta_tilde[7]" in out and "Number of divergences: 0" in out

    one_chain = jax.tree.map(lambda leaf: leaf[0], mcmc.last_state)
    assert kernel.get_diagnostics_str(one_chain).startswith("step size ")
    assert kernel.model is eight_schools

    tree = az.from_numpyro(mcmc)
    assert tree["posterior"]["theta_tilde"].shape == (2, 100, 8)
    stats = tree["sample_stats"]
    assert {"diverging", "acceptance_rate", "step_size"} <= set(stats.data_vars)
    assert stats["diverging"].shape == (2, 100) and stats["diverging"].dtype == bool
    assert 0.3 < float(stats["acceptance_rate"].mean()) < 0.9


def test_potential_fn_with_array_positions():
    """Without a model: a potential over a plain array, init_params required."""

    def potential(x):
        return 0.5 * jnp.sum((x - 3.0) ** 2)

    mcmc = MCMC(
        rs.numpyro.ScoreLangevin(potential_fn=potential, adjust=True),
        num_warmup=300,
        num_samples=1000,
        num_chains=2,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), init_params=jnp.zeros((2, 4)))
    x = np.asarray(mcmc.get_samples())
    assert x.shape == (2000, 4)
    assert np.abs(x.mean(0) - 3.0).max() < 0.3  # ESS >~ 300 per coordinate: se < 0.06
    assert mcmc.sampler.model is None


# -- bad input -------------------------------------------------------------------------------
def _run_gaussian(kernel, **run_kwargs):
    mcmc = MCMC(kernel, num_warmup=5, num_samples=5, progress_bar=False)
    mcmc.run(jax.random.key(0), **run_kwargs)
    return mcmc


def test_a_score_fn_over_the_wrong_sites_is_named():
    kernel = rs.numpyro.ScoreLangevin(
        eight_schools, score_fn=lambda z: {"mu": z["mu"], "theta": z["tau"]}
    )
    with pytest.raises(
        ValueError, match=r"latent sites \['mu', 'tau', 'theta_tilde'\].*got \['mu', 'theta'\]"
    ):
        _run(kernel, "eight_schools", num_warmup=5, num_samples=5)

    wrong_shape = rs.numpyro.ScoreLangevin(gaussian_model, score_fn=lambda z: {"x": z["x"][:2]})
    with pytest.raises(ValueError, match=r"shape \(2,\) at site 'x'; expected \(3,\)"):
        _run_gaussian(wrong_shape)

    failing = rs.numpyro.ScoreLangevin(gaussian_model, score_fn=lambda z: {"x": z["y"]})
    with pytest.raises(
        TypeError, match=r"`score_fn` failed on the unconstrained latent sites \['x'\]"
    ):
        _run_gaussian(failing)


def test_discrete_latent_sites_are_refused():
    def mixture():
        k = numpyro.sample("k", dist.Bernoulli(0.3))
        numpyro.sample("x", dist.Normal(2.0 * k, 1.0))

    with pytest.raises(ValueError, match=r"does not support discrete latent sites.*\['k'\]"):
        _run_gaussian(rs.numpyro.ScoreLangevin(mixture))


def test_a_non_finite_start_is_refused():
    def half_line():
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.factor("positive", jnp.where(x > 0, 0.0, -jnp.inf))

    with pytest.raises(ValueError, match="potential energy at the initial position is not finite"):
        _run_gaussian(rs.numpyro.ScoreLangevin(half_line), init_params={"x": jnp.array(-1.0)})

    def potential(x):
        return jnp.where(x[0] > 0, jnp.sum(x**2), jnp.nan)

    with pytest.raises(ValueError, match="potential energy at the initial position is not finite"):
        _run_gaussian(rs.numpyro.ScoreLangevin(potential_fn=potential), init_params=-jnp.ones(2))

    bad_score = rs.numpyro.ScoreLangevin(gaussian_model, score_fn=lambda z: {"x": z["x"] / 0.0})
    with pytest.raises(ValueError, match=r"score at the initial position is not finite at \['x'\]"):
        _run_gaussian(bad_score, init_params={"x": jnp.zeros(3)})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "exactly one of `model` or `potential_fn`"),
        ({"model": gaussian_model, "potential_fn": lambda z: 0.0}, ValueError, "exactly one"),
        (
            {"model": gaussian_model, "step_size": -0.1},
            ValueError,
            "`step_size` must be a positive",
        ),
        ({"model": gaussian_model, "target_accept_prob": 1.0}, ValueError, "`target_accept_prob`"),
        ({"model": gaussian_model, "score_fn": 3.0}, TypeError, "`score_fn` must be callable"),
        ({"model": gaussian_model, "adjust": "yes"}, TypeError, "`adjust` must be True"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        rs.numpyro.ScoreLangevin(**kwargs)


def test_potential_fn_needs_init_params():
    with pytest.raises(ValueError, match="`init_params` must be given"):
        _run_gaussian(rs.numpyro.ScoreLangevin(potential_fn=lambda x: jnp.sum(x**2)))


# -- ScoreDiffusion ------------------------------------------------------------------------
DIFFUSION_MEAN = jnp.array([1.0, -2.0, 0.5])
DIFFUSION_SD = jnp.array([0.5, 1.0, 2.0])


def _diffusion_model():
    numpyro.sample("x", dist.Normal(DIFFUSION_MEAN, DIFFUSION_SD).to_event(1))
    numpyro.sample("y", dist.LogNormal(0.5, 0.3))  # unconstrained: log y ~ N(0.5, 0.3^2)


def _exact_time_score(schedule):
    """The exact noised score of the model in unconstrained space, a Gaussian there."""
    mean = jnp.concatenate([DIFFUSION_MEAN, jnp.array([0.5])])
    variance = jnp.concatenate([DIFFUSION_SD**2, jnp.array([0.09])])
    score = rs.scores.gaussian(mean, variance, schedule=schedule)

    def time_score(z, t):  # {"x": (3,), "y": ()} <-> a vector of 4, in ravel_pytree's order
        flat, unravel = ravel_pytree(z)
        return unravel(score(flat, t))

    return time_score


@pytest.mark.parametrize(("method", "num_steps"), [("ode", 30), ("dpmpp_2m", 10)])
def test_score_diffusion_with_the_exact_score_recovers_the_posterior(method, num_steps):
    schedule = rs.schedules.vp()
    kernel = rs.numpyro.ScoreDiffusion(
        _diffusion_model,
        time_score_fn=_exact_time_score(schedule),
        settings=rs.ReverseDiffusion(schedule, num_steps, method),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=0,
        num_samples=500,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), extra_fields=("potential_energy",))
    samples = mcmc.get_samples(group_by_chain=True)
    assert bool((samples["y"] > 0).all())  # constrained by postprocess_fn
    draws = np.concatenate(
        [np.asarray(samples["x"]), np.log(np.asarray(samples["y"]))[..., None]], axis=-1
    )
    mean, sd, mean_se, sd_se = _summary(draws.astype(np.float64))
    want_mean = np.array([1.0, -2.0, 0.5, 0.5])
    want_sd = np.array([0.5, 1.0, 2.0, 0.3])
    assert np.all(np.abs(mean - want_mean) < Z_BOUND * mean_se), (mean, want_mean)
    assert np.all(np.abs(sd - want_sd) < Z_BOUND * sd_se), (sd, want_sd)
    extra = mcmc.get_extra_fields()
    assert extra["diverging"].shape == (2000,) and not bool(extra["diverging"].any())
    assert extra["potential_energy"].shape == (2000,)


def test_score_diffusion_names_a_time_score_over_the_wrong_sites():
    schedule = rs.schedules.vp()
    kernel = rs.numpyro.ScoreDiffusion(
        _diffusion_model,
        time_score_fn=lambda z, t: {"x": z["x"]},
        settings=rs.ReverseDiffusion(schedule, 100),
    )
    with pytest.raises(
        ValueError, match=r"`time_score_fn` must return .* \['x', 'y'\].*got \['x'\]"
    ):
        _run_gaussian(kernel)


def test_score_diffusion_runs_annealed_langevin_settings_too():
    schedule = rs.schedules.vp()
    settings = rs.AnnealedLangevin(schedule, 20, 2, snr=0.16)
    kernel = rs.numpyro.ScoreDiffusion(
        _diffusion_model, time_score_fn=_exact_time_score(schedule), settings=settings
    )
    mcmc = MCMC(kernel, num_warmup=0, num_samples=20, progress_bar=False)
    mcmc.run(jax.random.key(1), extra_fields=("diverging",))
    assert mcmc.get_samples()["x"].shape == (20, 3)
    assert not bool(mcmc.get_extra_fields()["diverging"].any())
