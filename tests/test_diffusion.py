"""Annealed Langevin and reverse diffusion (SDE, probability-flow ODE, predictor–corrector,
DPM-Solver++(2M), EDM's stochastic sampler):
accuracy on multimodal targets, robustness to a trapped score, renoise–denoise invariance,
score-evaluation counts, BlackJAX/`rs.run` interop and argument checks."""

import dataclasses
import math

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs

NUM_SAMPLES = 4000


def _unbalanced_pair():
    """0.9 N(0, 0.5 I) + 0.1 N(m, 0.3 I) in d = 8, ||m|| = 6 (8.5 standard deviations)."""
    means = np.zeros((2, 8))
    means[1] = 6.0 / math.sqrt(8)
    return np.array([0.9, 0.1]), means, np.array([0.5, 0.3])


def _ring():
    """8 modes on a circle of radius 4 in 2-D, std 0.2, weights 1/36, 2/36, ..., 8/36."""
    angles = 2 * np.pi * np.arange(8) / 8
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.arange(1, 9) / 36.0, means, np.full(8, 0.04)


TARGETS = {"unbalanced_d8": _unbalanced_pair(), "ring_2d": _ring()}


def _mixture_moments(weights, means, variances):
    mean = weights @ means
    dim = means.shape[1]
    second = sum(
        w * (v * np.eye(dim) + np.outer(m, m))
        for w, m, v in zip(weights, means, variances, strict=True)
    )
    return mean, second - np.outer(mean, mean)


