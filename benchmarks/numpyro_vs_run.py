"""Wall time of ``rs.numpyro.ScoreLangevin`` under ``MCMC(chain_method="vectorized")`` against
the same ULA kernel driven by ``rs.run``: same target, dimension, chains, steps and step size.

Each sampler runs once to compile, then ``--repeats`` more times with the same shapes and new
keys; the fastest repeat is reported (the machine may be shared). ``rs.run`` reuses its
compiled program, but NumPyro's ``MCMC.run`` compiles again on every call (its sampling loop is
jitted with a fresh inner ``jit`` wrapper as a static argument, and ``initialize_model`` compiles
its initial-value search), for NUTS as for any kernel. So a repeat's run time is its wall time
minus the tracing, lowering and XLA compilation JAX reports for it through ``jax.monitoring``;
the raw wall time is printed beside it.

Run: .venv/bin/python benchmarks/numpyro_vs_run.py [--dim 100 --chains 8 --steps 50000]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC

import robust_score as rs

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: (
        _compile_seconds.append(seconds) if event in _COMPILE_EVENTS else None
    )
)


def timed(fn):
    """``(wall seconds, seconds of it JAX spent tracing, lowering and compiling)``."""
    _compile_seconds.clear()
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start, sum(_compile_seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--step-size", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    d, chains, steps, h = args.dim, args.chains, args.steps, args.step_size
    mean = jnp.linspace(-1.0, 1.0, d)

    # rs.run: the ULA kernel on the exact score of N(mean, I), chains vmapped in one scan
    ula = rs.ula(rs.scores.gaussian(mean, 1.0), step_size=h)
    starts = jnp.zeros((chains, d))

    def with_run(key):
        return rs.run(ula, key, starts, steps).posterior["x"].values

    # NumPyro: the same target as a model, the same ULA kernel behind ScoreLangevin; no warm-up
    # and no adaptation, so every one of the `steps` iterations is one ULA move.
    def model():
        numpyro.sample("x", dist.Normal(mean, 1.0).to_event(1))

    kernel = rs.numpyro.ScoreLangevin(model, step_size=h, adapt_step_size=False)
    mcmc = MCMC(
        kernel,
        num_warmup=0,
        num_samples=steps,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
    )

    def with_numpyro(key):
        mcmc.run(key, init_params={"x": starts})
        return mcmc.get_samples(group_by_chain=True)["x"]

    rows = []
    for name, fn in (("rs.run", with_run), ("ScoreLangevin", with_numpyro)):
        _, first_compile = timed(lambda fn=fn: fn(jax.random.key(0)))
        repeats = [
            timed(lambda fn=fn, k=k: fn(jax.random.key(k))) for k in range(1, args.repeats + 1)
        ]
        wall, compile_s = min(repeats, key=lambda r: r[0] - r[1])
        rows.append((name, first_compile, wall, compile_s, wall - compile_s))
    print(f"d = {d}, {chains} chains, {steps} ULA steps, h = {h}, {jax.default_backend()}")
    print(f"{'sampler':15s} {'1st compile':>12s} {'wall':>9s} {'compile':>12s} {'run (s)':>8s}")
    for name, first_compile, wall, compile_s, run_s in rows:
        print(f"{name:15s} {first_compile:12.2f} {wall:9.2f} {compile_s:12.2f} {run_s:8.2f}")
    ratio = rows[1][4] / rows[0][4]
    print(f"run-time ratio ScoreLangevin / rs.run = {ratio:.2f} (target <= 1.2)")
    return ratio


if __name__ == "__main__":
    main()
