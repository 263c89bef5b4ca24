"""Preconditioned Langevin: the mass matrix in rs.ula / rs.mala, the warm-ups that adapt it
(rs.mala_adaptation, rs.ula_adaptation, ScoreLangevin), bad input, and the paper's trap under
preconditioning."""

import arviz_stats
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.linalg
from conftest import assert_moments_match, final_draws
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC

import robust_score as rs

NUM_CHAINS = 500
# 4 draws per chain, 100 steps apart. In whitened coordinates the curvatures below lie in
# [0.25, 4] (MALA) and the steps contract the slowest direction by at least 1 - 0.1 per step,
# so draws 100 steps apart are nearly independent: 2000 draws for assert_moments_match.
NUM_STEPS, THIN, WARMUP = 400, 100, 300


def _starts(dim, num_chains=NUM_CHAINS):
    return jax.random.normal(jax.random.key(7), (num_chains, dim))


def _masses(cov):
    """A dense and a diagonal inverse mass that are deliberately not the covariance, so the
    preconditioned proposal is asymmetric and the MH ratio has work to do."""
    dim = cov.shape[0]
    return {"dense": cov @ cov, "diagonal": jnp.linspace(0.3, 3.0, dim)}


@pytest.mark.parametrize("form", ["dense", "diagonal"])
def test_preconditioned_mala_is_exact(correlated_gaussian, form):
    mean, cov = correlated_gaussian
    mass = _masses(cov)[form]
    mala = rs.mala(rs.scores.gaussian_logdensity(mean, cov), 0.5, inverse_mass_matrix=mass)
    tree = rs.run(mala, jax.random.key(2), _starts(10), NUM_STEPS, num_warmup=WARMUP, thin=THIN)
    # Checked once by hand: with the identity in the MH ratio (the move still preconditioned)
    # the covariance test fails at max z = 13.4 (dense) and 27.5 (diagonal).
    assert_moments_match(final_draws(tree), mean, cov)
    assert 0.1 < float(tree.sample_stats["acceptance_rate"].mean()) < 0.95


@pytest.mark.parametrize("form", ["dense", "diagonal"])
def test_preconditioned_ula_matches_its_known_stationary_law(correlated_gaussian, form):
    mean, cov = correlated_gaussian
    mass, step_size = _masses(cov)[form], 0.1
    ula = rs.ula(rs.scores.gaussian(mean, cov), step_size, inverse_mass_matrix=mass)
    tree = rs.run(ula, jax.random.key(0), _starts(10), NUM_STEPS, num_warmup=WARMUP, thin=THIN)
    # x' = F x + sqrt(2h) L xi with F = I - h M⁻¹ Σ⁻¹ is a Gaussian AR(1) chain: its
    # stationary covariance C solves C = F C F^T + 2h M⁻¹, different from Σ by O(h)
    inverse_mass = np.diag(mass) if form == "diagonal" else np.asarray(mass, np.float64)
    f = np.eye(10) - step_size * inverse_mass @ np.linalg.inv(np.asarray(cov, np.float64))
    stationary = scipy.linalg.solve_discrete_lyapunov(f, 2 * step_size * inverse_mass)
    assert_moments_match(final_draws(tree), mean, stationary)
    assert not tree.sample_stats["diverging"].any()


def test_identity_mass_is_blackjax_mala_bitwise(correlated_gaussian):
    mean, cov = correlated_gaussian
    logdensity = rs.scores.gaussian_logdensity(mean, cov)
    ours, theirs = (
        rs.mala(logdensity, 0.3, inverse_mass_matrix=None),
        blackjax.mala(logdensity, 0.3),
    )
    state, reference = ours.init(mean), theirs.init(mean)
    for i in range(5):
        state, _ = ours.step(jax.random.key(i), state)
        reference, _ = theirs.step(jax.random.key(i), reference)
    np.testing.assert_array_equal(state.position, reference.position)


