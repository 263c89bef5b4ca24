"""ULA and MALA as BlackJAX algorithms: correctness on a Gaussian, adaptation, interop."""

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_moments_match, final_draws

import robust_score as rs

NUM_CHAINS = 1000
# 4 draws per chain, 100 steps apart: with step 0.05 and smallest precision 0.5 the
# autocorrelation over 100 steps is 0.975^100 = 0.08, so the 4000 draws are nearly independent.
NUM_STEPS, THIN, WARMUP = 400, 100, 600


def _starts(dim):
    return jax.random.normal(jax.random.key(7), (NUM_CHAINS, dim))


@pytest.mark.slow
def test_ula_exact_score_matches_gaussian_up_to_known_step_bias(correlated_gaussian):
    mean, cov = correlated_gaussian
    step_size = 0.05
    ula = rs.ula(rs.scores.gaussian(mean, cov), step_size)
    tree = rs.run(ula, jax.random.key(0), _starts(10), NUM_STEPS, num_warmup=WARMUP, thin=THIN)
    # ULA on N(mu, Sigma) is exactly Gaussian with mean mu and covariance
    # Sigma (I - h Sigma^-1 / 2)^-1: the O(h) bias is known in closed form.
    precision = jnp.linalg.inv(cov)
    biased_cov = cov @ jnp.linalg.inv(jnp.eye(10) - 0.5 * step_size * precision)
    assert_moments_match(final_draws(tree), mean, biased_cov)
    assert not tree.sample_stats["diverging"].any()


@pytest.mark.slow
def test_mala_matches_gaussian_without_bias(correlated_gaussian):
    mean, cov = correlated_gaussian
    logdensity = rs.scores.gaussian_logdensity(mean, cov)
    mala = rs.mala(logdensity, step_size=0.3)
    tree = rs.run(mala, jax.random.key(1), _starts(10), NUM_STEPS, num_warmup=WARMUP, thin=THIN)
    assert_moments_match(final_draws(tree), mean, cov)
    acceptance = float(tree.sample_stats["acceptance_rate"].mean())
    assert 0.3 < acceptance < 0.95


@pytest.mark.slow
def test_mala_with_a_wrong_drift_still_targets_the_density(correlated_gaussian):
    # the MH correction makes the drift only a proposal: a score 30 % too weak is harmless
    mean, cov = correlated_gaussian
    logdensity = rs.scores.gaussian_logdensity(mean, cov)
    exact = rs.scores.gaussian(mean, cov)
    mala = rs.mala(logdensity, step_size=0.3, score_fn=lambda x: 0.7 * exact(x))
    tree = rs.run(mala, jax.random.key(2), _starts(10), NUM_STEPS, num_warmup=WARMUP, thin=THIN)
    assert_moments_match(final_draws(tree), mean, cov)


def test_mala_adaptation_reaches_target_acceptance(correlated_gaussian):
    mean, cov = correlated_gaussian
    logdensity = rs.scores.gaussian_logdensity(mean, cov)
    adaptation = rs.mala_adaptation(logdensity, initial_step_size=2.0)
    (state, parameters), history = adaptation.run(jax.random.key(3), mean, num_steps=800)
    step_size = float(parameters["step_size"])
    assert 0.05 < step_size < 2.0
    mala = rs.mala(logdensity, step_size)
    tree = rs.run(mala, jax.random.key(4), jnp.tile(state.position, (64, 1)), 200)
    # dual averaging targets 0.574; 64 x 200 draws pin the mean acceptance to about +-0.02
    assert abs(float(tree.sample_stats["acceptance_rate"].mean()) - 0.574) < 0.08
    assert history.info.acceptance_rate.shape == (800,)


def test_kernels_follow_blackjax_module_layout():
    for api, module in ((rs.ula, rs.kernels.ula), (rs.mala, rs.kernels.mala)):
        assert isinstance(api, blackjax.GenerateSamplingAPI)
        assert api.init is module.init and api.build_kernel is module.build_kernel
    score = rs.scores.gaussian(jnp.zeros(2), 1.0)
    kernel = rs.ula.build_kernel()
    state = rs.ula.init(jnp.zeros(2), score)
    state, info = kernel(jax.random.key(0), state, score, 0.1)
    assert isinstance(state, rs.kernels.ula.ULAState) and not bool(info.is_divergent)
    assert isinstance(rs.ula(score, 0.1), blackjax.base.SamplingAlgorithm)


