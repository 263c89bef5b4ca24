"""Overhead of the library's drivers, in one run: ULA (``rs.run``, ``rs.sample_chains``, the
raw kernel) and MALA with every draw kept against hand-written scans with the same keys, the
end-of-run check alone, ``ScoreLangevin`` against ``rs.run``, ``rs.sample_chains`` against
``rs.sample_batch`` for the diffusion kernels, and peak memory (in a fresh process:
``python -m benchmarks.overhead memory DIM``). Each timing has an A/A control.

Run: .venv/bin/python -m benchmarks.overhead [--quick] [--out FILE]
"""

import gc
import warnings
from functools import partial

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro

import robust_score as rs
from robust_score.run_health import convergence_problems

from .timing import child_json, compare, goal, log, script, table, timed

SCHEDULE = rs.schedules.vp()
FULL = {"ula": 2000, "mala": 20_000, "numpyro": 50_000, "moves": 500, "memory_dim": 10_000}
QUICK = {"ula": 200, "mala": 2000, "numpyro": 5000, "moves": 50, "memory_dim": 1000}


def score(x):
    return -x


def logdensity(x):
    return -0.5 * jnp.sum(x**2)


def step_keys(key, chains):
    """``rs.sample_chains``'s keys: chain ``c``'s step ``i``: ``fold_in(fold_in(key, c), i)``."""
    keys = jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(chains))
    return lambda i: jax.vmap(jax.random.fold_in, (0, None))(keys, i)


def hand_ula(steps, h):
    """ULA written out as a user would, with ``rs.sample_chains``'s keys; last draw kept."""

    def run(key, x0):
        keys = step_keys(key, x0.shape[0])

        def step(x, i):
            z = jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape))(keys(i), x)
            return x + h * score(x) + jnp.sqrt(2.0 * h) * z, None

        return jax.lax.scan(step, x0, jnp.arange(steps))[0]

    return jax.jit(run)


def kernel_scan(algorithm, steps, keep_every_draw=False):
    """A SamplingAlgorithm's ``step`` vmapped in a plain ``lax.scan``, keys as ``hand_ula``'s."""

    def run(key, x0):
        keys = step_keys(key, x0.shape[0])

        def step(state, i):
            state, _ = jax.vmap(algorithm.step)(keys(i), state)
            return state, state.position if keep_every_draw else None

        state, draws = jax.lax.scan(step, jax.vmap(algorithm.init)(x0), jnp.arange(steps))
        return jnp.swapaxes(draws, 0, 1) if keep_every_draw else state.position

    return jax.jit(run)


def ratio_rows(cell, times, text, limit=1.05, same=None, reference="reference"):
    """A row per driver of ``times``, and the goal ``text``: the first's ratio ≤ ``limit``."""
    ref, copy = times["reference"], times["copy"]
    aa = [c / r for c, r in zip(copy["rounds"], ref["rounds"], strict=True)]  # A/A, by round
    rows = [{"cell": cell, "driver": reference if driver == "reference" else driver,
             "run s": t["run_s"], "compile s": t["compile_s"], "ratio": t["run_s"] / ref["run_s"],
             "A/A": f"{min(aa):.3f}–{max(aa):.3f}", "max abs diff": (same or {}).get(driver)}
            for driver, t in times.items()]  # fmt: skip
    log(*rows, sep="\n")
    return rows, [goal(text, rows[0]["ratio"], limit, aa)]


def ula_cell(steps, repeats, dim=100, chains=256, h=0.01):
    key, x0, ula = jax.random.key(1), jnp.zeros((chains, dim)), rs.ula(score, h)
    fns = {"rs.run": lambda: rs.run(ula, key, x0, steps, thin=steps).posterior["x"].values[:, 0],
           "rs.sample_chains": lambda: rs.sample_chains(ula, key, x0, steps, thin=steps)[0][:, 0],
           "ula.step in a scan": partial(kernel_scan(ula, steps), key, x0),
           "reference": partial(hand_ula(steps, h), key, x0),
           "copy": partial(hand_ula(steps, h), key, x0)}  # fmt: skip
    times, ref = compare(fns, repeats), np.asarray(fns["reference"]())
    same = {d: float(np.max(np.abs(np.asarray(fn()) - ref))) for d, fn in fns.items()}
    text = f"`rs.run(rs.ula(score, {h}), ...)`, d = {dim}, {chains} chains, last draw"
    cell = f"ULA d={dim}, {chains} chains, {steps} steps, last draw"
    return ratio_rows(cell, times, text + " ≤ 1.05 × hand-written scan", same=same)