def test_pytree_positions_use_a_flat_mass():
    """A dict position moves as its raveled vector (keys sorted), as BlackJAX's metrics do."""
    mean, cov = (
        jnp.array([1.0, -1.0, 0.5]),
        jnp.array([[1.0, 0.4, 0.0], [0.4, 2.0, 0.3], [0.0, 0.3, 0.5]]),
    )
    mass = jnp.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.0], [0.1, 0.0, 0.5]])
    flat_score, flat_logdensity = (
        rs.scores.gaussian(mean, cov),
        rs.scores.gaussian_logdensity(mean, cov),
    )

    def to_flat(z):
        return jnp.concatenate([z["a"], z["b"][None]])

    def score(z):
        g = flat_score(to_flat(z))
        return {"a": g[:2], "b": g[2]}

    starts = _starts(3, 4)
    tree_starts = {"a": starts[:, :2], "b": starts[:, 2]}
    for flat_algorithm, tree_algorithm in (
        (rs.ula(flat_score, 0.1, mass), rs.ula(score, 0.1, mass)),
        (
            rs.mala(flat_logdensity, 0.3, inverse_mass_matrix=mass),
            rs.mala(lambda z: flat_logdensity(to_flat(z)), 0.3, inverse_mass_matrix=mass),
        ),
    ):
        flat = rs.run(flat_algorithm, jax.random.key(3), starts, 30).posterior
        tree = rs.run(tree_algorithm, jax.random.key(3), tree_starts, 30).posterior
        names = sorted(tree.data_vars)
        joined = np.concatenate([tree[names[0]].values, tree[names[1]].values[..., None]], -1)
        np.testing.assert_allclose(joined, flat["x"].values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("mass", "match"),
    [
        (jnp.ones(4), r"inverse_mass_matrix.*shape \(4,\).*3 entries"),
        (jnp.ones((3, 3, 3)), "inverse_mass_matrix.*1-D vector.*2-D"),
        (jnp.ones((3, 2)), "inverse_mass_matrix.*square"),
        (jnp.array([1.0, -1.0, 1.0]), "inverse_mass_matrix.*positive variances"),
        (jnp.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), "positive definite"),
        (jnp.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), "symmetric"),
        (jnp.array([1.0, jnp.nan, 1.0]), "inverse_mass_matrix.*non-finite"),
    ],
)
def test_bad_mass_is_refused_with_the_argument_named(mass, match):
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match=match):
        rs.mala(logdensity, 0.1, inverse_mass_matrix=mass).init(jnp.zeros(3))
    with pytest.raises(ValueError, match=match):
        rs.ula(rs.scores.gaussian(jnp.zeros(3), 1.0), 0.1, mass).init(jnp.zeros(3))


def test_bad_adaptation_switches_are_refused():
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(3), 1.0)
    with pytest.raises(TypeError, match="dense_mass"):
        rs.mala_adaptation(logdensity, adapt_mass_matrix=True, dense_mass="yes")
    with pytest.raises(TypeError, match="adapt_mass_matrix"):
        rs.numpyro.ScoreLangevin(potential_fn=lambda z: jnp.sum(z**2), adapt_mass_matrix=1)
    with pytest.raises(ValueError, match="step_fraction"):
        rs.ula_adaptation(rs.scores.gaussian(jnp.zeros(3), 1.0), step_fraction=2.0)
    kernel = rs.numpyro.ScoreLangevin(
        potential_fn=lambda z: jnp.sum(z**2), inverse_mass_matrix=jnp.ones(4)
    )
    mcmc = MCMC(kernel, num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(ValueError, match=r"inverse_mass_matrix.*3 entries"):
        mcmc.run(jax.random.key(0), init_params=jnp.zeros(3))


ILL_VARIANCES = jnp.geomspace(1.0, 1000.0, 20)  # d = 20, condition number 1000, axis-aligned


def test_adapted_mass_multiplies_min_ess_on_an_ill_conditioned_gaussian():
    """The quick version of the d = 100 measurement in docs/guide.md (no timing): d = 20,
    axis-aligned, a diagonal mass after a 300-step warm-up (Stan's windows of 25, 50, 100)."""
    mean = jnp.zeros(20)
    logdensity = rs.scores.gaussian_logdensity(mean, jnp.diag(ILL_VARIANCES))
    ess = {}
    for adapt_mass in (False, True):
        adaptation = rs.mala_adaptation(logdensity, adapt_mass_matrix=adapt_mass, dense_mass=False)
        (state, parameters), _ = adaptation.run(jax.random.key(1), mean, 300)
        starts = jnp.tile(state.position, (4, 1))
        tree = rs.run(rs.mala(logdensity, **parameters), jax.random.key(2), starts, 1000)
        ess[adapt_mass] = float(arviz_stats.ess(tree)["x"].min())
    # for a Gaussian the score-matched estimate (draws and scores) is the covariance whatever
    # the draws' spread: the diagonal sqrt(var x / var s) with s = -x / σ² draw by draw, so
    # it has no Monte-Carlo error, only float32 rounding of the last window's Welford sums
    # (100 draws: at most ~n ε = 1.2e-5 relative; measured 3e-7). The draws' covariance
    # alone gave 0.13 to 1.5 times the truth here (after 500 steps); checked once by hand in
    # its place after these 300, 0.02 to 1.35 times.
    ratio = np.asarray(parameters["inverse_mass_matrix"]) / np.asarray(ILL_VARIANCES)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-4)
    # measured: min ESS 5.0 without a mass, 619 with one (120x); the bound leaves a wide
    # margin for the Monte-Carlo error of ESS estimates from 4 chains
    assert ess[True] > 20 * ess[False], ess


