"""Effective samples per gradient of ``rs.numpyro.ScoreLangevin`` (MALA and ULA, default
warm-up) against NumPyro's NUTS and BarkerMH on six NumPyro models, with accuracy against a
long NUTS reference (or the exact moments where they are known) and wall time, in one run.

Models, as a user writes them: eight schools (non-centred), Bayesian logistic regression on
scikit-learn's ``load_breast_cancer`` (standardised features and an intercept, d = 31),
horseshoe regression on ``load_diabetes`` (d = 22), Neal's funnel (d = 10), and two
Inference-Gym-like targets: an ill-conditioned Gaussian (d = 100, condition number 1000,
randomly rotated with a fixed seed) and a banana (twisted Gaussian, d = 2).

Every sampler runs 4 chains x (1000 warm-up + 2000 draws) under
``MCMC(chain_method="vectorized")`` with its own default warm-up. Gradients are counted per
chain over warm-up and sampling: NUTS sums its ``num_steps`` extra field (leapfrog steps, one
gradient each), the Langevin kernels and BarkerMH take one gradient per step. Metrics are
computed on the unconstrained coordinates (what the samplers move in; a horseshoe scale's
posterior mean need not exist, its log's does): min bulk ESS over coordinates per 1000
gradients, max |mean - reference mean| / reference sd, max R-hat (ArviZ), wall time.

When ``ScoreLangevin`` takes ``adapt_mass_matrix`` (mass-matrix adaptation), it also runs
with ``adapt_mass_matrix=False`` (identity mass, the kernel before preconditioning) as the
rows marked "identity"; ``--before`` runs only those. Without the keyword the default kernel
has an identity mass and there is nothing else to run.

Run: .venv/bin/python benchmarks/preconditioning.py [--quick] [--only MODEL] [--before]
[--out preconditioning.json]
"""

import argparse
import inspect
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, BarkerMH
from numpyro.infer.util import unconstrain_fn
from timing import log, write_json

import robust_score as rs

CHAINS, WARMUP, DRAWS = 4, 1000, 2000
REFERENCE_DRAWS = 4000  # per chain, after as many warm-up steps as the runs compared
QUICK = {"warmup": 200, "draws": 400, "reference_draws": 1000}
SEED = 0
MODEL_NAMES = ("eight_schools", "logistic", "horseshoe", "funnel", "gaussian", "banana")
SAMPLER_SEEDS = {"MALA": 0, "ULA": 1, "NUTS": 2, "BarkerMH": 3}


# ---------------------------------------------------------------- models


def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def logistic_regression(x, y=None):
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("obs", dist.Bernoulli(logits=x @ beta), obs=y)


def horseshoe_regression(x, y=None):
    """As NumPyro's own horseshoe example writes it (non-centred coefficients)."""
    lambdas = numpyro.sample("lambdas", dist.HalfCauchy(jnp.ones(x.shape[1])))
    tau = numpyro.sample("tau", dist.HalfCauchy(jnp.ones(1)))
    unscaled_betas = numpyro.sample("unscaled_betas", dist.Normal(0.0, jnp.ones(x.shape[1])))
    betas = numpyro.deterministic("betas", tau * lambdas * unscaled_betas)
    prec_obs = numpyro.sample("prec_obs", dist.Gamma(3.0, 1.0))
    numpyro.sample("obs", dist.Normal(x @ betas, 1.0 / jnp.sqrt(prec_obs)), obs=y)


def funnel(dim=10):
    v = numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([dim - 1]).to_event(1))


def gaussian(scale_tril):
    numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(len(scale_tril)), scale_tril=scale_tril))


def banana(curvature=0.03):
    x0 = numpyro.sample("x0", dist.Normal(0.0, 10.0))
    numpyro.sample("x1", dist.Normal(curvature * (x0**2 - 100.0), 1.0))