def mala_cell(steps, repeats, dim=10, chains=32):
    """Every draw kept (``rs.run`` with its end-of-run check and DataTree), then the check."""
    key, h = jax.random.key(3), 0.5 * dim ** (-1 / 3)
    x0, mala = jax.random.normal(jax.random.key(4), (chains, dim)), rs.mala(logdensity, h)
    reference, copy = (kernel_scan(blackjax.mala(logdensity, h), steps, True) for _ in "ab")
    fns = {"rs.run": lambda: rs.run(mala, key, x0, steps).posterior["x"].values,
           "rs.sample_chains": lambda: np.asarray(rs.sample_chains(mala, key, x0, steps)[0]),
           "reference": lambda: np.asarray(reference(key, x0)),
           "copy": lambda: np.asarray(copy(key, x0))}  # fmt: skip
    with warnings.catch_warnings(action="ignore"):
        times, ref = compare(fns, repeats), fns["reference"]()
        same = {d: float(np.max(np.abs(fn() - ref))) for d, fn in fns.items()}
    text = f"`rs.run(rs.mala(...))`, d = {dim}, {chains} chains × {steps} draws kept"
    cell = f"MALA d={dim}, {chains} chains, {steps} steps, every draw"
    rows, goals = ratio_rows(cell, times, text + " ≤ 1.05 × `blackjax.mala` in a scan", same=same)
    sampling_s, checks = times["rs.sample_chains"]["run_s"], []
    for d in (ref, np.random.default_rng(0).standard_normal((4, 1000, 10))):
        checks.append([timed(partial(convergence_problems, d))["wall_s"] for _ in range(repeats)])
        rows.append({"cell": f"`convergence_problems` on {d.shape}", "run s": min(checks[-1])})
    (big, small), share = checks, min(checks[0]) / sampling_s
    text, measured = "end-of-run check ≤ 10 % of the sampling time (MALA cell)", f"{share:.1%}"
    goals.append(goal(text, share, 0.10, [s / sampling_s for s in big], measured))
    text = "end-of-run check of 4 × 1000 × 10 draws ≤ 0.05 s"
    return rows, [*goals, goal(text, min(small), 0.05, small, f"{min(small):.3f} s")]


def numpyro_cell(steps, repeats, dim=100, chains=8, h=0.1):
    """NumPyro compiles on every ``run``: its run time is net of JAX's compile seconds."""
    mean, starts = jnp.linspace(-1.0, 1.0, dim), jnp.zeros((chains, dim))

    def model():
        numpyro.sample("x", numpyro.distributions.Normal(mean, 1.0).to_event(1))

    kernel = rs.numpyro.ScoreLangevin(model, step_size=h, adapt_step_size=False)
    mcmc = numpyro.infer.MCMC(kernel, num_warmup=0, num_samples=steps, num_chains=chains,
                              chain_method="vectorized", progress_bar=False)  # fmt: skip

    def with_numpyro():
        mcmc.run(jax.random.key(0), init_params={"x": starts})
        return mcmc.get_samples(group_by_chain=True)["x"]

    def with_run(ula):
        return rs.run(ula, jax.random.key(0), starts, steps).posterior["x"].values

    reference, copy = (partial(with_run, rs.ula(rs.scores.gaussian(mean, 1.0), h)) for _ in "ab")
    fns = {"ScoreLangevin": with_numpyro, "reference": reference, "copy": copy}
    times = compare(fns, repeats, net_of_compile=True)
    cell = f"NumPyro d={dim}, {chains} chains, {steps} steps, every draw"
    text = "`ScoreLangevin` under `numpyro.infer.MCMC` ≤ 1.2 × `rs.run`"
    return ratio_rows(cell, times, text, 1.2, reference="`rs.run` (reference)")


