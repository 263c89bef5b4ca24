"""The cases the trap report is calibrated and validated on: runs built as a user builds them.

Every case builds a target, a sampler and chain starts, runs the sampler, and lists the
inputs a user could pass to ``rs.diagnostics.trap_report`` at up to three levels:
``sampler`` (``sampler=`` only), ``sampler + time score`` (plus the target's exact time score
under VP, or the learned one; for unadjusted samplers also ``step_size=`` and
``sampler_at=``) and ``+ training data`` (plus ``train_data=`` and ``starts=``).

``Case(name, kind, dim, build, expect)``; ``build(seed)`` returns
``dict(data=..., reports=[(level, trap_report kwargs), ...], extra={...})``. Kinds and the
right reading (``expect``): ``trap`` (``fail``), ``clean`` (not ``warn``/``fail``;
``unconverged`` allowed), ``user`` (the learned-score scenarios U1-U3, each with its own).
Even seeds are the tuning half, odd seeds held out; thresholds are chosen on tuning seeds
only, and reported on a fresh range of seeds (``--first-seed``) chosen after them.
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

NUM_CHAINS, NUM_STEPS = 4, 1000
VP = rs.schedules.vp()

SAMPLER = "sampler"
TIME = "sampler + time score"
TRAIN = "+ training data"


@dataclass
class Case:
    name: str
    kind: str  # "trap" | "clean" | "user"
    dim: int
    build: Callable  # seed -> dict(data=..., reports=[(level, kwargs)], extra={})
    expect: str  # "fail" | "not warn/fail" | "ok" | "not ok" | ...


def _keys(seed):
    return jax.random.split(jax.random.key(seed), 3)  # start, run, report


def _run(sampler, key, starts, num_steps=NUM_STEPS, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rs.run(sampler, key, starts, num_steps, **kwargs)


def _scales(dim):
    """Anisotropic standard deviations, log-spaced over two decades."""
    return np.geomspace(0.3, 3.0, dim)


def _whitened(score_white, scale):
    return lambda x: score_white(x / scale) / scale


def _normal_starts(key, dim, scale=1.0, center=0.0, num_chains=NUM_CHAINS):
    return center + scale * jax.random.normal(key, (num_chains, dim))


def _standard(
    sampler, starts, time_score, step=None, seed=0, num_steps=NUM_STEPS, levels=(SAMPLER, TIME)
):
    """Run ``sampler`` from ``starts(key)`` and make the two standard report levels."""
    key_start, key_run, key_report = _keys(seed)
    x0 = starts(key_start)
    tree = _run(sampler, key_run, x0, num_steps)
    reports = []
    for level in levels:
        kwargs = {"sampler": sampler, "rng_key": key_report}
        if level != SAMPLER:
            kwargs.update(time_score_fn=time_score, schedule=VP)
            if step is not None:
                kwargs.update(step_size=step[0], sampler_at=step[1])
        reports.append((level, kwargs))
    return {"data": tree, "reports": reports, "extra": {}, "starts": x0}


# ----------------------------------------------------------------------------------- traps


def off_center_trap(dim):
    """(a) calibration's off-center trap in an anisotropic Gaussian."""

    def build(seed):
        scale = jnp.asarray(_scales(dim))
        sqrt_d = math.sqrt(dim)
        center = jnp.full(dim, 3.0)
        white = rs.scores.center_trap(
            rs.scores.gaussian(jnp.zeros(dim), 1.0),
            center,
            r_in=max(0.6 * sqrt_d, 1.0),
            r_out=max(0.8 * sqrt_d, 1.4),
            stiffness=25.0,
        )
        trapped = _whitened(white, scale)
        return _standard(
            rs.ula(trapped, 0.002),
            lambda k: _normal_starts(k, dim, 0.05 * scale, center * scale),
            rs.scores.gaussian(jnp.zeros(dim), scale**2, schedule=VP),
            step=(0.002, lambda h: rs.ula(trapped, h)),
            seed=seed,
        )

    return build


def narrow_well(dim=2):
    """(b) a narrow off-center well (r_in 0.5, r_out 0.75, stiffness 50) 2.5 sd from the
    center of N(0, I); chains start inside it."""

    def build(seed):
        center = jnp.zeros(dim).at[0].set(2.5)
        exact = rs.scores.gaussian(jnp.zeros(dim), 1.0)
        trapped = rs.scores.center_trap(exact, center, r_in=0.5, r_out=0.75, stiffness=50.0)
        # curvature 50 inside the well: h = 0.005 is stable (relaxes in 4 steps); the
        # target's own relaxation time 1 is 200 steps
        return _standard(
            rs.ula(trapped, 0.005),
            lambda k: _normal_starts(k, dim, 0.05, center),
            rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
            step=(0.005, lambda h: rs.ula(trapped, h)),
            seed=seed,
        )

    return build