@pytest.mark.parametrize("factory", ["ula", "mala"])
def test_run_inference_algorithm_interop_with_pytrees(factory):
    def logdensity(p):
        return -0.5 * (jnp.sum(p["a"] ** 2) + p["b"] ** 2)

    score = rs.scores.from_logdensity(logdensity)
    algorithm = rs.ula(score, 0.1) if factory == "ula" else rs.mala(logdensity, 0.5, score)
    position = {"a": jnp.ones(3), "b": jnp.array(0.5)}
    final, (states, infos) = blackjax.util.run_inference_algorithm(
        jax.random.key(0), algorithm, 2000, initial_position=position
    )
    assert states.position["a"].shape == (2000, 3) and states.position["b"].shape == (2000,)
    assert not bool(infos.is_divergent.any())
    # N(0, 1) per coordinate; 2000 autocorrelated draws: mean within 0.25, variance within 35 %
    assert abs(float(states.position["a"].mean())) < 0.25
    assert 0.65 < float(states.position["a"].var()) < 1.35


def test_float64_positions_stay_float64(x64):
    score = rs.scores.gaussian(jnp.zeros(3), 1.0)
    for algorithm in (
        rs.ula(score, 0.1),
        rs.mala(rs.scores.gaussian_logdensity(jnp.zeros(3), 1.0), 0.1),
    ):
        state = algorithm.init(jnp.zeros(3, jnp.float64))
        state, info = jax.jit(algorithm.step)(jax.random.key(0), state)
        assert state.position.dtype == jnp.float64


@pytest.mark.parametrize("step_size", [0.0, -0.1, float("nan"), float("inf")])
def test_step_size_must_be_positive_and_finite(step_size):
    score = rs.scores.gaussian(jnp.zeros(2), 1.0)
    with pytest.raises(ValueError, match="`step_size` must be a positive finite number"):
        rs.ula(score, step_size)
    with pytest.raises(ValueError, match="`step_size` must be a positive finite number"):
        rs.mala(lambda x: -jnp.sum(x**2), step_size)


def test_score_with_wrong_shape_or_dtype_is_rejected_at_init():
    wrong_shape = rs.ula(lambda x: x[:1], 0.1)
    with pytest.raises(ValueError, match=r"`score_fn` must return arrays shaped like the position"):
        wrong_shape.init(jnp.zeros(3))
    with jax.enable_x64(True):
        wrong_dtype = rs.ula(lambda x: x.astype(jnp.float32), 0.1)
        with pytest.raises(TypeError, match="`score_fn` must return the position's dtype"):
            wrong_dtype.init(jnp.zeros(3, jnp.float64))
    wrong_structure = rs.ula(lambda x: (x, x), 0.1)
    with pytest.raises(ValueError, match="structure of the position"):
        wrong_structure.init(jnp.zeros(3))
    broken = rs.ula(lambda x: x @ jnp.ones((5, 5)), 0.1)
    with pytest.raises(TypeError, match="`score_fn` could not be evaluated"):
        broken.init(jnp.zeros(3))
    with pytest.raises(TypeError, match="`score_fn` must be callable"):
        rs.ula(None, 0.1)


def test_bad_positions_and_logdensity_are_rejected():
    score = rs.scores.gaussian(jnp.zeros(2), 1.0)
    with pytest.raises(ValueError, match="`position` has 1 non-finite"):
        rs.ula(score, 0.1).init(jnp.array([0.0, jnp.nan]))
    with pytest.raises(TypeError, match="floating-point"):
        rs.ula(score, 0.1).init(jnp.array([0, 1]))
    with pytest.raises(ValueError, match="`logdensity_fn` must return a scalar"):
        rs.mala(lambda x: -(x**2), 0.1).init(jnp.zeros(2))
    with pytest.raises(ValueError, match="`target_acceptance_rate`"):
        rs.mala_adaptation(lambda x: -jnp.sum(x**2), target_acceptance_rate=1.5)


def test_mala_rejects_non_finite_proposals_and_flags_them():
    # log density is -inf beyond |x| > 1: proposals there are rejected, never returned
    def logdensity(x):
        return jnp.where(jnp.abs(x[0]) < 1.0, -0.5 * jnp.sum(x**2), -jnp.inf)

    mala = rs.mala(logdensity, 1.0, score_fn=lambda x: -x)
    with pytest.warns(rs.DivergenceWarning):
        tree = rs.run(mala, jax.random.key(0), jnp.zeros((8, 2)), 200)
    assert np.isfinite(tree.posterior["x"].values).all()
    assert tree.sample_stats["acceptance_rate"].min() == 0.0