def diffusion_cells(moves, repeats, dim=100, chains=256, levels_moves=5):
    cells, key, x0 = [], jax.random.key(2), jnp.zeros((chains, dim))
    args, sde = (SCHEDULE, moves // levels_moves, levels_moves), (SCHEDULE, moves, "sde")
    kernels = {"annealed Langevin": (rs.AnnealedLangevin(*args, step_size=2e-5),
                                     rs.annealed_langevin(lambda x, t: -x, *args, step_size=2e-5)),
               "reverse SDE": (rs.ReverseDiffusion(*sde),
                               rs.reverse_diffusion(lambda x, t: -x, *sde))}  # fmt: skip
    for name, (settings, algorithm) in kernels.items():
        fns = {"rs.sample_chains": lambda a=algorithm: rs.sample_chains(a, key, x0, 1)[0]}
        for copy in ("reference", "copy"):  # a new score function: built and compiled again
            fns[copy] = partial(rs.sample_batch, key, lambda x, t: -x, settings, chains, (dim,))
        cell = f"{name} d={dim}, {chains} chains, {moves} moves"
        text = f"{name} via `rs.sample_chains` ≤ 1.05 × `rs.sample_batch`"
        reference = "`rs.sample_batch` (reference)"
        cells.append(ratio_rows(cell, compare(fns, repeats), text, reference=reference))
    return cells


def peak_extra_mib(fn):
    """Peak resident set during ``fn()`` less the one before, in MiB (``clear_refs`` resets it)."""

    def kib(field):
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))

    gc.collect()
    before = kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    jax.block_until_ready(fn())
    return (kib("VmHWM") - before) / 1024


def memory_child(dim, chains=4, draws=1000):
    """Fresh process: ``rs.scores.gaussian`` + a call twice (A/A), ``rs.run`` three times."""
    gauss = [peak_extra_mib(lambda x=x: rs.scores.gaussian(jnp.zeros(dim), 1.0)(x))
             for x in (jnp.ones(dim), jnp.full(dim, 2.0))]  # fmt: skip
    ula, starts = rs.ula(score, 0.01), jnp.zeros((chains, dim))
    run = [peak_extra_mib(lambda k=k: rs.run(ula, jax.random.key(k), starts, draws))
           for k in range(3)]  # fmt: skip
    return {"draw_mib": chains * draws * dim * 4 / 2**20, "gaussian_mib": gauss, "run_mib": run}


def memory_cell(dim):
    m = child_json("overhead", "memory", dim)
    first, *later = (mib / m["draw_mib"] for mib in m["run_mib"])
    column, gauss = "peak extra MiB (calls 1 / 2 / 3)", m["gaussian_mib"]
    cells = (f"`rs.run` ULA d={dim}, 4 chains × 1000 draws ({m['draw_mib']:.0f} MiB)",
             f"`rs.scores.gaussian(jnp.zeros({dim}), 1.0)` + one call")  # fmt: skip
    rows = [{"cell": cells[0], column: m["run_mib"]}, {"cell": cells[1], column: gauss}]
    measured = f"{later[0]:.2f} × (first call, compile included: {first:.2f} ×)"
    text = f"`rs.run` peak extra memory ≤ 1.25 × its draws (d = {dim}, 4 × 1000, second call)"
    return rows, [goal(text, later[0], 1.25, later, measured),
                  goal(f"`rs.scores.gaussian` at d = {dim} and one call: peak extra ≤ 50 MiB",
                       gauss[0], 50.0, gauss, f"{gauss[0]:.1f} MiB")]  # fmt: skip


def main(quick=False):
    size, repeats = (QUICK, 2) if quick else (FULL, 5)
    cells = [ula_cell(size["ula"], repeats), mala_cell(size["mala"], repeats),
             numpyro_cell(size["numpyro"], 1 if quick else 3),
             *diffusion_cells(size["moves"], repeats), memory_cell(size["memory_dim"])]  # fmt: skip
    rows, goals = [r for c in cells for r in c[0]], [g for c in cells for g in c[1]]
    fields = {"overhead": table([r for r in rows if "ratio" in r])}
    fields["overhead_check"] = table([r for r in rows if "ratio" not in r and "run s" in r])
    fields["overhead_memory"] = table([r for r in rows if "run s" not in r])
    return {"rows": rows, "goals": goals, "fields": fields}


if __name__ == "__main__":
    script(main, __doc__, children={"memory": memory_child})
