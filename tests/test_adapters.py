"""Time scores: exact noised scores, adapters from denoiser / eps / v / x0 predictions, and the
paper's traps carried to every noise level."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs

SCHEDULES = [rs.schedules.vp(), rs.schedules.ve(), rs.schedules.cosine(), rs.schedules.edm()]


def _times(schedule, num=7):
    return np.linspace(schedule.t_min, schedule.T, num)


@pytest.mark.parametrize(
    "schedule", [rs.schedules.vp(), rs.schedules.ve()], ids=lambda s: type(s).__name__
)
def test_noised_mixture_score_is_the_gradient_of_the_noised_log_density(schedule):
    key_means, key_x = jax.random.split(jax.random.key(0))
    weights = jnp.array([0.6, 0.3, 0.1])
    means = 3.0 * jax.random.normal(key_means, (3, 4))
    covs = jnp.array([0.5, 1.0, 2.0])
    score = jax.jit(rs.scores.gaussian_mixture(weights, means, covs, schedule=schedule))
    logdensity = rs.scores.gaussian_mixture_logdensity(weights, means, covs, schedule=schedule)
    autodiff = jax.jit(jax.grad(logdensity))
    for t in _times(schedule):
        # draws on the scale of p_t, so every t is tested where its score matters
        spread = float(jnp.sqrt(schedule.alpha(t) ** 2 * 4.0 + schedule.sigma(t) ** 2))
        for x in spread * jax.random.normal(jax.random.fold_in(key_x, int(1e6 * t)), (4, 4)):
            exact, reference = score(x, t), autodiff(x, t)
            error = float(jnp.linalg.norm(exact - reference))
            assert error <= 1e-5 * float(jnp.linalg.norm(reference)) + 1e-6, (t, error)


def _gaussian_predictors(mean, cov, schedule):
    """The exact posterior-mean predictors of a Gaussian N(mean, cov) under ``schedule``."""

    def x0_fn(x, t):
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        gain = alpha * cov @ jnp.linalg.inv(alpha**2 * cov + sigma**2 * jnp.eye(len(mean)))
        return mean + gain @ (x - alpha * mean)

    def eps_fn(x, t):
        return (x - schedule.alpha(t) * x0_fn(x, t)) / schedule.sigma(t)

    def v_fn(x, t):
        return schedule.alpha(t) * eps_fn(x, t) - schedule.sigma(t) * x0_fn(x, t)

    def denoiser(x_hat, sigma_hat):  # EDM: E[x0 | x0 + sigma_hat eps = x_hat]
        gain = cov @ jnp.linalg.inv(cov + sigma_hat**2 * jnp.eye(len(mean)))
        return mean + gain @ (x_hat - mean)

    return {
        "x0": rs.scores.from_x0_prediction(x0_fn, schedule),
        "eps": rs.scores.from_eps_prediction(eps_fn, schedule),
        "v": rs.scores.from_v_prediction(v_fn, schedule),
        "denoiser": rs.scores.from_denoiser(denoiser, schedule),
    }


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_adapters_of_the_exact_gaussian_predictors_give_the_exact_time_score(schedule, x64):
    # float64: near t_min the x0 and denoiser forms divide a difference by sigma^2 ~ 1e-6
    mean = jnp.array([1.0, -2.0, 0.5])
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(1), (3, 3), jnp.float64))
    cov = (q * jnp.array([0.3, 1.0, 2.5])) @ q.T
    exact = rs.scores.gaussian(mean, cov, schedule=schedule)
    adapters = _gaussian_predictors(mean, cov, schedule)
    for t in _times(schedule):
        x = schedule.alpha(t) * mean + 2.0 * jax.random.normal(jax.random.key(2), (3,), jnp.float64)
        reference = exact(x, t)
        for name, score in adapters.items():
            np.testing.assert_allclose(
                score(x, t), reference, rtol=1e-7, atol=1e-9, err_msg=f"{name} at t={t}"
            )


def test_adapters_accept_pytrees_and_reject_bad_arguments():
    schedule = rs.schedules.vp()
    score = rs.scores.from_eps_prediction(lambda x, t: jax.tree.map(jnp.ones_like, x), schedule)
    position = {"a": jnp.zeros(2), "b": jnp.zeros(())}
    out = score(position, 0.5)
    assert jax.tree.structure(out) == jax.tree.structure(position)
    np.testing.assert_allclose(out["a"], -1.0 / schedule.sigma(0.5), rtol=1e-6)
    with pytest.raises(TypeError, match="`denoiser` must be callable"):
        rs.scores.from_denoiser(None, schedule)
    with pytest.raises(TypeError, match="`schedule` must be"):
        rs.scores.from_v_prediction(lambda x, t: x, "vp")


def _noised_gaussian(mu, schedule):
    """Exact time score of N(mu, I) under ``schedule`` in closed form (O(d), not O(d^2))."""

    def score(x, t):
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        return -(x - alpha * mu) / (alpha**2 + sigma**2)

    return score


@pytest.mark.parametrize(
    "schedule", [rs.schedules.vp(), rs.schedules.ve()], ids=lambda s: type(s).__name__
)
def test_center_trap_time_is_accurate_under_every_p_t_yet_traps_at_t_min(schedule):
    dim = 200
    mu = jnp.full(dim, 7.0)  # the paper's target: ||mu|| = 7 sqrt(d)
    base = _noised_gaussian(mu, schedule)
    np.testing.assert_allclose(
        base(mu, 0.3), rs.scores.gaussian(mu, 1.0, schedule=schedule)(mu, 0.3), atol=1e-5
    )
    trap = rs.scores.center_trap_time(base, schedule, stiffness=4.0)
    for t in _times(schedule, 6):
        alpha, sigma = float(schedule.alpha(t)), float(schedule.sigma(t))
        draws = alpha * mu + math.sqrt(alpha**2 + sigma**2) * jax.random.normal(
            jax.random.key(3), (1000, dim)
        )
        error = rs.scores.l2_error(lambda x, t=t: trap(x, t), lambda x, t=t: base(x, t), draws)
        assert float(error) < 1e-6, (t, float(error))
        inside = 0.5 * alpha * 4.0 * math.sqrt(dim) * jnp.ones(dim) / math.sqrt(dim)
        np.testing.assert_allclose(trap(inside, t), -4.0 * inside, rtol=1e-5)
    # at t_min the trap is the untimed construction of the t_min score
    untimed = rs.scores.center_trap(lambda x: base(x, schedule.t_min), stiffness=4.0)
    for radius in (1.0, 30.0, 90.0):
        x = radius * jnp.ones(dim) / math.sqrt(dim)
        np.testing.assert_allclose(trap(x, schedule.t_min), untimed(x), rtol=1e-3, atol=1e-3)


def test_memorization_trap_time_wells_follow_the_scaled_training_points():
    schedule, dim = rs.schedules.vp(), 50
    data = 1.5 * jax.random.normal(jax.random.key(4), (10, dim))
    base = _noised_gaussian(jnp.zeros(dim), schedule)  # N(0, I): p_t = N(0, I) for all t
    trap = rs.scores.memorization_trap_time(base, schedule, data)
    radius = 0.16 * math.sqrt(dim)
    for t in _times(schedule, 5):
        alpha = float(schedule.alpha(t))
        near = alpha * (data[3] + 0.5 * radius * jnp.ones(dim) / math.sqrt(dim))
        np.testing.assert_allclose(
            trap(near, t), -100.0 * (near - alpha * data[3]), rtol=1e-4, atol=1e-4
        )
        draws = jax.random.normal(jax.random.key(5), (1000, dim))
        error = rs.scores.l2_error(lambda x, t=t: trap(x, t), lambda x, t=t: base(x, t), draws)
        assert float(error) < 1e-6, (t, float(error))
    untimed = rs.scores.memorization_trap(lambda x: base(x, schedule.t_min), data)
    near = data[0] + 0.5 * radius * jnp.ones(dim) / math.sqrt(dim)
    # the wells differ by (1 - alpha(t_min)) x_0 = 5e-5 x_0, times the slope 100
    np.testing.assert_allclose(trap(near, schedule.t_min), untimed(near), rtol=1e-2)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rs.scores.center_trap_time(None, rs.schedules.vp()), "`base_time_score`"),
        (lambda: rs.scores.center_trap_time(lambda x, t: x, None), "`schedule` must be"),
        (
            lambda: rs.scores.center_trap_time(lambda x, t: x, rs.schedules.vp(), r_in=2, r_out=1),
            "`r_out`",
        ),
        (
            lambda: rs.scores.memorization_trap_time(
                lambda x, t: x, rs.schedules.ve(), jnp.ones(3)
            ),
            "`train_data`",
        ),
    ],
)
def test_bad_time_trap_arguments_raise_clear_errors(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build()
