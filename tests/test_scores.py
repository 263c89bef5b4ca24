"""Exact scores, the empirical (memorizing) score, the paper's trap constructions and the L2
error they are judged by."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs


def _random_cov(key, dim, low=0.5, high=2.0):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (dim, dim)))
    eigenvalues = jnp.linspace(low, high, dim)
    return (q * eigenvalues) @ q.T


@pytest.mark.parametrize("cov_kind", ["scalar", "diagonal", "full"])
def test_gaussian_score_matches_closed_form_and_autodiff(cov_kind):
    dim = 5
    mean = jnp.arange(dim, dtype=jnp.float32)
    cov = {
        "scalar": 2.0,
        "diagonal": jnp.linspace(0.5, 3.0, dim),
        "full": _random_cov(jax.random.key(0), dim),
    }[cov_kind]
    full = jnp.broadcast_to(
        jnp.diag(jnp.broadcast_to(cov, (dim,))) if jnp.ndim(cov) < 2 else cov, (dim, dim)
    )
    score = rs.scores.gaussian(mean, cov)
    logdensity = rs.scores.gaussian_logdensity(mean, cov)
    for x in jax.random.normal(jax.random.key(1), (4, dim)):
        expected = -jnp.linalg.solve(full, x - mean)
        np.testing.assert_allclose(score(x), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(jax.grad(logdensity)(x), expected, rtol=1e-4, atol=1e-5)
    reference = jax.scipy.stats.multivariate_normal.logpdf(x, mean, full)
    np.testing.assert_allclose(logdensity(x), reference, rtol=1e-5)


def test_gaussian_mixture_score_is_gradient_of_its_log_density_and_stable():
    key = jax.random.key(2)
    weights = jnp.array([0.5, 0.3, 0.2])
    means = jax.random.normal(key, (3, 4)) * 3
    covs = jnp.stack([_random_cov(k, 4) for k in jax.random.split(key, 3)])
    score = jax.jit(rs.scores.gaussian_mixture(weights, means, covs))
    logdensity = rs.scores.gaussian_mixture_logdensity(weights, means, covs)
    for x in jax.random.normal(jax.random.key(3), (5, 4)) * 2:
        np.testing.assert_allclose(score(x), jax.grad(logdensity)(x), rtol=1e-4, atol=1e-5)
    far = jnp.full(4, 1e3)  # every component density underflows: log-sum-exp must not
    assert jnp.all(jnp.isfinite(score(far)))
    # so far out one component holds all the mass: the score is that component's
    log_probs = jnp.array(
        [
            jax.scipy.stats.multivariate_normal.logpdf(far, m, c)
            for m, c in zip(means, covs, strict=True)
        ]
    )
    top = int(jnp.argmax(jnp.log(weights) + log_probs))
    np.testing.assert_allclose(
        score(far), -jnp.linalg.solve(covs[top], far - means[top]), rtol=1e-3
    )


def test_scores_accept_pytrees_and_from_logdensity():
    score = rs.scores.gaussian(jnp.zeros(3), 1.0)
    position = {"a": jnp.ones(2), "b": jnp.array(2.0)}
    out = score(position)
    assert jax.tree.structure(out) == jax.tree.structure(position)
    np.testing.assert_allclose(out["a"], -jnp.ones(2))
    grad_score = rs.scores.from_logdensity(lambda x: -0.5 * jnp.sum(x**2))
    np.testing.assert_allclose(grad_score(jnp.arange(3.0)), -jnp.arange(3.0))


def test_center_trap_regions_and_lipschitz_blend():
    dim = 16
    base = rs.scores.gaussian(jnp.full(dim, 7.0), 1.0)
    trap = rs.scores.center_trap(base, stiffness=2.0)
    direction = jnp.ones(dim) / math.sqrt(dim)
    r_in, r_out = 4 * math.sqrt(dim), 5 * math.sqrt(dim)
    inside, outside = 0.9 * r_in * direction, 1.1 * r_out * direction
    np.testing.assert_allclose(trap(inside), -2.0 * inside, rtol=1e-6)
    np.testing.assert_allclose(trap(outside), base(outside), rtol=1e-6)
    # along a ray the blend is continuous and Lipschitz: no jumps between close radii
    radii = jnp.linspace(0.9 * r_in, 1.1 * r_out, 2001)
    values = jax.vmap(lambda r: trap(r * direction))(radii)
    jumps = jnp.linalg.norm(jnp.diff(values, axis=0), axis=1) / jnp.diff(radii)
    assert float(jnp.max(jumps)) < 60.0


def test_center_trap_with_explicit_center_and_radii():
    base = rs.scores.gaussian(jnp.zeros(3), 1.0)
    center = jnp.array([5.0, 0.0, 0.0])
    trap = rs.scores.center_trap(base, center, r_in=1.0, r_out=2.0, stiffness=3.0)
    x = center + jnp.array([0.5, 0.0, 0.0])
    np.testing.assert_allclose(trap(x), -3.0 * (x - center))
    np.testing.assert_allclose(trap(jnp.zeros(3)), base(jnp.zeros(3)))


def test_memorization_trap_pulls_to_nearest_training_point_only_nearby():
    dim = 50
    data = jax.random.normal(jax.random.key(4), (10, dim))
    base = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    trap = rs.scores.memorization_trap(base, data)
    radius = 0.16 * math.sqrt(dim)
    near = data[3] + 0.5 * radius * jnp.ones(dim) / math.sqrt(dim)
    np.testing.assert_allclose(trap(near), -100.0 * (near - data[3]), rtol=1e-4, atol=1e-4)
    far = jax.random.normal(jax.random.key(5), (dim,))
    np.testing.assert_allclose(trap(far), base(far), rtol=1e-6)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: rs.scores.gaussian(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]])),
            "positive definite",
        ),
        (lambda: rs.scores.gaussian(jnp.zeros(2), jnp.ones((3, 3))), "`cov` must match `mean`"),
        (
            lambda: rs.scores.gaussian(jnp.zeros(2), jnp.array([[1.0, 0.5], [0.0, 1.0]])),
            "symmetric",
        ),
        (
            lambda: rs.scores.gaussian_mixture(jnp.ones(3), jnp.zeros((2, 2)), 1.0),
            "`weights` must have one entry per component",
        ),
        (lambda: rs.scores.gaussian_mixture(-jnp.ones(2), jnp.zeros((2, 2)), 1.0), "non-negative"),
        (lambda: rs.scores.center_trap(None), "`base_score` must be callable"),
        (lambda: rs.scores.center_trap(lambda x: x, r_in=2.0, r_out=1.0), "`r_out`"),
        (lambda: rs.scores.center_trap(lambda x: x, stiffness=-1.0), "`stiffness`"),
        (lambda: rs.scores.memorization_trap(lambda x: x, jnp.zeros((0, 3))), "`train_data`"),
        (lambda: rs.scores.memorization_trap(lambda x: x, jnp.zeros(3)), "`train_data`"),
        (lambda: rs.scores.from_logdensity(3), "`logdensity_fn` must be callable"),
    ],
)
def test_bad_score_arguments_raise_clear_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_dimension_mismatch_is_reported():
    score = rs.scores.gaussian(jnp.zeros(3), 1.0)
    with pytest.raises(ValueError, match="dimension 3"):
        score(jnp.zeros(4))


def test_l2_error_relative_and_absolute():
    exact = rs.scores.gaussian(jnp.zeros(4), 1.0)
    scaled = lambda x: 1.1 * exact(x)  # noqa: E731
    samples = jax.random.normal(jax.random.key(6), (4000, 4))
    np.testing.assert_allclose(rs.scores.l2_error(scaled, exact, samples), 0.01, rtol=1e-4)
    absolute = rs.scores.l2_error(scaled, exact, samples, relative=False)
    np.testing.assert_allclose(absolute, 0.01 * jnp.mean(jnp.sum(samples**2, axis=1)), rtol=1e-4)
    with pytest.raises(ValueError, match="leading axis"):
        rs.scores.l2_error(scaled, exact, jnp.array(1.0))


# -- the empirical (memorizing) score -------------------------------------------------------
EMPIRICAL_DIM = 5
VP = rs.schedules.vp()


def _empirical_draws(key, n):
    """Draws of N(1, 2 I_5), the training data of the empirical-score tests."""
    return 1.0 + np.sqrt(2.0) * jax.random.normal(key, (n, EMPIRICAL_DIM))


def _check_gradient(times, rtol):
    train = _empirical_draws(jax.random.key(8), 20)
    score = jax.jit(rs.scores.empirical_score(train, VP))
    grad = jax.jit(jax.grad(rs.scores.empirical_logdensity(train, VP)))
    x = _empirical_draws(jax.random.key(9), 1)[0]
    for t in times:
        expected = grad(x, t)
        scale = float(jnp.max(jnp.abs(expected)))  # up to ~2e4 at t_min
        np.testing.assert_allclose(score(x, t), expected, rtol=rtol, atol=rtol * scale)
    return train, x


def test_empirical_score_is_the_gradient_of_the_empirical_log_density_x64(x64):
    # at t_min (sigma = 0.01) the softmax exponents are ~1e4 and float32 rounding moves the
    # weights by ~1e-3, differently in the two programs; float64 shows they are the same
    _check_gradient((VP.t_min, 0.05, 0.5, VP.T), rtol=1e-9)


def test_empirical_score_is_the_gradient_of_the_empirical_log_density():
    train, x = _check_gradient((0.05, 0.5, VP.T), rtol=1e-4)
    # normalized: with one training point it is the log density of N(alpha x_1, sigma^2 I)
    single = rs.scores.empirical_logdensity(train[:1], VP)
    t = 0.5
    alpha, sigma = VP.alpha(t), VP.sigma(t)
    gaussian = rs.scores.gaussian_logdensity(alpha * train[0], sigma**2)
    np.testing.assert_allclose(single(x, t), gaussian(x), rtol=1e-5)


def test_reverse_diffusion_with_the_empirical_score_returns_training_points():
    train = _empirical_draws(jax.random.key(10), 20)
    score = rs.scores.empirical_score(train, VP)
    # no final Tweedie step (it alone would snap any point onto the data): the trajectory
    # itself must end at a training point, up to the noise sigma(t_min) = 0.01 it still carries
    settings = rs.ReverseDiffusion(VP, 50, spacing="karras", denoise=False)
    draws = rs.sample_batch(jax.random.key(11), score, settings, 64, (EMPIRICAL_DIM,))
    distances = np.linalg.norm(np.asarray(draws)[:, None] - np.asarray(train)[None], axis=-1)
    nearest = distances.min(axis=1) / np.sqrt(EMPIRICAL_DIM)
    gaps = np.linalg.norm(train[:, None] - train[None], axis=-1)[~np.eye(20, dtype=bool)]
    # the training points are >= 0.56 sqrt(d) apart; measured: every draw within 0.02 sqrt(d)
    # of one of them (median 0.011), 19 of the 20 points reached
    assert gaps.min() / np.sqrt(EMPIRICAL_DIM) > 0.5
    assert nearest.max() < 0.05, f"farthest draw {nearest.max():.3f} sqrt(d) from the data"


def test_empirical_score_rejects_bad_input():
    with pytest.raises(ValueError, match="`train_data`"):
        rs.scores.empirical_score(np.zeros((0, 2)), VP)
    with pytest.raises(ValueError, match="`train_data`"):
        rs.scores.empirical_logdensity(np.zeros(3), VP)
    with pytest.raises(TypeError, match="`schedule`"):
        rs.scores.empirical_score(np.zeros((3, 2)), "vp")
    with pytest.raises(ValueError, match="dimension"):
        rs.scores.empirical_score(np.zeros((3, 2)), VP)(jnp.zeros(3), 0.5)


def test_isotropic_and_diagonal_covariances_stay_order_d():
    """A scalar or diagonal covariance is kept as d variances, never expanded to d x d: at
    d = 5000 a dense float64 matrix is 200 MB, the variances 40 kB. The peak of NumPy's
    allocations while the score is built (tracemalloc) is held under 5 MB; the dense
    expansion this replaced peaked at 800 MB here (measured), and 3.2 GB at d = 10 000."""
    import tracemalloc

    dim = 5000
    for cov in (2.0, np.full(dim, 2.0)):
        tracemalloc.start()
        score = rs.scores.gaussian(np.zeros(dim), cov)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 5e6, peak
        x = jnp.ones(dim)
        np.testing.assert_allclose(score(x), -x / 2.0, rtol=1e-6)
