"""``rs.numpyro.ScoreLangevin`` under ``MCMC(chain_method="vectorized")`` against the same ULA
kernel under ``rs.run``: same target N(mean, I), dimension, chains, steps and step size, every
draw kept, no warm-up.

NumPyro's ``MCMC.run`` compiles again on every call (for NUTS too), so a repeat's run time is
its wall time minus the compile time JAX reports; the fastest of ``repeats`` is kept.

Run: .venv/bin/python benchmarks/numpyro_vs_run.py [--quick] [--out numpyro.json]
"""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC
from timing import log, script, timed

import robust_score as rs


def main(quick=False, dim=100, chains=8, step_size=0.1, repeats=3):
    steps = 5_000 if quick else 50_000
    mean = jnp.linspace(-1.0, 1.0, dim)
    starts = jnp.zeros((chains, dim))
    ula = rs.ula(rs.scores.gaussian(mean, 1.0), step_size)

    def model():
        numpyro.sample("x", dist.Normal(mean, 1.0).to_event(1))

    kernel = rs.numpyro.ScoreLangevin(model, step_size=step_size, adapt_step_size=False)
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

    def with_run(key):
        return rs.run(ula, key, starts, steps).posterior["x"].values

    result = {"dim": dim, "chains": chains, "steps": steps, "step_size": step_size}
    for name, fn in (("rs.run", with_run), ("ScoreLangevin", with_numpyro)):
        first = timed(lambda fn=fn: fn(jax.random.key(0)))
        calls = [timed(lambda fn=fn, k=k: fn(jax.random.key(k))) for k in range(1, repeats + 1)]
        best = min(calls, key=lambda c: c["wall_s"] - c["compile_s"])
        result[name] = {
            "first_compile_s": first["compile_s"],
            "wall_s": best["wall_s"],
            "compile_s": best["compile_s"],
            "run_s": best["wall_s"] - best["compile_s"],
        }
        log(name, result[name])
    result["ratio"] = result["ScoreLangevin"]["run_s"] / result["rs.run"]["run_s"]
    log(f"run-time ratio ScoreLangevin / rs.run = {result['ratio']:.2f}")
    return result


if __name__ == "__main__":
    script(main, __doc__, "numpyro.json")
