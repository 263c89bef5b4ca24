"""Per-step overhead of the library's loops against the loops a user would write by hand
(``jax.lax.scan``, same update, same keys), and of ``rs.mala`` against ``blackjax.mala``; each
cell with an A/A control (the reference built and compiled twice). See docs/benchmarks.md.

Run: .venv/bin/python benchmarks/overhead.py [--quick] [--out overhead.json]
"""

from functools import partial

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.util import run_inference_algorithm
from timing import compare, log, script

import robust_score as rs

SCHEDULE = rs.schedules.vp()
ULA_STEP = 0.1
AL_EPS = 2e-5  # NCSN rule h_i = eps sigma_i^2 / sigma_min^2
AL_STEPS = 5  # Langevin moves per noise level
# rough seconds per step: fixed + per (chain, coordinate) entry, to size cells to `target_s`
COST = {"ULA": (1.7e-7, 1.0e-8), "diffusion": (1.7e-7, 1.3e-8), "MALA": (3.5e-7, 1.5e-8)}


def score(x):
    return -x


def time_score(x, t):
    return -x


def num_steps(kind, dim, chains, target_s):
    fixed, per_entry = COST[kind]
    return int(min(max(target_s / (fixed + per_entry * dim * chains), 10), 1_000_000))


def hand_ula(steps):
    """ULA with ``rs.sample_chains``'s keys: ``fold_in(fold_in(key, chain), step)``."""
    scale = jnp.sqrt(2.0 * ULA_STEP)

    def run(key, x0):
        chain_keys = jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(x0.shape[0]))

        def step(x, i):
            keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, i)
            z = jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape, xi.dtype))(keys, x)
            return x + ULA_STEP * score(x) + scale * z, None

        return jax.lax.scan(step, x0, jnp.arange(steps))[0]

    return jax.jit(run)


def schedule_levels(num_steps):
    """t, alpha, sigma, f(t), g(t)^2 on ``vp().time_grid(num_steps)``, as float32 constants."""

    def on_grid():
        t = SCHEDULE.time_grid(num_steps)
        s = SCHEDULE
        return t, s.alpha(t), s.sigma(t), s.drift_coefficient(t), s.diffusion_squared(t)

    return [np.asarray(a, np.float32) for a in jax.jit(on_grid)()]