def assert_matches_mixture(draws, weights, means, variances, *, weight_tol=0.03, z_bound=5.0):
    """Mode weights (nearest mean; modes are >= 8 std apart, so misassignment is ~1e-5) within
    ``weight_tol``; every mean and covariance entry within ``z_bound`` of its own Monte-Carlo
    standard error, estimated from the draws (so no Gaussian assumption on fourth moments).
    With 4000 draws the weight's standard error is <= 0.0066: 0.03 is 4.5 of them."""
    draws = np.asarray(draws, np.float64)
    assert np.all(np.isfinite(draws))
    n = draws.shape[0]
    nearest = np.argmin(((draws[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    found = np.bincount(nearest, minlength=len(weights)) / n
    weight_error = np.abs(found - weights).max()
    assert weight_error < weight_tol, f"mode weights {found.round(3)} vs {weights.round(3)}"
    mean, cov = _mixture_moments(weights, means, variances)
    z_mean = (draws.mean(0) - mean) / (draws.std(0) / math.sqrt(n))
    centerd = draws - mean
    products = centerd[:, :, None] * centerd[:, None, :]
    z_cov = (products.mean(0) - cov) / (products.std(0) / math.sqrt(n))
    worst = max(np.abs(z_mean).max(), np.abs(z_cov).max())
    assert worst < z_bound, f"moments off: max |z| = {worst:.1f} (bound {z_bound})"
    return weight_error, worst


VE = rs.schedules.ve(sigma_max=20.0)  # sigma_max well above the targets' spread (<= 6)
VP = rs.schedules.vp()
# VP uniform grids for the reverse-time methods; annealed Langevin in its native VE setting
# with Song & Ermon's eps = 2e-5 (h_i = 0.2 sigma_i^2).
SAMPLERS = {
    "sde": rs.ReverseDiffusion(VP, 200, "sde"),
    "ode": rs.ReverseDiffusion(VP, 18, "ode"),
    "pc": rs.ReverseDiffusion(VP, 100, "pc"),
    # the few-step methods on their own grids (log-SNR, Karras), EDM's with churn
    "dpmpp_2m": rs.ReverseDiffusion(VP, 20, "dpmpp_2m"),
    "edm": rs.ReverseDiffusion(VP, 32, "edm", s_churn=10.0),
    "annealed_langevin": rs.AnnealedLangevin(VE, 100, 10, step_size=2e-5),
}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("target", list(TARGETS))
def test_every_method_recovers_mode_weights_and_moments(target, sampler):
    weights, means, variances = TARGETS[target]
    settings = SAMPLERS[sampler]
    score = rs.scores.gaussian_mixture(weights, means, variances, schedule=settings.schedule)
    draws, info = rs.sample_batch(
        jax.random.key(1), score, settings, NUM_SAMPLES, (means.shape[1],), return_info=True
    )
    assert not info.is_divergent.any()
    assert_matches_mixture(draws, weights, means, variances)
    evals = int(info.num_score_evals[0])
    expected = {"sde": 201, "ode": 37, "pc": 201, "dpmpp_2m": 21, "edm": 65,
                "annealed_langevin": 1001}[sampler]  # fmt: skip
    assert evals == expected == settings.num_score_evals
    if sampler == "ode":
        assert evals <= 40  # Heun: 2 per step x 18 steps + 1 Tweedie


@pytest.mark.parametrize("method", ["dpmpp_2m", "edm"])
def test_few_step_solvers_converge_at_second_order(method):
    # the same prior draws pushed through 32 and 64 steps, against 1024: a second-order
    # solver's error falls about 4-fold per halving (measured 3.8-4.3), a first-order one's
    # about 2-fold (DPM-Solver++ with its second-order term dropped: 1.6). Under vp, so EDM's
    # sampler works on the scaled variable x / alpha (measured alike under edm and ve).
    schedule = VP
    weights, means, variances = TARGETS["unbalanced_d8"]
    score = rs.scores.gaussian_mixture(weights, means, variances, schedule=schedule)

    def draws(num_steps):
        settings = rs.ReverseDiffusion(schedule, num_steps, method, denoise=False)
        return np.asarray(rs.sample_batch(jax.random.key(0), score, settings, 256, (8,)))

    exact = draws(1024)
    coarse, fine = (np.sqrt(np.mean((draws(n) - exact) ** 2)) for n in (32, 64))
    assert coarse / fine > 3.0, (coarse, fine)


def test_edm_without_churn_is_heun_and_churn_stays_below_the_schedules_top():
    # under the EDM schedule (alpha = 1, t = sigma) the scaled variable is x itself, so EDM's
    # sampler with s_churn = 0 is the Heun PF-ODE on the same (Karras) grid
    schedule = rs.schedules.edm()
    score = rs.scores.gaussian_mixture(*TARGETS["ring_2d"], schedule=schedule)

    def draws(method, **churn):
        settings = rs.ReverseDiffusion(schedule, 12, method, **churn)
        return np.asarray(rs.sample_batch(jax.random.key(0), score, settings, 64, (2,)))

    heun = draws("ode")
    np.testing.assert_allclose(draws("edm"), heun, rtol=1e-4, atol=1e-4)
    churned = draws("edm", s_churn=40.0)
    assert np.all(np.isfinite(churned)) and not np.allclose(churned, heun, atol=1e-3)
    # churn only where the noise-to-signal ratio lies in [s_tmin, s_tmax]: outside, Heun
    np.testing.assert_allclose(draws("edm", s_churn=40.0, s_tmin=1e3), heun, rtol=1e-4, atol=1e-4)
    # the raised time never exceeds T (a time score need not exist above it)
    times = rs.kernels.reverse_diffusion._churn_times(VP, (1.0, 0.5, 0.01), 40.0, 0.0, math.inf)
    assert times[0] == VP.T and np.all(times[1:] > (0.5, 0.01))


def _trapped_score(schedule, dim):
    """The paper's Thm 1 target N(mu, I), ||mu|| = 7 sqrt(d), at every noise level, and its
    time trap (attractor slope 4, so Langevin in the trap sits at ||x|| ~ sqrt(d / 4))."""
    mu = jnp.full(dim, 7.0)

    def exact(x, t):
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        return -(x - alpha * mu) / (alpha**2 + sigma**2)

    return rs.scores.center_trap_time(exact, schedule, stiffness=4.0)


DIM_TRAP = 200
TARGET_NORM = math.sqrt(50.0)  # E||x|| / sqrt(d) for N(mu, I): sqrt(49 + 1) up to O(1/d)


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        rs.ReverseDiffusion(VP, 200, "sde"),
        rs.ReverseDiffusion(rs.schedules.ve(sigma_max=100.0), 50, "pc"),
        rs.AnnealedLangevin(rs.schedules.ve(sigma_max=100.0), 50, 5, step_size=2e-5),
    ],
    ids=["sde", "pc", "annealed_langevin"],
)
def test_annealed_samplers_are_not_fooled_by_a_trapped_score(settings):
    score = _trapped_score(settings.schedule, DIM_TRAP)
    draws = rs.sample_batch(jax.random.key(5), score, settings, 256, (DIM_TRAP,))
    norms = np.linalg.norm(np.asarray(draws), axis=1) / math.sqrt(DIM_TRAP)
    # per-draw sd of ||x||/sqrt(d) is ~0.07, so the mean of 256 has MC error ~0.005
    assert abs(norms.mean() - TARGET_NORM) < 0.03, norms.mean()
    assert norms.min() > 6.5  # not one draw in the trap (there ||x||/sqrt(d) ~ 0.5)


@pytest.mark.slow
def test_ula_with_the_same_score_at_t_min_stays_trapped():
    schedule = VP
    trap = _trapped_score(schedule, DIM_TRAP)
    ula = rs.ula(lambda x: trap(x, schedule.t_min), step_size=0.05)
    tree = rs.run(ula, jax.random.key(6), jnp.zeros((32, DIM_TRAP)), 1000, thin=250)
    norms = np.linalg.norm(tree.posterior["x"].values, axis=-1) / math.sqrt(DIM_TRAP)
    # ULA on -4x sits at sqrt(1 / (4 (1 - 0.05 * 4 / 2))) = 0.53 (per-draw sd ~0.03), a world
    # away from 7.07; no draw even reaches the blend shell at 4
    assert norms.mean() < 0.6, norms.mean()
    assert norms.max() < 1.0, norms.max()


def _exact_draws(key, weights, means, variances, n):
    key_component, key_noise = jax.random.split(key)
    component = np.asarray(jax.random.choice(key_component, len(weights), (n,), p=weights))
    noise = np.asarray(jax.random.normal(key_noise, (n, means.shape[1])))
    return jnp.asarray(means[component] + np.sqrt(variances[component])[:, None] * noise)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "method", "num_steps"),
    [("standard_d4", "sde", 30), ("unbalanced_d8", "ode", 10), ("unbalanced_d8", "pc", 30)],
)
def test_renoise_denoise_leaves_the_target_invariant(target, method, num_steps):
    if target == "standard_d4":
        weights, means, variances = np.ones(1), np.zeros((1, 4)), np.ones(1)
    else:
        weights, means, variances = TARGETS[target]
    schedule = VP
    score = rs.scores.gaussian_mixture(weights, means, variances, schedule=schedule)
    # t_start = 0.4: alpha = 0.43, sigma = 0.9, so the two modes (6 apart) half merge and a
    # wrong kernel would move mass between them
    sampler = rs.reverse_diffusion(score, schedule, num_steps, method=method, t_start=0.4)
    starts = _exact_draws(jax.random.key(11), weights, means, variances, 2000)
    tree = rs.run(sampler, jax.random.key(12), starts, 50, thin=50)
    assert not tree.sample_stats["diverging"].any()
    assert_matches_mixture(tree.posterior["x"].values[:, -1], weights, means, variances)