def _two_modes(dim, separation=8.0):
    means = np.zeros((2, dim))
    means[0, 0], means[1, 0] = -separation / 2, separation / 2
    return means


def well_between_modes(dim):
    """(c) calibration's spurious well between two mixture modes."""

    def build(seed):
        means = _two_modes(dim)
        exact = rs.scores.gaussian_mixture(np.ones(2), means, 1.0)
        radius = max(0.3 * math.sqrt(dim), 0.8)
        well = rs.scores.center_trap(
            exact, jnp.zeros(dim), r_in=radius, r_out=1.5 * radius, stiffness=25.0
        )
        return _standard(
            rs.ula(well, 0.005),
            lambda k: _normal_starts(k, dim, 0.05),
            rs.scores.gaussian_mixture(np.ones(2), means, 1.0, schedule=VP),
            step=(0.005, lambda h: rs.ula(well, h)),
            seed=seed,
        )

    return build


def mode_dropping(dim):
    """(d) calibration's chains that never leave one of two modes 8 sd apart."""

    def build(seed):
        means = _two_modes(dim)
        score = rs.scores.gaussian_mixture(np.ones(2), means, 1.0)
        return _standard(
            rs.ula(score, 0.05),
            lambda k: _normal_starts(k, dim, 1.0, jnp.asarray(means[0])),
            rs.scores.gaussian_mixture(np.ones(2), means, 1.0, schedule=VP),
            step=(0.05, lambda h: rs.ula(score, h)),
            seed=seed,
        )

    return build


def paper_center_trap(dim):
    """(e) the paper's Thm 1 trap (robust_score/paper/demo.py): target N(7 * 1, I), the
    attractor -x inside ||x|| <= 4 sqrt(d) (exact outside 5 sqrt(d)); every chain starts at
    the trap's center, the origin; ULA h = 0.1."""

    def build(seed):
        mean = jnp.full(dim, 7.0)
        exact = rs.scores.gaussian(mean, 1.0)
        trapped = rs.scores.center_trap(exact)
        return _standard(
            rs.ula(trapped, 0.1),
            lambda k: jnp.zeros((NUM_CHAINS, dim)),
            rs.scores.gaussian(mean, 1.0, schedule=VP),
            step=(0.1, lambda h: rs.ula(trapped, h)),
            seed=seed,
        )

    return build


def memorization(dim, num_train=100):
    """Calibration's memorization case (Thm 7 wells, stiffness 400) with train_data/starts."""

    def build(seed):
        train = jax.random.normal(jax.random.key(123), (num_train, dim))
        memorizing = rs.scores.memorization_trap(
            rs.scores.gaussian(jnp.zeros(dim), 1.0), train, stiffness=400.0
        )

        def starts(key):
            return train[jax.random.choice(key, num_train, (NUM_CHAINS,), replace=False)]

        out = _standard(
            rs.ula(memorizing, 0.001),
            starts,
            rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
            step=(0.001, lambda h: rs.ula(memorizing, h)),
            seed=seed,
        )
        kwargs = dict(out["reports"][-1][1], train_data=train, starts=out["starts"])
        out["reports"].append((TRAIN, kwargs))
        return out

    return build


# ----------------------------------------------------------------------------------- clean


def clean_mala_isotropic(dim):
    def build(seed):
        logdensity = rs.scores.gaussian_logdensity(jnp.zeros(dim), 1.0)
        return _standard(
            rs.mala(logdensity, 0.8 * dim ** (-1 / 3)),
            lambda k: _normal_starts(k, dim),
            rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
            seed=seed,
        )

    return build


def clean_mala(dim):
    def build(seed):
        scale = jnp.asarray(_scales(dim))
        logdensity = rs.scores.gaussian_logdensity(jnp.zeros(dim), scale**2)
        step = 0.5 * 0.3**2 * dim ** (-1 / 3)
        return _standard(
            rs.mala(logdensity, step),
            lambda k: _normal_starts(k, dim, scale),
            rs.scores.gaussian(jnp.zeros(dim), scale**2, schedule=VP),
            seed=seed,
        )

    return build


