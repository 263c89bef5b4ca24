"""Overhead of the library's drivers, in one run: ULA (``rs.run``, ``rs.sample_chains``, the
raw kernel) and MALA with every draw kept against hand-written scans with the same keys, the
end-of-run check alone, ``ScoreLangevin`` against ``rs.run``, ``rs.sample_chains`` against
``rs.sample_batch`` for the diffusion kernels, and peak memory (in a fresh process:
``python -m benchmarks.overhead memory DIM``). Each timing has an A/A control.

Run: .venv/bin/python -m benchmarks.overhead [--quick] [--out FILE]
"""

import gc
import json
import subprocess
import sys
import warnings
from functools import partial

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC

import robust_score as rs
from robust_score.run_health import convergence_problems

from .timing import aa_range, compare, goal, log, script, table, timed

SCHEDULE = rs.schedules.vp()
FULL = {"ula": 2000, "mala": 20_000, "numpyro": 50_000, "moves": 500, "memory_dim": 10_000}
QUICK = {"ula": 200, "mala": 2000, "numpyro": 5000, "moves": 50, "memory_dim": 1000}


def score(x):
    return -x


def logdensity(x):
    return -0.5 * jnp.sum(x**2)


def chain_keys(key, chains):
    """``rs.sample_chains``'s keys: chain ``c`` uses ``fold_in(key, c)``, its step ``i``
    ``fold_in(fold_in(key, c), i)``."""
    return jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(chains))


def step_keys(keys, i):
    return jax.vmap(jax.random.fold_in, (0, None))(keys, i)


def hand_ula(steps, h):
    """ULA written out as a user would, with ``rs.sample_chains``'s keys; last draw kept."""

    def run(key, x0):
        keys = chain_keys(key, x0.shape[0])

        def step(x, i):
            z = jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape))(step_keys(keys, i), x)
            return x + h * score(x) + jnp.sqrt(2.0 * h) * z, None

        return jax.lax.scan(step, x0, jnp.arange(steps))[0]

    return jax.jit(run)


def kernel_scan(algorithm, steps, keep_every_draw=False):
    """A SamplingAlgorithm's ``step`` vmapped over chains in a plain ``lax.scan`` (same keys):
    the last positions, or every draw as ``(chain, draw, d)``."""

    def run(key, x0):
        keys = chain_keys(key, x0.shape[0])

        def step(state, i):
            state, _ = jax.vmap(algorithm.step)(step_keys(keys, i), state)
            return state, state.position if keep_every_draw else None

        state, draws = jax.lax.scan(step, jax.vmap(algorithm.init)(x0), jnp.arange(steps))
        return jnp.swapaxes(draws, 0, 1) if keep_every_draw else state.position

    return jax.jit(run)


def ratio_rows(cell, times, same=None):
    """One row per driver of ``times``: run time over the reference's, A/A range."""
    ref, aa, rows = times["reference"]["run_s"], aa_range(times), []
    for driver, t in times.items():
        rows.append(
            {"cell": cell, "driver": driver, "run s": t["run_s"], "compile s": t["compile_s"]}
        )
        rows[-1].update({"ratio": t["run_s"] / ref, "A/A": f"{min(aa):.3f}–{max(aa):.3f}"})
        rows[-1]["max abs diff"] = same.get(driver) if same else None
        log(rows[-1])
    return rows, aa


def ula_cell(steps, repeats, dim=100, chains=256, h=0.01):
    key, x0, ula = jax.random.key(1), jnp.zeros((chains, dim)), rs.ula(score, h)
    fns = {
        "rs.run": lambda: rs.run(ula, key, x0, steps, thin=steps).posterior["x"].values[:, 0],
        "rs.sample_chains": lambda: rs.sample_chains(ula, key, x0, steps, thin=steps)[0][:, 0],
        "ula.step in a scan": partial(kernel_scan(ula, steps), key, x0),
        "reference": partial(hand_ula(steps, h), key, x0),
        "copy": partial(hand_ula(steps, h), key, x0),
    }
    times = compare(fns, repeats)
    ref = np.asarray(fns["reference"]())
    same = {d: float(np.max(np.abs(np.asarray(fn()) - ref))) for d, fn in fns.items()}
    rows, aa = ratio_rows(f"ULA d={dim}, {chains} chains, {steps} steps, last draw", times, same)
    text = f"`rs.run(rs.ula(score, {h}), ...)`, d = {dim}, {chains} chains, last draw"
    return rows, [goal(text + " ≤ 1.05 × hand-written scan", rows[0]["ratio"], 1.05, aa)]