@pytest.mark.parametrize(
    ("build", "per_step"),
    [
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="sde"), 5 + 1),
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="ode"), 2 * 5 + 1),
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="pc", corrector_steps=2), 15 + 1),
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="sde", denoise=False), 5),
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="dpmpp_2m"), 5 + 1),
        (lambda s, sch: rs.reverse_diffusion(s, sch, 5, method="edm", s_churn=5.0), 2 * 5 + 1),
        (lambda s, sch: rs.annealed_langevin(s, sch, 4, 3, snr=0.16), 12 + 1),
    ],
    ids=["sde", "ode", "pc", "sde_no_denoise", "dpmpp_2m", "edm", "annealed_langevin"],
)
def test_reported_score_evaluations_are_the_ones_made(build, per_step):
    schedule = VP
    exact = rs.scores.gaussian(jnp.zeros(3), 1.0, schedule=schedule)
    calls = []

    def counted(x, t):
        jax.debug.callback(lambda: calls.append(1))
        return exact(x, t)

    sampler = build(counted, schedule)
    _, info = jax.jit(sampler.step)(jax.random.key(0), sampler.init(jnp.zeros(3)))
    jax.effects_barrier()
    assert len(calls) == int(info.num_score_evals) == per_step


def test_kernels_follow_blackjax_layout_and_run_with_pytrees():
    for api, module in (
        (rs.annealed_langevin, rs.kernels.annealed_langevin),
        (rs.reverse_diffusion, rs.kernels.reverse_diffusion),
    ):
        assert isinstance(api, blackjax.GenerateSamplingAPI)
        assert api.init is module.init and api.build_kernel is module.build_kernel
    schedule = VP
    exact = rs.scores.gaussian(jnp.zeros(3), 1.0, schedule=schedule)
    position = {"a": jnp.zeros(2), "b": jnp.zeros(())}
    settings = rs.ReverseDiffusion(schedule, 10, "ode")
    kernel = rs.reverse_diffusion.build_kernel()
    state = rs.reverse_diffusion.init(position, exact, settings)
    state, info = kernel(jax.random.key(0), state, exact, settings)
    assert jax.tree.structure(state.position) == jax.tree.structure(position)
    assert not bool(info.is_divergent)
    sampler = rs.annealed_langevin(exact, schedule, 5, 2, snr=0.16, t_start=0.5)
    tree = rs.run(sampler, jax.random.key(1), {"a": jnp.zeros((4, 2)), "b": jnp.zeros(4)}, 3)
    assert set(tree.posterior.data_vars) == {"a", "b"}
    assert tree.posterior["a"].shape == (4, 3, 2)
    assert int(tree.sample_stats["num_score_evals"].values[0, 0]) == 11
    # the multistep solver carries its memory inside one path, pytrees or not
    sampler = rs.reverse_diffusion(exact, schedule, 6, method="dpmpp_2m")
    tree = rs.run(sampler, jax.random.key(2), {"a": jnp.zeros((4, 2)), "b": jnp.zeros(4)}, 3)
    assert tree.posterior["a"].shape == (4, 3, 2) and np.isfinite(tree.posterior["b"]).all()
    assert int(tree.sample_stats["num_score_evals"].values[0, 0]) == 7