def _rotated_covariance(dim, condition, seed=0):
    """Variances log-spaced over [1, condition], rotated by a Haar-random Q from ``seed``."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))
    return (q * np.geomspace(1.0, condition, dim)) @ q.T


def test_dense_mass_recovers_a_rotated_ill_conditioned_covariance():
    """The issue's target at d = 100, condition number 1000, randomly rotated, where a
    diagonal mass gains nothing (benchmarks/ill_conditioned.py measures the ESS). For a
    Gaussian the score-matched estimate is exact from any full-rank window; what is left is
    the shrinkage towards the previous mass, so ``M⁻¹ Σ⁻¹`` after a 1000-step warm-up has
    eigenvalues near 1: measured in [0.27, 1.19] (condition number 4.5; with the shrinkage
    done in the original coordinates, 190; the identity, 1000)."""
    cov = _rotated_covariance(100, 1000.0)
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(100), jnp.asarray(cov, jnp.float32))
    adaptation = rs.mala_adaptation(logdensity, adapt_mass_matrix=True, dense_mass=True)
    (_, parameters), _ = adaptation.run(jax.random.key(1), jnp.zeros(100), 1000)
    lower = np.linalg.cholesky(np.asarray(parameters["inverse_mass_matrix"], np.float64))
    spectrum = np.linalg.eigvalsh(lower.T @ np.linalg.solve(cov, lower))
    assert spectrum.min() > 0.1 and spectrum.max() < 3.0, spectrum[[0, -1]]


def test_ula_adaptation_step_is_a_fraction_of_the_smallest_scale():
    variances = jnp.array([0.1, 1.0, 10.0])
    score = rs.scores.gaussian(jnp.zeros(3), jnp.diag(variances))
    adaptation = rs.ula_adaptation(score, adapt_mass_matrix=False)
    (_, parameters), _ = adaptation.run(jax.random.key(0), jnp.ones(3), 50)
    # the exact score's curvature is 1 / (smallest variance) = 10: step = 0.1 / 10
    np.testing.assert_allclose(parameters["step_size"], 0.01, rtol=1e-3)
    assert "inverse_mass_matrix" not in parameters


def test_ula_adaptation_learns_the_scales_and_whitens_the_step():
    variances = np.array([0.01, 1.0, 100.0])
    score = rs.scores.gaussian(jnp.zeros(3), jnp.diag(jnp.asarray(variances, jnp.float32)))
    adaptation = rs.ula_adaptation(score, dense_mass=False, step_fraction=0.1)
    (state, parameters), _ = adaptation.run(jax.random.key(0), jnp.zeros(3), 2000)
    estimated = np.asarray(parameters["inverse_mass_matrix"], np.float64)
    # The last window's estimate, sqrt(var x / var s) per coordinate, is exact for a Gaussian
    # with the exact score: s = -x / σ² draw by draw, so var s = var x / σ⁴ over whatever
    # draws the window made, and the estimate has no Monte-Carlo error at all. What is left
    # is float32 rounding of the window's Welford sums: at most ~n ε = 1.3e-4 relative for its
    # n = 1100 draws (measured 6e-7). Checked once by hand: the draws' covariance alone in its
    # place was off by -18 %, +0.6 % and -75 %, of which the former bound (a factor of 2)
    # caught only the last.
    np.testing.assert_allclose(estimated, variances, rtol=2e-4)
    # the step is step_fraction over the whitened curvature, max(estimate / variance) = 1
    whitened_curvature = np.max(estimated / variances)
    np.testing.assert_allclose(parameters["step_size"], 0.1 / whitened_curvature, rtol=2e-4)
    tree = rs.run(rs.ula(score, **parameters), jax.random.key(1), state.position[None], 50)
    assert tree.posterior["x"].shape == (1, 50, 3)


def test_preconditioned_ula_stays_trapped():
    """Thm 1's trap under preconditioning: the mass estimated from the trapped draws is the
    trap's own spread, so the preconditioned chain stays at ||x|| ~ sqrt(d) while the exact
    score, under the same warm-up, reaches the target at ||x|| ~ 7.07 sqrt(d)."""
    dim = 10
    mean = jnp.full(dim, 7.0)
    exact = rs.scores.gaussian(mean, 1.0)
    trapped = rs.scores.center_trap(exact)
    distance = {}
    for name, score in (("exact", exact), ("trapped", trapped)):
        # 300 steps: Stan's windows of 25, 50 and 100 draws. From the origin the exact
        # score's chain relaxes towards the mean by a factor (1 - h) per step, h ~ 0.1 before
        # the first mass and after it (whitened), so it arrives within the first window. The
        # target is isotropic, so a diagonal mass loses nothing, and it compiles in a third
        # of the dense warm-up's time (the dense estimate is tested above and below).
        adaptation = rs.ula_adaptation(score, dense_mass=False)
        (state, parameters), _ = adaptation.run(jax.random.key(0), jnp.zeros(dim), 300)
        starts = state.position + 0.1 * _starts(dim, 8)
        tree = rs.run(rs.ula(score, **parameters), jax.random.key(1), starts, 200, thin=10)
        # the last 10 kept draws of 8 chains, 100 steps (ten relaxation times) after the start
        norms = np.linalg.norm(tree.posterior["x"].values[:, -10:], axis=-1)
        distance[name] = float(norms.mean()) / dim**0.5
    # at the target ||x|| / sqrt(d) is ~7.07 with an sd of ~0.1 per draw, and 80 draws are
    # averaged: the band is many standard errors wide either way
    assert 6.0 < distance["exact"] < 8.0, distance
    assert distance["trapped"] < 2.0, distance


def _gaussian_model(mean, cov):
    def model():
        numpyro.sample("x", dist.MultivariateNormal(mean, cov))

    return model


def test_score_langevin_adapts_a_dense_mass_by_default():
    cov = jnp.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.0], [0.0, 0.0, 0.01]])
    mean = jnp.array([1.0, -1.0, 0.0])
    kernel = rs.numpyro.ScoreLangevin(_gaussian_model(mean, cov), adjust=True)
    mcmc = MCMC(
        kernel,
        num_warmup=400,
        num_samples=500,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), extra_fields=("adapt_state.step_size", "accept_prob"))
    # NUTS's form: one dense block over the one site
    (adapted,) = mcmc.last_state.adapt_state.inverse_mass_matrix.values()
    adapted = np.asarray(adapted, np.float64)
    assert adapted.shape == (4, 3, 3)
    # a Gaussian with the exact score: each chain's score-matched estimate is the covariance
    # up to the shrinkage (weight 0.3 / 100.3 in the last window, towards a mass already
    # close) and float32 rounding (measured: 3e-6 relative)
    np.testing.assert_allclose(adapted, np.broadcast_to(cov, adapted.shape), rtol=0.01, atol=1e-4)
    step_size = mcmc.get_extra_fields()["adapt_state.step_size"]
    assert step_size.shape == (2000,) and float(step_size.min()) > 0.2  # whitened: O(1)
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"], np.float64)
    # whitened, MALA mixes in a few steps: measured ESS 1020-1170 of 2000 draws per
    # coordinate (the identity's step would be held to the 0.01 variance, condition ~200)
    ess = np.asarray(effective_sample_size(x))
    assert np.all(ess > 400), ess
    # mean within 4.5 standard errors (sd / sqrt(ESS)); variance within 4.5 of its
    # standard errors, sqrt(2 / ESS) relative, for a Gaussian
    flat, sd = x.reshape(-1, 3), np.sqrt(np.diag(cov))
    assert np.all(np.abs(flat.mean(0) - mean) < 4.5 * sd / np.sqrt(ess))
    variance_error = np.var(flat, axis=0) / np.diag(cov) - 1
    assert np.all(np.abs(variance_error) < 4.5 * np.sqrt(2 / ess)), variance_error
    assert abs(float(mcmc.get_extra_fields()["accept_prob"].mean()) - 0.574) < 0.1


def test_score_langevin_dense_rule_and_explicit_mass():
    def model(dim):
        numpyro.sample("x", dist.Normal(0.0, 1.0).expand([dim]))

    for dim, ndim in ((50, 2), (51, 1)):
        # init alone builds the adaptation state: no sampling program to compile
        state = rs.numpyro.ScoreLangevin(model).init(jax.random.key(0), 30, None, (dim,), {})
        assert state.adapt_state.inverse_mass_matrix[("x",)].ndim == ndim
    fixed = jnp.linspace(0.5, 2.0, 4)
    kernel = rs.numpyro.ScoreLangevin(model, adapt_mass_matrix=False, inverse_mass_matrix=fixed)
    mcmc = MCMC(kernel, num_warmup=30, num_samples=2, progress_bar=False)
    mcmc.run(jax.random.key(0), 4)
    np.testing.assert_array_equal(mcmc.last_state.adapt_state.inverse_mass_matrix[("x",)], fixed)
