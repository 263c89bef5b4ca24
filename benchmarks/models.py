"""``rs.numpyro.ScoreLangevin`` on NumPyro models as users write them: effective samples per
gradient against NUTS and BarkerMH, whether MALA's runs say when they miss the posterior (hard
geometry), and ULA's bias on eight schools. 4 chains x (1000 warm-up + 2000 draws) per sampler
with its own default warm-up; references: exact moments where known, else NUTS 4 x 4000.

Run: .venv/bin/python -m benchmarks.models [--quick] [--ula_seeds 2] [--out FILE]
"""

import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, BarkerMH
from numpyro.infer.util import unconstrain_fn

import robust_score as rs

from .timing import goal, log, rotated, script, table

CHAINS, FULL = 4, {"warmup": 1000, "draws": 2000, "reference_draws": 4000}
QUICK = {"warmup": 200, "draws": 400, "reference_draws": 800}
LOG_RATIO_CUTS = (10.0, 20.0, 50.0, 87.0)  # float32's exp underflows below about -87


def eight_schools(sigma, y=None, centred=False):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        if centred:
            theta = numpyro.sample("theta", dist.Normal(mu, tau))
        else:
            theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
            theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def logistic(x, y=None, intercept_sd=None):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, intercept_sd)) if intercept_sd else 0.0
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("obs", dist.Bernoulli(logits=alpha + x @ beta), obs=y)


def horseshoe(x, y=None):
    """As NumPyro's own horseshoe example writes it (non-centred coefficients)."""
    lambdas = numpyro.sample("lambdas", dist.HalfCauchy(jnp.ones(x.shape[1])))
    tau = numpyro.sample("tau", dist.HalfCauchy(jnp.ones(1)))
    unscaled = numpyro.sample("unscaled_betas", dist.Normal(0.0, jnp.ones(x.shape[1])))
    prec_obs = numpyro.sample("prec_obs", dist.Gamma(3.0, 1.0))
    betas = numpyro.deterministic("betas", tau * lambdas * unscaled)
    numpyro.sample("obs", dist.Normal(x @ betas, 1.0 / jnp.sqrt(prec_obs)), obs=y)


def funnel(dim=10):
    v = numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([dim - 1]).to_event(1))


def gaussian(mean, scale_tril):
    numpyro.sample("x", dist.MultivariateNormal(mean, scale_tril=scale_tril))


def banana(curvature=0.03):
    x0 = numpyro.sample("x0", dist.Normal(0.0, 10.0))
    numpyro.sample("x1", dist.Normal(curvature * (x0**2 - 100.0), 1.0))