def ill_conditioned_covariance(dim=100, condition=1000.0, seed=SEED):
    """``Q diag(λ) Qᵀ``: eigenvalues log-spaced over ``[1/sqrt(condition), sqrt(condition)]``
    (variances), ``Q`` a Haar-random rotation from a fixed seed."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))
    eigenvalues = np.geomspace(condition**-0.5, condition**0.5, dim)
    return (q * eigenvalues) @ q.T


def standardise(x):
    return (x - x.mean(0)) / x.std(0)


def models():
    """``{name: (label, model, args, exact)}``; ``exact`` is ``(mean, sd)`` over the
    unconstrained coordinates where they are known, else None (a NUTS reference is run)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    schools_y = jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    schools_sigma = jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    x, y = load_breast_cancer(return_X_y=True)
    cancer_x = jnp.asarray(np.hstack([np.ones((len(x), 1)), standardise(x)]), jnp.float32)
    cancer_y = jnp.asarray(y, jnp.float32)
    x, y = load_diabetes(return_X_y=True)
    diabetes_x, diabetes_y = (jnp.asarray(standardise(a), jnp.float32) for a in (x, y))
    covariance = ill_conditioned_covariance()
    # funnel: v ~ N(0, 3²), x_i | v ~ N(0, e^v): Var x_i = E e^v = e^{9/2}
    funnel_sd = np.r_[3.0, np.full(9, np.exp(9 / 4))]
    # banana: x0 ~ N(0, 10²), x1 = b (x0² - 100) + N(0, 1): Var x1 = 1 + b² 2 · 10⁴
    banana_sd = np.array([10.0, np.sqrt(1 + 0.03**2 * 2 * 10.0**4)])
    return {
        "eight_schools": ("eight schools, non-centred (d = 10)", eight_schools,
                          (schools_sigma, schools_y), None),
        "logistic": ("logistic regression, `breast_cancer` (d = 31)", logistic_regression,
                     (cancer_x, cancer_y), None),
        "horseshoe": ("horseshoe regression, `diabetes` (d = 22)", horseshoe_regression,
                      (diabetes_x, diabetes_y), None),
        "funnel": ("Neal's funnel (d = 10)", funnel, (), (np.zeros(10), funnel_sd)),
        "gaussian": ("ill-conditioned Gaussian (d = 100, κ = 1000)", gaussian,
                     (jnp.asarray(np.linalg.cholesky(covariance), jnp.float32),),
                     (np.zeros(100), np.sqrt(np.diag(covariance)))),
        "banana": ("banana, curvature 0.03 (d = 2)", banana, (), (np.zeros(2), banana_sd)),
    }  # fmt: skip


# ---------------------------------------------------------------- samplers


def score_langevin_keywords():
    return set(inspect.signature(rs.numpyro.ScoreLangevin).parameters)


def samplers(before=False):
    """``{name: (kernel factory, extra fields)}``: MALA and ULA with their default warm-up
    (identity-mass variants where the kernel adapts a mass matrix), NUTS, BarkerMH."""
    adapts_mass = "adapt_mass_matrix" in score_langevin_keywords()
    out = {}
    for name, adjust in (("MALA", True), ("ULA", False)):
        if adapts_mass and not before:
            out[name] = lambda m, adjust=adjust: rs.numpyro.ScoreLangevin(m, adjust=adjust)
        if adapts_mass:
            out[f"{name}, identity"] = lambda m, adjust=adjust: rs.numpyro.ScoreLangevin(
                m, adjust=adjust, adapt_mass_matrix=False
            )
        else:  # today's default: no mass matrix, i.e. the identity
            out[name] = lambda m, adjust=adjust: rs.numpyro.ScoreLangevin(m, adjust=adjust)
    out["NUTS"] = NUTS
    out["BarkerMH"] = BarkerMH
    return out


def run(kernel, model_args, key, warmup, draws, chains=CHAINS):
    """Warm-up then sampling (both from one ``MCMC``): unconstrained-ready samples grouped by
    chain, gradients per chain summed over both phases, wall time of both."""
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        # NumPyro's BarkerMH refuses chain_method="vectorized"
        chain_method="sequential" if isinstance(kernel, BarkerMH) else "vectorized",
        progress_bar=False,
    )
    counted = ("num_steps",) if isinstance(kernel, NUTS) else ()
    warm_key, run_key = jax.random.split(key)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.warmup(warm_key, *model_args, extra_fields=counted, collect_warmup=bool(counted))
        warm_grads = int(np.sum(mcmc.get_extra_fields()["num_steps"])) if counted else None
        mcmc.run(run_key, *model_args, extra_fields=counted)
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall_s = time.perf_counter() - started
    if counted:
        grads = warm_grads + int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    else:
        grads = chains * (warmup + draws)
    return samples, grads, wall_s


def unconstrained(model, model_args, samples):
    """(chain, draw, d) float64 array of the latent sites in unconstrained space."""
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(*model_args)
    latent = [
        name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
    ]
    params = {name: samples[name] for name in latent}
    lead = samples[latent[0]].shape[:2]
    flat = {k: v.reshape((-1, *v.shape[2:])) for k, v in params.items()}
    free = jax.vmap(lambda p: unconstrain_fn(model, model_args, {}, p))(flat)
    columns = [
        np.asarray(free[name], np.float64).reshape(flat[name].shape[0], -1) for name in latent
    ]
    return np.concatenate(columns, axis=1).reshape(*lead, -1)