def test_batch_sampler_compiles_once():
    schedule = VP
    exact = rs.scores.gaussian(jnp.zeros(2), 1.0, schedule=schedule)
    traces = []

    def traced(x, t):
        traces.append(1)  # a Python side effect runs only while tracing
        return exact(x, t)

    first = rs.sample_batch(jax.random.key(0), traced, rs.ReverseDiffusion(schedule, 4), 8, (2,))
    count = len(traces)
    # an equal settings object built anew reuses the compiled program
    second = rs.sample_batch(jax.random.key(1), traced, rs.ReverseDiffusion(schedule, 4), 8, (2,))
    assert len(traces) == count
    assert first.shape == second.shape == (8, 2)
    assert not np.allclose(first, second)


def test_a_non_finite_score_is_flagged_not_hidden():
    schedule = VP
    exact = rs.scores.gaussian(jnp.zeros(2), 1.0, schedule=schedule)

    def breaks_at_low_noise(x, t):
        return jnp.where(t < 0.1, jnp.nan, 1.0) * exact(x, t)

    for method in rs.kernels.reverse_diffusion.METHODS:
        sampler = rs.reverse_diffusion(breaks_at_low_noise, schedule, 20, method=method)
        _, info = sampler.step(jax.random.key(0), sampler.init(jnp.zeros(2)))
        assert bool(info.is_divergent), method
    sampler = rs.annealed_langevin(breaks_at_low_noise, schedule, 10, 2, step_size=1e-5)
    _, info = sampler.step(jax.random.key(0), sampler.init(jnp.zeros(2)))
    assert bool(info.is_divergent)