def hand_diffusion(kind, moves, chains, dim):
    """One path per chain from the prior, ``moves`` moves, Tweedie's step at the end, with
    ``rs.sample_batch``'s keys: ``split(key, chains)``, then start / path, then per move."""
    if kind == "annealed Langevin":
        t, alpha, sigma, _, _ = schedule_levels(moves // AL_STEPS - 1)
        h = AL_EPS * (sigma / sigma[-1]) ** 2
        inputs = (np.repeat(t, AL_STEPS), np.repeat(h, AL_STEPS))

        def move(x, key, t, h):
            return x + h * time_score(x, t) + jnp.sqrt(2.0 * h) * jax.random.normal(key, x.shape)
    else:
        t, alpha, sigma, drift, g2 = schedule_levels(moves)
        inputs = (t[:-1], t[1:], drift[:-1], g2[:-1])

        def move(x, key, t, t_next, f, g2):
            dt = t - t_next
            noise = jax.random.normal(key, x.shape)
            return x + dt * (g2 * time_score(x, t) - f * x) + jnp.sqrt(g2 * dt) * noise

    prior_std = SCHEDULE.prior_std()

    def path(key):
        key_start, key_path = jax.random.split(key)
        x = prior_std * jax.random.normal(key_start, (dim,))
        keys = jax.random.split(key_path, moves)
        x, _ = jax.lax.scan(lambda x, a: (move(x, *a), None), x, (keys, *inputs))
        return (x + sigma[-1] ** 2 * time_score(x, t[-1])) / alpha[-1]

    return jax.jit(lambda key: jax.vmap(path)(jax.random.split(key, chains)))


def measure(sampler, dim, chains, steps, library, make_reference, repeats, same_draws=()):
    """Rows comparing each ``library`` callable with ``make_reference()``; a second
    ``make_reference()`` is the A/A control. ``same_draws``: drivers whose output must equal
    the reference's (the largest difference is recorded)."""
    reference = make_reference()
    times = compare({**library, "reference": reference, "copy": make_reference()}, repeats)
    ref, rows = times["reference"], []
    for driver, fn in library.items():
        lib = times[driver]
        same = driver in same_draws
        rows.append(
            {"sampler": sampler, "driver": driver, "dim": dim, "chains": chains, "steps": steps}
        )
        rows[-1].update(
            lib_us_per_step=lib["run_s"] / steps * 1e6,
            ref_us_per_step=ref["run_s"] / steps * 1e6,
            ratio=lib["run_s"] / ref["run_s"],
            cpu_ratio=lib["cpu_s"] / ref["cpu_s"],
            aa_ratio=times["copy"]["run_s"] / ref["run_s"],
            lib_run_s=lib["run_s"],
            lib_compile_s=lib["compile_s"],
            ref_compile_s=ref["compile_s"],
            max_abs_diff=float(jnp.max(jnp.abs(fn() - reference()))) if same else None,
        )
        log(*(f"{v:.3g}" if isinstance(v, float) else v for v in rows[-1].values()))
    return rows


def ula_rows(dim, chains, target_s, repeats):
    steps = num_steps("ULA", dim, chains, target_s)
    key, x0 = jax.random.key(1), jnp.zeros((chains, dim))
    ula = rs.ula(score, ULA_STEP)
    library = {
        "rs.sample_chains": lambda: rs.sample_chains(ula, key, x0, steps, thin=steps)[0][:, 0],
        "rs.run": lambda: rs.run(ula, key, x0, steps, thin=steps).posterior["x"].values[:, 0],
    }
    reference = lambda: partial(hand_ula(steps), key, x0)  # noqa: E731
    return measure("ULA", dim, chains, steps, library, reference, repeats, set(library))


def diffusion_rows(sampler, dim, chains, target_s, repeats):
    moves = num_steps("diffusion", dim, chains, target_s)
    key, x0 = jax.random.key(2), jnp.zeros((chains, dim))
    if sampler == "annealed Langevin":
        levels = max(2, moves // AL_STEPS)
        moves = levels * AL_STEPS
        args = (SCHEDULE, levels, AL_STEPS)
        settings = rs.AnnealedLangevin(*args, step_size=AL_EPS)
        algorithm = rs.annealed_langevin(time_score, *args, step_size=AL_EPS)
    else:
        settings = rs.ReverseDiffusion(SCHEDULE, moves, "sde")
        algorithm = rs.reverse_diffusion(time_score, SCHEDULE, moves, "sde")
    library = {
        "rs.sample_batch": lambda: rs.sample_batch(key, time_score, settings, chains, (dim,)),
        "rs.sample_chains": lambda: rs.sample_chains(algorithm, key, x0, 1)[0][:, 0],
    }
    reference = lambda: partial(hand_diffusion(sampler, moves, chains, dim), key)  # noqa: E731
    return measure(sampler, dim, chains, moves, library, reference, repeats, {"rs.sample_batch"})


def logdensity(x):
    return -0.5 * jnp.sum(x**2)


def mala_rows(dim, chains, target_s, repeats):
    """Both kernels through ``rs.sample_chains`` (last draw kept) and, for one chain, through
    ``run_inference_algorithm`` inside one ``jax.jit``. Same keys, proposal and accept test:
    draws agree up to the rounding of the MH log ratio."""
    steps = num_steps("MALA", dim, chains, target_s)
    key, x0 = jax.random.key(3), jax.random.normal(jax.random.key(4), (chains, dim))
    h = 0.5 * dim ** (-1 / 3)

    def in_sample_chains(algorithm):
        return lambda: rs.sample_chains(algorithm, key, x0, steps, thin=steps)[0]

    def in_run_inference_algorithm(algorithm):
        def program(key):
            state, _ = run_inference_algorithm(
                key, algorithm, steps, initial_position=x0[0], transform=lambda *_: None
            )
            return state.position

        return partial(jax.jit(program), key)

    drivers = {"rs.sample_chains": in_sample_chains}
    if chains == 1:
        drivers["run_inference_algorithm"] = in_run_inference_algorithm
    rows = []
    for name, driver in drivers.items():
        library = {name: driver(rs.mala(logdensity, h))}
        reference = partial(lambda driver: driver(blackjax.mala(logdensity, h)), driver)
        rows += measure("MALA", dim, chains, steps, library, reference, repeats, {name})
    return rows


def main(quick=False):
    dims, chains_list = ((2, 100), (1, 100)) if quick else ((2, 100, 1000), (1, 100, 1000))
    target_s, repeats = (0.05, 2) if quick else (0.2, 5)
    rows = []
    for dim in dims:
        for chains in chains_list:
            rows += ula_rows(dim, chains, target_s, repeats)
            for sampler in ("annealed Langevin", "reverse SDE"):
                rows += diffusion_rows(sampler, dim, chains, target_s, repeats)
            rows += mala_rows(dim, chains, target_s, repeats)
    return rows


if __name__ == "__main__":
    script(main, __doc__, "overhead.json")