def slow_ula(dim):
    def build(seed):
        score = rs.scores.gaussian(jnp.zeros(dim), 1.0)
        return _standard(
            rs.ula(score, 0.002),
            lambda k: _normal_starts(k, dim),
            rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
            step=(0.002, lambda h: rs.ula(score, h)),
            seed=seed,
        )

    return build


def _mixture_draws(key, weights, means, num):
    key_c, key_x = jax.random.split(key)
    component = jax.random.choice(key_c, len(weights), (num,), p=jnp.asarray(weights))
    x = jnp.asarray(means)[component] + jax.random.normal(key_x, (num, means.shape[1]))
    return x


def mixture_exact_starts(dim, num_modes, num_chains, weights=None, separation=10.0):
    """A clean mixture of ``num_modes`` unit-sd Gaussians, means ``separation`` along
    orthogonal axes (pairwise ``separation * sqrt 2`` apart; a regular polygon with those
    sides when there are more modes than dimensions), exact-score MALA; each chain
    starts at an exact draw of the mixture, so each stays in the mode it started in and the
    run is exactly stationary."""
    weights = np.ones(num_modes) / num_modes if weights is None else np.asarray(weights)
    means = np.zeros((num_modes, dim))
    if num_modes <= dim:
        for k in range(num_modes):
            means[k, k] = separation
    else:  # a regular polygon in the first two coordinates, sides separation * sqrt 2
        radius = separation * math.sqrt(2) / (2 * math.sin(math.pi / num_modes))
        for k in range(num_modes):
            angle = 2 * math.pi * k / num_modes
            means[k, :2] = radius * math.cos(angle), radius * math.sin(angle)

    def build(seed):
        logdensity = rs.scores.gaussian_mixture_logdensity(weights, means, 1.0)
        key_start, key_run, key_report = _keys(seed)
        x0 = _mixture_draws(key_start, weights, means, num_chains)
        sampler = rs.mala(logdensity, 0.8 * dim ** (-1 / 3))
        tree = _run(sampler, key_run, x0)
        time_score = rs.scores.gaussian_mixture(weights, means, 1.0, schedule=VP)
        reports = [
            (SAMPLER, {"sampler": sampler, "rng_key": key_report}),
            (
                TIME,
                {
                    "sampler": sampler,
                    "rng_key": key_report,
                    "time_score_fn": time_score,
                    "schedule": VP,
                },
            ),
        ]
        start_modes = np.argmin(
            np.linalg.norm(np.asarray(x0)[:, None, :] - means[None], axis=-1), axis=1
        )
        extra = {"start_modes": [int(m) for m in start_modes]}
        return {"data": tree, "reports": reports, "extra": extra}

    return build


SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def eight_schools(sigma, y=None):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def nuts_eight_schools(dim=10):
    def build(seed):
        from numpyro.infer import MCMC, NUTS

        key_run, key_report = jax.random.split(jax.random.key(seed))
        mcmc = MCMC(
            NUTS(eight_schools),
            num_warmup=NUM_STEPS,
            num_samples=NUM_STEPS,
            num_chains=NUM_CHAINS,
            chain_method="vectorized",
            progress_bar=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mcmc.run(key_run, SIGMA, y=Y)
        return {"data": mcmc, "reports": [(SAMPLER, {"rng_key": key_report})], "extra": {}}

    return build


# ------------------------------------------------------------------- the new user's runs

USER_WEIGHTS = np.array([0.6, 0.3, 0.1])
USER_SD = 0.5
# pairwise 4.0 apart: 8 component sd (at 6 sd, 3.0 apart, the chains of U2 crossed between
# modes within 8000 steps; the chains never did)
USER_MEANS = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0 * math.sqrt(3.0)]])
USER_NUM_TRAIN, USER_NUM_HOLDOUT = 2000, 500
USER_SIGMA = 0.1  # the learned score's lowest noise level: ULA runs at it
USER_STEP = 1e-3  # well below sigma^2 = 0.01
_USER = {}


def user_problem():
    """The new user's data and learned score (trained once per process, fixed keys: the
    dataset and the network are the user's, the seeds vary the runs)."""
    if "trained" not in _USER:
        key_data, key_holdout, key_train = jax.random.split(jax.random.key(2026), 3)
        train = _user_draws(key_data, USER_NUM_TRAIN)
        holdout = _user_draws(key_holdout, USER_NUM_HOLDOUT)
        low = float(rs.schedules.vp().t_of_sigma(USER_SIGMA))
        schedule = rs.schedules.vp(t_min=low)
        trained = rs.learn.train_dsm(
            train, schedule, rng_key=key_train, num_steps=3000, hidden=(128, 128, 128)
        )
        _USER.update(train=train, holdout=holdout, trained=trained, schedule=schedule)
    return _USER