def models():
    """``{name: (model, args, exact (mean, sd) or None, roles)}``; roles: "pc" (every sampler,
    ESS per gradient), "hard" / "clean" (MALA's hard-geometry table)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    def standardise(a):
        return jnp.asarray((a - a.mean(0)) / a.std(0), jnp.float32)

    schools = (jnp.array([15.0, 10, 16, 11, 9, 11, 10, 18]),
               jnp.array([28.0, 8, -3, 7, -1, 1, 18, 12]))  # fmt: skip
    x, y = load_breast_cancer(return_X_y=True)
    cancer = (jnp.hstack([jnp.ones((len(x), 1)), standardise(x)]), jnp.asarray(y, jnp.float32))
    diabetes = tuple(standardise(a) for a in load_diabetes(return_X_y=True))
    key_x, key_beta, key_y = jax.random.split(jax.random.key(2026), 3)  # tests' logistic data
    x, beta = jax.random.normal(key_x, (200, 9)), 0.7 * jax.random.normal(key_beta, (9,))
    y = jax.random.bernoulli(key_y, jax.nn.sigmoid(0.3 + x @ beta))
    cov100 = rotated(np.geomspace(10**-1.5, 10**1.5, 100))
    mean3 = np.array([1.0, -0.5, 0.25])
    cov3 = jnp.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]])
    funnel_sd = np.r_[3.0, np.full(9, np.exp(9 / 4))]  # Var x_i = E e^v = e^{9/2}
    banana_sd = np.array([10.0, np.sqrt(1 + 0.03**2 * 2e4)])  # Var x1 = 1 + b² 2·10⁴
    chol100, chol3 = jnp.asarray(np.linalg.cholesky(cov100), jnp.float32), jnp.linalg.cholesky(cov3)
    sd100, sd3 = np.sqrt(np.diag(cov100)), np.sqrt(np.diag(cov3))
    return {"eight_schools": (eight_schools, schools, None, ("pc", "clean")),
            "logistic": (logistic, cancer, None, ("pc", "clean")),
            "horseshoe": (horseshoe, diabetes, None, ("pc", "hard")),
            "funnel": (funnel, (), (np.zeros(10), funnel_sd), ("pc", "hard")),
            "gaussian_100": (gaussian, (jnp.zeros(100), chol100), (np.zeros(100), sd100), ("pc",)),
            "banana": (banana, (), (np.zeros(2), banana_sd), ("pc",)),
            "eight_schools_centred": (eight_schools, (*schools, True), None, ("hard",)),
            "logistic_10": (logistic, (x, y.astype(jnp.float32), 2.0), None, ("clean",)),
            "gaussian_3": (gaussian, (mean3, chol3), (mean3, sd3), ("clean",))}  # fmt: skip


def sample(kernel, model, model_args, key, warmup, draws, extra=()):
    """(chain, draw, d) unconstrained draws, gradients (warm-up included), wall s, the MCMC."""
    method = "sequential" if isinstance(kernel, BarkerMH) else "vectorized"  # Barker: no vmap
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=CHAINS,
                chain_method=method, progress_bar=False)  # fmt: skip
    counted = ("num_steps",) if isinstance(kernel, NUTS) else ()
    warm_key, run_key = jax.random.split(key)
    started = time.perf_counter()
    with warnings.catch_warnings(action="ignore"):
        grads = CHAINS * warmup  # one gradient a step; NUTS: its warm-up's leapfrog steps
        if counted:  # (a warm-up apart compiles once more: only where it must)
            mcmc.warmup(warm_key, *model_args, extra_fields=counted, collect_warmup=True)
            grads = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        mcmc.run(run_key, *model_args, extra_fields=counted + tuple(extra))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall_s = time.perf_counter() - started
    grads += int(np.sum(mcmc.get_extra_fields()["num_steps"])) if counted else CHAINS * draws
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(*model_args)
    latent = [n for n, s in trace.items() if s["type"] == "sample" and not s["is_observed"]]
    flat = {n: samples[n].reshape((-1, *samples[n].shape[2:])) for n in latent}
    free = jax.vmap(lambda p: unconstrain_fn(model, model_args, {}, p))(flat)
    columns = [np.asarray(free[n], np.float64).reshape(len(flat[n]), -1) for n in latent]
    return np.concatenate(columns, 1).reshape(CHAINS, draws, -1), grads, wall_s, mcmc


def metrics(draws, grads, moments):
    mean, sd = moments
    if not np.all(np.isfinite(draws)):
        return {"ESS / 1k grad": 0.0, "max |Δmean|/sd": np.inf, "max R̂": np.inf}
    ess, rhat = arviz_stats.ess(draws, method="bulk"), arviz_stats.rhat(draws)
    return {"min ESS": float(np.min(ess)), "ESS / 1k grad": 1000 * float(np.min(ess)) / grads,
            "max |Δmean|/sd": float(np.max(np.abs(draws.mean(axis=(0, 1)) - mean) / sd)),
            "max R̂": f"{float(np.max(rhat)):.3f}",  # three decimals: 1.004 is not 1
            "max sd ratio": float(np.max(draws.std(axis=(0, 1)) / sd))}  # fmt: skip


def hard_geometry(name, mcmc):
    """MALA's divergences, log acceptance ratios and the warnings ``check_run`` raises."""
    fields, steps = mcmc.get_extra_fields(), np.asarray(mcmc.last_state.adapt_state.step_size)
    with np.errstate(divide="ignore"), warnings.catch_warnings(record=True) as caught:
        log_accept = np.log(np.asarray(fields["accept_prob"], np.float64))
        warnings.simplefilter("always")
        rs.numpyro.check_run(mcmc)
    raised = ", ".join(dict.fromkeys(w.category.__name__ for w in caught)) or "none"
    return {"model": name, "divergences": int(fields["diverging"].sum()), "step": steps.tolist(),
            **{f"log ratio < -{c:g}": int(np.sum(log_accept < -c)) for c in LOG_RATIO_CUTS},
            "check_run": raised}  # fmt: skip


def ula_bias(runs, moments, gradients):
    """ULA's runs over seeds pooled: the bias of every mean, in reference sds."""
    pooled, (mean, sd) = np.concatenate([r[0] for r in runs]), moments
    flagged = sum(int(r[3].get_extra_fields()["diverging"].sum()) for r in runs)
    bias, ess = (pooled.mean((0, 1)) - mean) / sd, arviz_stats.ess(pooled, method="bulk")
    return {"seeds": len(runs), "max \\|bias\\| / sd": float(np.abs(bias).max()),
            "Monte-Carlo sd": float(np.max(1 / np.sqrt(ess))),
            "max sd ratio": float(np.max(pooled.std(axis=(0, 1)) / sd)),
            "ESS / 1k grad": 1000 * float(np.min(ess)) / (len(pooled) * gradients),
            "moves flagged divergent": f"{flagged} of {np.prod(pooled.shape[:2])}"}  # fmt: skip


