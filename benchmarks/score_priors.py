"""Posterior sampling with a learned prior (``rs.numpyro.ScorePrior``) against closed forms:
each sampler's error in posterior mean (in posterior sds) and sd, by its score evaluations
per draw, on a linear-Gaussian problem (d = 16, N(1, I) prior, 8 projections, noise 0.3)
and on inpainting with the center trap in the prior (N(7·1, I), 4 coordinates observed with
noise 0.1), where the trap report is read on the plug-and-play runs.

Run: .venv/bin/python -m benchmarks.score_priors [--quick] [--out FILE]
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, init_to_value

import robust_score as rs

from .timing import goal, log, script, table

VP, DIM = rs.schedules.vp(), 16


def problem(kind):
    """``(model, y, exact mean, exact sd, back-projection of y)`` of problem ``kind``."""
    if kind == "linear-Gaussian":
        a = jax.random.normal(jax.random.key(1), (8, DIM)) / np.sqrt(DIM)
        prior_mean, noise = jnp.ones(DIM), 0.3
    else:
        a, prior_mean, noise = jnp.eye(DIM)[:4], jnp.full(DIM, 7.0), 0.1
    exact = rs.scores.gaussian(prior_mean, 1.0, schedule=VP)
    score = rs.scores.center_trap_time(exact, VP) if "trapped" in kind else exact
    truth = prior_mean + jax.random.normal(jax.random.key(2), (DIM,))
    y = a @ truth + noise * jax.random.normal(jax.random.key(3), (len(a),))
    an = np.asarray(a, np.float64)
    cov = np.linalg.inv(np.eye(DIM) + an.T @ an / noise**2)
    mean = cov @ (np.asarray(prior_mean) + an.T @ np.asarray(y) / noise**2)

    def model(y):
        x = numpyro.sample("x", rs.numpyro.ScorePrior(score, VP, (DIM,)))
        numpyro.sample("y", dist.Normal(a @ x, noise), obs=y)

    return model, y, mean, np.sqrt(np.diag(cov)), a.T @ y


def sample(kind, method, budget, draws, seed):
    model, y, mean, sd, back_projection = problem(kind)
    per_chain, ula = draws // 4, method == "plug-and-play ULA"
    warmup = per_chain // 2 if ula else 0
    if ula:
        start = init_to_value(values={"x": back_projection})
        kernel, evals = rs.numpyro.ScoreLangevin(model, init_strategy=start), 1 + warmup / per_chain
    else:
        settings = (rs.AnnealedLangevin(VP, *budget) if method == "annealed Langevin"
                    else rs.ReverseDiffusion(VP, budget))  # fmt: skip
        kernel = rs.numpyro.ScoreDiffusion(model, settings=settings)
        evals = settings.num_score_evals
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=per_chain, num_chains=4,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    started = time.perf_counter()
    mcmc.run(jax.random.key(seed), y)
    x = np.asarray(mcmc.get_samples()["x"], np.float64)
    error, ratio = np.abs(x.mean(axis=0) - mean) / sd, x.std(axis=0) / sd
    row = {"problem": kind, "sampler": method, "seed": seed, "score evals per draw": evals,
           "max mean error (sd)": float(error.max()), "sd ratio": [ratio.min(), ratio.max()],
           "wall s": time.perf_counter() - started}  # fmt: skip
    if kind != "linear-Gaussian":
        row["unobserved mean error (sd)"] = float(error[4:].mean())
        if ula:
            row["trap report"] = rs.diagnostics.trap_report(mcmc).headline
    return row


def main(quick=False):
    draws, rows = 400 if quick else 8000, []
    linear = [("plug-and-play ULA", None, seed) for seed in range(1 if quick else 3)]
    linear += [("annealed Langevin", (100, 10), 0), ("annealed Langevin", (30, 100), 0),
               ("DPS", 100, 0), ("DPS", 1000, 0)]  # fmt: skip
    trap = (("plug-and-play ULA", None, 0), ("annealed Langevin", (30, 100), 0), ("DPS", 200, 0))
    runs = [("linear-Gaussian", *r) for r in linear]
    runs += [("inpainting, trapped prior", *r) for r in trap]
    runs += [("inpainting, exact prior", "plug-and-play ULA", None, 0)]
    for kind, method, budget, seed in runs:
        rows.append(sample(kind, method, budget, draws if "ULA" in method else draws // 4, seed))
        log(rows[-1])
    linear = [r for r in rows if r["problem"] == "linear-Gaussian"]
    ula = [r for r in linear if r["sampler"] == "plug-and-play ULA"]
    annealed = [r for r in linear if r["sampler"] == "annealed Langevin"][-1]  # 30 x 100
    worst_sd = lambda r: max(abs(v - 1) for v in r["sd ratio"])  # noqa: E731
    goals = [goal("plug-and-play ULA, linear-Gaussian: means within 0.1 sd (worst seed)",
                  max(r["max mean error (sd)"] for r in ula), 0.1),
             goal("… sds within 10 %", max(worst_sd(r) for r in ula), 0.1),
             goal("annealed Langevin (30 × 100): means within 0.15 sd",
                  annealed["max mean error (sd)"], 0.15),
             goal("… sds within 20 %", worst_sd(annealed), 0.2)]  # fmt: skip
    return {"rows": rows, "goals": goals, "fields": {"prior_rows": table(rows)}}


if __name__ == "__main__":
    script(main, __doc__)