def mala_cell(steps, repeats, dim=10, chains=32):
    """Every draw kept: ``rs.run`` (with its end-of-run checks and DataTree) against
    ``blackjax.mala`` in a scan under ``jit``; then the convergence check alone."""
    key, h = jax.random.key(3), 0.5 * dim ** (-1 / 3)
    x0, mala = jax.random.normal(jax.random.key(4), (chains, dim)), rs.mala(logdensity, h)
    reference, copy = (kernel_scan(blackjax.mala(logdensity, h), steps, True) for _ in "ab")
    fns = {
        "rs.run": lambda: rs.run(mala, key, x0, steps).posterior["x"].values,
        "rs.sample_chains": lambda: np.asarray(rs.sample_chains(mala, key, x0, steps)[0]),
        "reference": lambda: np.asarray(reference(key, x0)),
        "copy": lambda: np.asarray(copy(key, x0)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = compare(fns, repeats)
        ref = fns["reference"]()
        same = {d: float(np.max(np.abs(fn() - ref))) for d, fn in fns.items()}
    cell = f"MALA d={dim}, {chains} chains, {steps} steps, every draw"
    rows, aa = ratio_rows(cell, times, same)
    text = f"`rs.run(rs.mala(...))`, d = {dim}, {chains} chains × {steps} draws kept"
    goals = [goal(text + " ≤ 1.05 × `blackjax.mala` in a scan", rows[0]["ratio"], 1.05, aa)]
    sampling_s, small = times["rs.sample_chains"]["run_s"], np.zeros((4, 1000, 10))
    small[...] = np.random.default_rng(0).standard_normal(small.shape)
    checks = [[timed(partial(convergence_problems, d))["wall_s"] for _ in range(repeats)]
              for d in (ref, small)]  # fmt: skip
    for draws, seconds in zip((ref, small), checks, strict=True):
        rows.append({"cell": f"`convergence_problems` on {draws.shape}", "run s": min(seconds)})
    (big, small), share = checks, min(checks[0]) / sampling_s
    text, measured = "end-of-run check ≤ 10 % of the sampling time (MALA cell)", f"{share:.1%}"
    goals.append(goal(text, share, 0.10, [s / sampling_s for s in big], measured))
    text = "end-of-run check of 4 × 1000 × 10 draws ≤ 0.05 s"
    goals.append(goal(text, min(small), 0.05, small, f"{min(small):.3f} s"))
    return rows, goals


def numpyro_cell(steps, repeats, dim=100, chains=8, h=0.1):
    """ScoreLangevin under ``MCMC(chain_method="vectorized")`` against ``rs.run`` of the same
    ULA kernel, every draw kept. NumPyro compiles on every ``run``: its run time is the wall
    time less the compile seconds JAX reports."""
    mean, starts = jnp.linspace(-1.0, 1.0, dim), jnp.zeros((chains, dim))

    def model():
        numpyro.sample("x", dist.Normal(mean, 1.0).to_event(1))

    kernel = rs.numpyro.ScoreLangevin(model, step_size=h, adapt_step_size=False)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=steps, num_chains=chains,
                chain_method="vectorized", progress_bar=False)  # fmt: skip

    def with_numpyro():
        mcmc.run(jax.random.key(0), init_params={"x": starts})
        return mcmc.get_samples(group_by_chain=True)["x"]

    def with_run(ula):
        return rs.run(ula, jax.random.key(0), starts, steps).posterior["x"].values

    fns = {"ScoreLangevin": with_numpyro}
    for name in ("reference", "copy"):
        fns[name] = partial(with_run, rs.ula(rs.scores.gaussian(mean, 1.0), h))
    times = compare(fns, repeats, net_of_compile=True)
    rows, aa = ratio_rows(f"NumPyro d={dim}, {chains} chains, {steps} steps, every draw", times)
    rows[1]["driver"] = "`rs.run` (reference)"
    text = "`ScoreLangevin` under `numpyro.infer.MCMC` ≤ 1.2 × `rs.run`"
    return rows, [goal(text, rows[0]["ratio"], 1.2, aa)]


def diffusion_cell(moves, repeats, dim=100, chains=256, levels_moves=5):
    rows, goals, key, x0 = [], [], jax.random.key(2), jnp.zeros((chains, dim))
    for name in ("annealed Langevin", "reverse SDE"):
        if name == "annealed Langevin":
            args = (SCHEDULE, moves // levels_moves, levels_moves)
            settings = rs.AnnealedLangevin(*args, step_size=2e-5)
            algorithm = rs.annealed_langevin(lambda x, t: -x, *args, step_size=2e-5)
        else:
            settings = rs.ReverseDiffusion(SCHEDULE, moves, "sde")
            algorithm = rs.reverse_diffusion(lambda x, t: -x, SCHEDULE, moves, "sde")
        fns = {"rs.sample_chains": lambda a=algorithm: rs.sample_chains(a, key, x0, 1)[0]}
        for copy in ("reference", "copy"):  # a new score function: built and compiled again
            fns[copy] = lambda s=settings, f=lambda x, t: -x: rs.sample_batch(
                key, f, s, chains, (dim,)
            )
        cell = f"{name} d={dim}, {chains} chains, {moves} moves"
        new_rows, aa = ratio_rows(cell, compare(fns, repeats))
        new_rows[1]["driver"] = "`rs.sample_batch` (reference)"
        rows += new_rows
        text = f"{name} via `rs.sample_chains` ≤ 1.05 × `rs.sample_batch`"
        goals.append(goal(text, new_rows[0]["ratio"], 1.05, aa))
    return rows, goals


def peak_extra_mib(fn):
    """Peak resident set during ``fn()`` less the resident set before, in MiB (VmHWM reset
    to the current resident set by writing 5 to ``/proc/self/clear_refs``)."""

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
    """Fresh process: ``rs.scores.gaussian`` at ``dim`` and one call, twice (the second: an
    A/A control), then ULA ``rs.run`` with every draw kept, three calls (the first compiles)."""
    gauss = [peak_extra_mib(lambda x=x: rs.scores.gaussian(jnp.zeros(dim), 1.0)(x))
             for x in (jnp.ones(dim), jnp.full(dim, 2.0))]  # fmt: skip
    ula, starts = rs.ula(score, 0.01), jnp.zeros((chains, dim))
    run = [
        peak_extra_mib(lambda k=k: rs.run(ula, jax.random.key(k), starts, draws)) for k in range(3)
    ]
    return {"draw_mib": chains * draws * dim * 4 / 2**20, "gaussian_mib": gauss, "run_mib": run}


def memory_cell(dim):
    command = [sys.executable, "-m", "benchmarks.overhead", "memory", str(dim)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    first, *later = (mib / m["draw_mib"] for mib in m["run_mib"])
    column = "peak extra MiB (calls 1 / 2 / 3)"
    cells = (f"`rs.run` ULA d={dim}, 4 chains × 1000 draws ({m['draw_mib']:.0f} MiB)",
             f"`rs.scores.gaussian(jnp.zeros({dim}), 1.0)` + one call")  # fmt: skip
    rows = [{"cell": cells[0], column: m["run_mib"]}, {"cell": cells[1], column: m["gaussian_mib"]}]
    measured = f"{later[0]:.2f} × (first call, compile included: {first:.2f} ×)"
    text = f"`rs.run` peak extra memory ≤ 1.25 × its draws (d = {dim}, 4 × 1000, second call)"
    return rows, [
        goal(text, later[0], 1.25, later, measured),
        goal(f"`rs.scores.gaussian` at d = {dim} and one call: peak extra ≤ 50 MiB",
             m["gaussian_mib"][0], 50.0, m["gaussian_mib"], f"{m['gaussian_mib'][0]:.1f} MiB"),
    ]  # fmt: skip


def main(quick=False):
    size, repeats = (QUICK, 2) if quick else (FULL, 5)
    cells = [ula_cell(size["ula"], repeats), mala_cell(size["mala"], repeats),
             numpyro_cell(size["numpyro"], 1 if quick else 3),
             diffusion_cell(size["moves"], repeats), memory_cell(size["memory_dim"])]  # fmt: skip
    rows, goals = [r for c in cells for r in c[0]], [g for c in cells for g in c[1]]
    fields = {"overhead": table([r for r in rows if "ratio" in r])}
    fields["overhead_check"] = table([r for r in rows if "ratio" not in r and "run s" in r])
    fields["overhead_memory"] = table([r for r in rows if "run s" not in r])
    return {"rows": rows, "goals": goals, "fields": fields}


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        print(json.dumps(memory_child(int(sys.argv[2]))))
    else:
        script(main, __doc__)