def _user_draws(key, num):
    key_c, key_x = jax.random.split(key)
    component = jax.random.choice(key_c, 3, (num,), p=jnp.asarray(USER_WEIGHTS))
    return jnp.asarray(USER_MEANS)[component] + USER_SD * jax.random.normal(key_x, (num, 2))


def mode_weights(points) -> list[float]:
    """Fraction of ``points`` (..., 2) nearest to each of the three means."""
    flat = np.asarray(points).reshape(-1, 2)
    nearest = np.argmin(np.linalg.norm(flat[:, None, :] - USER_MEANS[None], axis=-1), axis=1)
    return [round(float(np.mean(nearest == k)), 4) for k in range(3)]


def _diffusion_settings(schedule):
    return rs.ReverseDiffusion(schedule, 20, method="dpmpp_2m")


def _user_report_kwargs(ula, user, starts, key_report):
    return {
        "sampler": ula,
        "time_score_fn": user["trained"].time_score_fn,
        "schedule": user["schedule"],
        "train_data": user["train"],
        "holdout": user["holdout"],
        "starts": starts,
        "rng_key": key_report,
    }


def _second_half(tree):
    x = np.asarray(tree.posterior["x"].values)
    return x[:, x.shape[1] // 2 :]


def _run_weights(tree, starts, num_chains, num_steps) -> dict:
    """The mode weights a user scenario records: kept draws, all draws, starts."""
    return {
        "weights": mode_weights(_second_half(tree)),
        "weights_all_draws": mode_weights(tree.posterior["x"].values),
        "start_weights": mode_weights(starts),
        "num_chains": num_chains,
        "num_steps": num_steps,
    }


def user_u1(num_chains=256, num_steps=4000):
    """U1: 256 ULA chains with the learned score at sigma = 0.1, started from reverse-diffusion
    draws (dpmpp_2m, 20 steps) of the same network. Expected: ok."""

    def build(seed):
        user = user_problem()
        trained = user["trained"]
        key_start, key_run, key_report = _keys(seed)
        starts = rs.sample_batch(
            key_start, trained.time_score_fn, _diffusion_settings(user["schedule"]),
            num_chains, (2,),
        )  # fmt: skip
        ula = rs.ula(trained.score_fn, USER_STEP)
        tree = _run(ula, key_run, starts, num_steps)
        kwargs = _user_report_kwargs(ula, user, starts, key_report)
        extra = _run_weights(tree, starts, num_chains, num_steps)
        extra.update(
            holdout_weights=mode_weights(user["holdout"]),
            train_weights=mode_weights(user["train"]),
        )
        reports = [("user", kwargs), ("user + score_fn", dict(kwargs, score_fn=trained.score_fn))]
        return {"data": tree, "reports": reports, "extra": extra}

    return build


def user_u2(num_steps=8000, num_chains=8):
    """U2: 8 ULA chains started at 8 training points. Expected: not ok (weights inherited
    from the starts, or memorization)."""

    def build(seed):
        user = user_problem()
        trained, train = user["trained"], user["train"]
        key_start, key_run, key_report = _keys(seed)
        index = jax.random.choice(key_start, train.shape[0], (num_chains,), replace=False)
        starts = train[index]
        ula = rs.ula(trained.score_fn, USER_STEP)
        tree = _run(ula, key_run, starts, num_steps)
        kwargs = _user_report_kwargs(ula, user, starts, key_report)
        extra = _run_weights(tree, starts, num_chains, num_steps)
        return {"data": tree, "reports": [("user", kwargs)], "extra": extra}

    return build


def user_u3(num_array=1024):
    """U3: independent reverse-diffusion draws (dpmpp_2m, 20 steps). As a plain array of
    ``num_array`` draws (before: a TypeError, recorded as a crash), and wrapped as DataTrees
    with ``arviz_base.from_dict``: 256 chains x 16 draws (the issue's wrap), 256 x 32, and
    one chain of 4096 draws."""

    def build(seed):
        import arviz_base

        user = user_problem()
        trained = user["trained"]
        key_draws, _, key_report = _keys(seed)
        draws = rs.sample_batch(
            key_draws, trained.time_score_fn, _diffusion_settings(user["schedule"]), 8192,
            (2,),
        )  # fmt: skip
        arr = np.asarray(draws)
        base = {"reference": user["holdout"], "train_data": user["train"], "rng_key": key_report}

        def tree(chains, per_chain):
            x = arr[: chains * per_chain].reshape(chains, per_chain, 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return arviz_base.from_dict({"posterior": {"x": x}})

        settings = _diffusion_settings(user["schedule"])
        with_settings = dict(base, sampler=settings, time_score_fn=trained.time_score_fn)
        reports = [
            (f"array {num_array}", dict(base, _data=arr[:num_array])),
            (f"array {num_array} + settings", dict(with_settings, _data=arr[:num_array])),
            ("DataTree 256x16", dict(base, _data=tree(256, 16))),
            ("DataTree 256x32", dict(base, _data=tree(256, 32))),
            ("DataTree 1x4096", dict(base, _data=tree(1, 4096))),
        ]
        extra = {"weights": mode_weights(arr[:num_array]), "weights_8192": mode_weights(arr)}
        return {"data": arr, "reports": reports, "extra": extra}

    return build


# ------------------------------------------------------------------------------- registry

CASES = [
    # traps, sampler alone and with the exact time score
    Case("off-center trap, anisotropic Gaussian", "trap", 2, off_center_trap(2), "fail"),
    Case("off-center trap, anisotropic Gaussian", "trap", 10, off_center_trap(10), "fail"),
    Case("narrow off-center well (r_in 0.5)", "trap", 2, narrow_well(2), "fail"),
    Case("well between mixture modes", "trap", 2, well_between_modes(2), "fail"),
    Case("well between mixture modes", "trap", 10, well_between_modes(10), "fail"),
    Case("chains never leave one mode", "trap", 2, mode_dropping(2), "fail"),
    Case("chains never leave one mode", "trap", 10, mode_dropping(10), "fail"),
    Case("paper center trap (Thm 1), chains at center", "trap", 2, paper_center_trap(2), "fail"),
    Case("paper center trap (Thm 1), chains at center", "trap", 10, paper_center_trap(10), "fail"),
    Case("memorization (Thm 7)", "trap", 10, memorization(10), "fail"),
    # clean
    Case("clean MALA, isotropic Gaussian", "clean", 2, clean_mala_isotropic(2), "not warn/fail"),
    Case("clean MALA, isotropic Gaussian", "clean", 10, clean_mala_isotropic(10), "not warn/fail"),
    Case(
        "clean MALA, isotropic Gaussian", "clean", 100, clean_mala_isotropic(100), "not warn/fail"
    ),
    Case("clean MALA, anisotropic Gaussian", "clean", 2, clean_mala(2), "not warn/fail"),
    Case("clean MALA, anisotropic Gaussian", "clean", 10, clean_mala(10), "not warn/fail"),
    Case("clean MALA, anisotropic Gaussian", "clean", 100, clean_mala(100), "not warn/fail"),
    Case("clean ULA, slowly mixing", "clean", 10, slow_ula(10), "not warn/fail"),
    Case("clean ULA, slowly mixing", "clean", 100, slow_ula(100), "not warn/fail"),
    Case("NumPyro eight schools, NUTS", "clean", 10, nuts_eight_schools(), "not warn/fail"),
    Case(
        "4-mode mixture, 4 chains at exact draws",
        "clean",
        1000,
        mixture_exact_starts(1000, 4, 4),
        "not warn/fail",
    ),  # fmt: skip
    Case(
        "3-mode mixture, 64 chains at exact draws",
        "clean",
        2,
        mixture_exact_starts(2, 3, 64, weights=[0.5, 0.3, 0.2]),
        "ok",
    ),  # fmt: skip
    Case(
        "3-mode mixture, 64 chains at exact draws",
        "clean",
        10,
        mixture_exact_starts(10, 3, 64, weights=[0.5, 0.3, 0.2]),
        "ok",
    ),  # fmt: skip
    # the new user's scenarios
    Case("U1: 256 ULA chains from diffusion draws", "user", 2, user_u1(), "ok"),
    Case("U2: 8 ULA chains from training points, 8000 steps", "user", 2, user_u2(8000), "not ok"),
    Case("U2: 8 ULA chains from training points, 4000 steps", "user", 2, user_u2(4000), "not ok"),
    Case("U2: 8 ULA chains from training points, 40000 steps", "user", 2, user_u2(40000), "not ok"),
    Case(
        "U3: independent diffusion draws, reference + train_data",
        "user",
        2,
        user_u3(1024),
        "not warn/fail (not a crash)",
    ),  # fmt: skip
]