def metrics(draws, grads, reference):
    import arviz as az

    mean, sd = reference
    finite = bool(np.all(np.isfinite(draws)))
    ess = np.asarray(az.ess(draws, method="bulk")) if finite else np.array([0.0])
    rhat = np.asarray(az.rhat(draws)) if finite else np.array([np.inf])
    shift = np.abs(draws.mean(axis=(0, 1)) - mean) / sd if finite else np.array([np.inf])
    return {
        "min_ess": float(ess.min()),
        "grads": grads,
        "ess_per_1k_grad": 1000 * float(ess.min()) / grads,
        "max_mean_shift_sd": float(shift.max()),
        "max_rhat": float(rhat.max()),
    }


def reference(name, model, model_args, exact, sizes, cache):
    """``(mean, sd)`` per unconstrained coordinate and a summary row: exact moments, or a NUTS
    run of ``CHAINS x reference_draws`` with its own seed (computed once per model)."""
    if name in cache:
        return cache[name]
    if exact is not None:
        row = {"model": name, "reference": "exact moments"}
        row.update(dict.fromkeys(("min_ess", "grads", "ess_per_1k_grad", "max_rhat", "wall_s")))
        cache[name] = tuple(np.asarray(a, np.float64) for a in exact), row
        return cache[name]
    key = jax.random.key(SEED + 1000)
    samples, grads, wall_s = run(
        NUTS(model), model_args, key, sizes["warmup"], sizes["reference_draws"]
    )
    draws = unconstrained(model, model_args, samples)
    moments = draws.mean(axis=(0, 1)), draws.std(axis=(0, 1))
    row = {
        "model": name,
        "reference": f"NUTS {CHAINS} x {sizes['reference_draws']}",
        **metrics(draws, grads, moments),
        "wall_s": wall_s,
    }
    del row["max_mean_shift_sd"]
    log("reference", row)
    cache[name] = moments, row
    return cache[name]


def ratios(rows):
    """ESS per gradient of each ScoreLangevin variant over NUTS's and BarkerMH's, per model."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = {r["sampler"]: r["ess_per_1k_grad"] for r in rows if r["model"] == model}
        for sampler in mine:
            if sampler in ("NUTS", "BarkerMH"):
                continue
            out.append(
                {
                    "model": model,
                    "sampler": sampler,
                    "over_nuts": mine[sampler] / mine["NUTS"] if "NUTS" in mine else None,
                    "over_barker": (
                        mine[sampler] / mine["BarkerMH"] if "BarkerMH" in mine else None
                    ),
                }
            )
    return out


def main(quick=False, only=None, before=False):
    sizes = dict(QUICK) if quick else {"warmup": WARMUP, "draws": DRAWS}
    sizes.setdefault("reference_draws", REFERENCE_DRAWS)
    started = time.perf_counter()
    catalogue, kernels = models(), samplers(before)
    assert tuple(catalogue) == MODEL_NAMES
    if only:
        catalogue = {name: catalogue[name] for name in only}
    rows, references, cache = [], [], {}
    for name, (_, model, model_args, exact) in catalogue.items():
        index = MODEL_NAMES.index(name)  # the same keys with or without --only
        moments, row = reference(name, model, model_args, exact, sizes, cache)
        references.append(row)
        for sampler, make in kernels.items():
            # an identity-mass variant draws from the same key as its default
            offset = SAMPLER_SEEDS[sampler.split(",")[0]]
            key = jax.random.key(SEED + 10 * index + offset)
            samples, grads, wall_s = run(
                make(model), model_args, key, sizes["warmup"], sizes["draws"]
            )
            draws = unconstrained(model, model_args, samples)
            rows.append(
                {
                    "model": name,
                    "sampler": sampler,
                    "dim": draws.shape[-1],
                    **metrics(draws, grads, moments),
                    "wall_s": wall_s,
                }
            )
            log(rows[-1])
    return {
        "chains": CHAINS,
        **sizes,
        "score_langevin_keywords": sorted(score_langevin_keywords() - {"model", "potential_fn"}),
        "labels": {name: entry[0] for name, entry in catalogue.items()},
        "references": references,
        "rows": rows,
        "ratios": ratios(rows),
        "total_s": time.perf_counter() - started,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, a smoke test")
    parser.add_argument("--only", action="append", choices=MODEL_NAMES, help="a model (repeatable)")
    parser.add_argument(
        "--before", action="store_true", help="ScoreLangevin with an identity mass only"
    )
    parser.add_argument("--out", default="preconditioning.json")
    args = parser.parse_args()
    write_json(args.out, main(args.quick, args.only, args.before))