_SCORE = rs.scores.gaussian(jnp.zeros(2), 1.0, schedule=VP)
_SETTINGS = rs.ReverseDiffusion(VP, 10)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rs.reverse_diffusion(None, VP, 10), "`time_score_fn` must be callable"),
        (lambda: rs.reverse_diffusion(_SCORE, "vp", 10), "`schedule` must be"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 0), "`num_steps` must be an integer >= 1"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 10, method="euler"), "`method` must be one"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 5, "edm", s_churn=-1.0), "`s_churn` must"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 5, "edm", s_tmin=2.0, s_tmax=1.0), "`s_tmin`"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 5, "edm", s_noise=0.0), "`s_noise` must"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 10, t_start=2.0), "`t_start` must lie"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 10, t_start=0.0), "`t_start` must lie"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 10, snr=-1.0), "`snr`"),
        (lambda: rs.reverse_diffusion(_SCORE, VP, 10, spacing="log"), "`spacing`"),
        (lambda: rs.annealed_langevin(_SCORE, VP, 0, 5, snr=0.1), "`num_levels`"),
        (lambda: rs.annealed_langevin(_SCORE, VP, 5, 0, snr=0.1), "`steps_per_level`"),
        (
            lambda: rs.annealed_langevin(_SCORE, VP, 5, 5, step_size=1e-3, snr=0.1),
            "at most one of `step_size`",
        ),
        (lambda: rs.annealed_langevin(_SCORE, VP, 5, 5, step_size=0.0), "`step_size`"),
        (lambda: rs.annealed_langevin(_SCORE, VP, 5, 5, snr=0.1, t_start=-1.0), "`t_start`"),
        (lambda: rs.annealed_langevin(_SCORE, VP, 5, 5, snr=0.1, denoise=1), "`denoise`"),
        (lambda: rs.ReverseDiffusion(VP, 10, "ddim"), "`method` must be one"),
        (lambda: rs.sample_batch(jax.random.key(0), _SCORE, _SETTINGS, 0, (2,)), "`num_samples`"),
        (lambda: rs.sample_batch(jax.random.key(0), _SCORE, _SETTINGS, 4, ()), "`event_shape`"),
        (lambda: rs.sample_batch(jax.random.key(0), _SCORE, VP, 4, (2,)), "`settings` must be"),
        (
            lambda: rs.numpyro.ScoreDiffusion(potential_fn=abs, time_score_fn=_SCORE, settings=VP),
            "`settings` must be",
        ),
    ],
)
def test_bad_settings_raise_clear_errors_at_construction(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build()


@pytest.mark.parametrize(
    ("score", "message"),
    [
        (lambda x: -x, "`time_score_fn` could not be evaluated"),  # untimed signature
        (lambda x, t: jnp.zeros(3), "`time_score_fn` must return arrays shaped like"),
        (lambda x, t: x.astype(jnp.int32), "`time_score_fn` must return the position's dtype"),
        (lambda x, t: {"x": x}, "`time_score_fn` must return a pytree with the structure"),
    ],
)
@pytest.mark.parametrize("factory", ["reverse_diffusion", "annealed_langevin", "sample"])
def test_a_wrong_time_score_is_rejected_at_init(score, message, factory):
    with pytest.raises((TypeError, ValueError), match=message):
        if factory == "reverse_diffusion":
            rs.reverse_diffusion(score, VP, 10).init(jnp.zeros(2))
        elif factory == "annealed_langevin":
            rs.annealed_langevin(score, VP, 5, 2, snr=0.16).init(jnp.zeros(2))
        else:
            rs.sample_batch(jax.random.key(0), score, _SETTINGS, 4, (2,))


def test_settings_are_frozen_resolved_and_equal_when_they_mean_the_same():
    explicit = rs.ReverseDiffusion(VP, 10, "sde", t_start=VP.T, spacing="uniform")
    default = rs.ReverseDiffusion(VP, 10)
    assert explicit == default and hash(explicit) == hash(default)
    assert default.t_start == VP.T and default.spacing == VP.default_spacing
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.num_steps = 5
    assert rs.ReverseDiffusion(VP, 10, "pc", corrector_steps=3).num_score_evals == 41
    assert rs.AnnealedLangevin(VE, 7, 3, snr=0.1, denoise=False).num_score_evals == 21
    edm = rs.AnnealedLangevin(rs.schedules.edm(), 4, 1, step_size=1e-3)
    assert edm.spacing == "karras"
    # the few-step methods default to the grid they were designed on, unless one is named
    assert rs.ReverseDiffusion(VP, 10, "dpmpp_2m").spacing == "logsnr"
    assert rs.ReverseDiffusion(VP, 10, "edm").spacing == "karras"
    assert rs.ReverseDiffusion(VP, 10, "edm", spacing="uniform").spacing == "uniform"
    # a settings object builds the same sampler as the factory's keywords
    algorithm = rs.AnnealedLangevin(VE, 4, 2, snr=0.16).sampling_algorithm(_SCORE_VE)
    factory = rs.annealed_langevin(_SCORE_VE, VE, 4, 2, snr=0.16)
    key, state = jax.random.key(3), algorithm.init(jnp.zeros(2))
    np.testing.assert_array_equal(
        algorithm.step(key, state)[0].position, factory.step(key, state)[0].position
    )


_SCORE_VE = rs.scores.gaussian(jnp.zeros(2), 1.0, schedule=VE)