def one_model(index, name, quick, ula_seeds):
    """Every run on one model: its rows, hard-geometry rows, reference and ULA's bias."""
    size, (model, args, exact, roles) = QUICK if quick else FULL, models()[name]
    rows, hard, refs, bias, ula = [], [], [], None, None

    def run(kernel, seed, draws=size["draws"], extra=()):
        return sample(kernel, model, args, jax.random.key(seed), size["warmup"], draws, extra)

    moments = exact
    if exact is None:
        draws, grads, wall_s, mcmc = run(NUTS(model), 1000, size["reference_draws"])
        moments = draws.mean(axis=(0, 1)), draws.std(axis=(0, 1))
        refs.append({"model": name, **metrics(draws, grads, moments), "wall s": wall_s})
        refs[-1]["divergences"] = int(mcmc.get_extra_fields()["diverging"].sum())
    kernels = {"MALA": rs.numpyro.ScoreLangevin(model, adjust=True)}
    if "pc" in roles:
        kernels.update(ULA=rs.numpyro.ScoreLangevin(model), NUTS=NUTS(model))
    if name in ("eight_schools", "logistic", "horseshoe", "funnel"):  # the goal's models
        kernels["BarkerMH"] = BarkerMH(model)
    for kind in ("MALA", "ULA") if name in ("eight_schools", "logistic") else ():
        kernels[f"{kind}, identity"] = rs.numpyro.ScoreLangevin(  # numpyro.md's columns
            model, adjust=kind == "MALA", adapt_mass_matrix=False)  # fmt: skip
    for seed, (sampler, kernel) in enumerate(kernels.items()):
        extra = ("accept_prob",) if sampler == "MALA" else ()
        result = [draws, grads, wall_s, mcmc] = run(kernel, 10 * index + seed, extra=extra)
        row = {"model": name, "sampler": sampler, **(m := metrics(draws, grads, moments))}
        if "pc" in roles:
            rows.append({**row, "wall s": wall_s})
        if sampler == "MALA" and {"hard", "clean"} & set(roles):
            hard.append({**hard_geometry(name, mcmc), **m, "hard": "hard" in roles})
        log(row)
        ula = result if sampler == "ULA" else ula
    if name == "eight_schools":  # ULA's bias: its run above and more seeds, pooled
        more = [run(rs.numpyro.ScoreLangevin(model), 100 + s) for s in range(1, ula_seeds)]
        bias = ula_bias([ula, *more], moments, size["warmup"] + size["draws"])
    return rows, hard, refs, [bias] if bias else []


def main(quick=False, ula_seeds=2):
    """Two models at a time, in two processes, the slowest first: the runs' wall times are
    each on one core, and nothing else depends on the machine."""
    names, first = list(models()), ("horseshoe", "logistic", "eight_schools")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {n: pool.submit(one_model, names.index(n), n, quick, ula_seeds)
                for n in sorted(names, key=lambda n: n not in first)}  # fmt: skip
        rows, hard, refs, bias = ([x for n in names for x in jobs[n].result()[i]] for i in range(4))
    # Issue 14's goals for MALA. Noise range of an ESS ratio: the ratio times NUTS's A/A, its
    # reference's ESS per gradient over the NUTS run's on the same model (two seeds).
    ess = {(r["model"], r["sampler"]): r["ESS / 1k grad"] for r in rows}
    shift = {r["model"]: r["max |Δmean|/sd"] for r in rows if r["sampler"] == "MALA"}
    aa = [1.0] + [r["ESS / 1k grad"] / ess[r["model"], "NUTS"] for r in refs if r["model"] in shift]
    goals, mala, pairs = [], "`ScoreLangevin(adjust=True)`", ("eight_schools", "logistic")
    for other, limit, cases in (("NUTS", 0.5, pairs),
                                ("BarkerMH", 3.0, (*pairs, "horseshoe", "funnel"))):  # fmt: skip
        over = {m: ess[m, "MALA"] / max(ess[m, other], 1e-9) for m in cases}
        measured = "; ".join(f"{m}: {o:.2f} ×, \\|Δmean\\|/sd {shift[m]:.2f}"
                             for m, o in over.items())  # fmt: skip
        ok = other != "NUTS" or max(shift[m] for m in cases) <= 0.1
        value = min(over.values()) if ok else 0.0
        text = f"{mala} ≥ {limit} × {other}'s ESS per gradient ({', '.join(cases)})"
        text += ", max \\|Δmean\\|/sd ≤ 0.1" if other == "NUTS" else ""
        goals.append(goal(text, value, limit, [min(over.values()) * a for a in aa], measured, True))
    fields = {"models_rows": table(rows), "models_references": table(refs)}
    fields.update({f"models_{key}": value for key, value in (QUICK if quick else FULL).items()})
    fields.update(models_hard=table(hard), models_ula=table(bias), models_ula_seeds=ula_seeds)
    return {"rows": rows, "hard": hard, "references": refs, "ula_bias": bias[0],
            "goals": goals, "fields": fields}  # fmt: skip


if __name__ == "__main__":
    script(main, __doc__, ula_seeds=2)
