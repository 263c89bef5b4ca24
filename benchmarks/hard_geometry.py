"""Do ``rs.numpyro.ScoreLangevin``'s runs say when they miss the posterior? MALA on three hard
NumPyro models and four clean ones, and ULA's bias against its warm-up target acceptance.

Hard models, as users write them: eight schools centred (d = 10, a funnel in τ), horseshoe
regression on scikit-learn's ``load_diabetes`` (d = 22, the model of
``benchmarks/preconditioning.py``) and Neal's funnel (d = 10). Clean ones, the exact-score
targets of ``tests/test_numpyro.py`` and ``tests/test_kernels.py``: eight schools non-centred,
a logistic regression (d = 10), a correlated Gaussian (d = 3), and the logistic regression on
``load_breast_cancer`` (d = 31).

Each MALA row is ``ScoreLangevin(model, adjust=True)`` with its defaults, 4 chains x (1000
warm-up + 2000 draws) under ``MCMC(chain_method="vectorized")``, against a NUTS reference of
4 x (1000 + 4000) (the exact moments for the Gaussian and the funnel). Reported, on the
unconstrained coordinates: post-warm-up divergences (MALA's and the reference's), max R̂ and
min bulk ESS (ArviZ), max |mean - reference mean| / reference sd, the adapted step, the
proposal's scale over the posterior's (``sqrt(2 h M⁻¹_ii) / sd_i``, smallest over
coordinates), how many moves had a MALA log acceptance ratio below -10, -20, -50 and -87,
and the names of the warnings ``rs.numpyro.check_run`` raised (``None`` when run on a
checkout from before it existed: the "before" column of docs/numpyro.md).

The ULA row runs ``ScoreLangevin(model)`` (ULA, its default step rule) on the non-centred
eight schools, ``--seeds`` runs, against the NUTS reference: the bias of every unconstrained
mean in reference sds (pooled over seeds), the largest sd ratio, the Monte-Carlo error of the
pooled mean in sds (1/sqrt(pooled ESS)), and the min bulk ESS per 1000 gradients. Run on an
earlier checkout, it measures that checkout's default rule.

Run: .venv/bin/python benchmarks/hard_geometry.py [--quick] [--only MODEL] [--skip-ula]
[--skip-mala] [--seeds 2] [--out hard_geometry.json]
"""

import argparse
import time
import warnings

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS
from preconditioning import (
    eight_schools,
    funnel,
    horseshoe_regression,
    logistic_regression,
    standardise,
    unconstrained,
)
from timing import log, machine, write_json

import robust_score as rs

CHAINS, WARMUP, DRAWS, REFERENCE_DRAWS = 4, 1000, 2000, 4000
QUICK = {"warmup": 300, "draws": 500, "reference_draws": 1000}
LOG_RATIO_CUTS = (10.0, 20.0, 50.0, 87.0)  # float32 exp underflows below about -87
MISS_SD = 0.3  # a run misses the reference when some mean is off by more than this


def eight_schools_centred(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", len(sigma)):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def logistic_with_intercept(x, y=None):
    """The logistic regression of tests/test_numpyro.py (intercept + 9 coefficients)."""
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 2.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("obs", dist.Bernoulli(logits=alpha + x @ beta), obs=y)


def gaussian(mean, scale_tril):
    numpyro.sample("x", dist.MultivariateNormal(mean, scale_tril=scale_tril))


def models():
    """``{name: (model, args, exact, hard)}``; ``exact``: ``(mean, sd)`` per unconstrained
    coordinate where known (else a NUTS reference is run)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    schools = (
        jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]),
        jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]),
    )
    x, y = load_diabetes(return_X_y=True)
    diabetes = tuple(jnp.asarray(standardise(a), jnp.float32) for a in (x, y))
    x, y = load_breast_cancer(return_X_y=True)
    cancer = (
        jnp.asarray(np.hstack([np.ones((len(x), 1)), standardise(x)]), jnp.float32),
        jnp.asarray(y, jnp.float32),
    )
    key_x, key_beta, key_y = jax.random.split(jax.random.key(2026), 3)
    x = jax.random.normal(key_x, (200, 9))
    beta = 0.7 * jax.random.normal(key_beta, (9,))
    y = jax.random.bernoulli(key_y, jax.nn.sigmoid(0.3 + x @ beta))
    mean = jnp.array([1.0, -0.5, 0.25])
    cov = jnp.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]])
    funnel_sd = np.r_[3.0, np.full(9, np.exp(9 / 4))]  # Var x_i = E e^v = e^{9/2}
    return {
        "eight_schools_centred": (eight_schools_centred, schools, None, True),
        "horseshoe": (horseshoe_regression, diabetes, None, True),
        "funnel": (funnel, (), (np.zeros(10), funnel_sd), True),
        "eight_schools": (eight_schools, schools, None, False),
        "logistic": (logistic_with_intercept, (x, y.astype(jnp.float32)), None, False),
        "gaussian": (gaussian, (mean, jnp.linalg.cholesky(cov)),
                     (np.asarray(mean), np.sqrt(np.diag(cov))), False),
        "breast_cancer": (logistic_regression, cancer, None, False),
    }  # fmt: skip


def sample(kernel, model_args, key, warmup, draws, extra_fields=()):
    mcmc = MCMC(
        kernel,
        num_warmup=warmup,
        num_samples=draws,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )
    started = time.perf_counter()
    mcmc.run(key, *model_args, extra_fields=extra_fields)
    jax.block_until_ready(mcmc.get_samples())
    return mcmc, time.perf_counter() - started


def summary(draws, reference):
    """Max R̂, min bulk ESS, max |Δmean| / sd and max sd ratio against ``reference``."""
    mean, sd = reference
    if not np.all(np.isfinite(draws)):
        return {"max_rhat": np.inf, "min_ess": 0.0, "max_mean_shift_sd": np.inf}
    shift = np.abs(draws.mean(axis=(0, 1)) - mean) / sd
    return {
        "max_rhat": float(np.max(arviz_stats.rhat(draws))),
        "min_ess": float(np.min(arviz_stats.ess(draws, method="bulk"))),
        "max_mean_shift_sd": float(shift.max()),
        "worst_coordinate": int(shift.argmax()),
        "max_sd_ratio": float(np.max(draws.std(axis=(0, 1)) / sd)),
    }


def reference(name, model, model_args, exact, sizes):
    if exact is not None:
        return tuple(np.asarray(a, np.float64) for a in exact), {"reference": "exact"}
    mcmc, wall_s = sample(
        NUTS(model), model_args, jax.random.key(1000), sizes["warmup"], sizes["reference_draws"]
    )
    draws = unconstrained(model, model_args, mcmc.get_samples(group_by_chain=True))
    moments = draws.mean(axis=(0, 1)), draws.std(axis=(0, 1))
    row = {
        "reference": f"NUTS {CHAINS} x {sizes['reference_draws']}",
        "nuts_divergences": int(mcmc.get_extra_fields()["diverging"].sum()),
        "nuts_max_rhat": float(np.max(arviz_stats.rhat(draws))),
        "wall_s": wall_s,
    }
    log(name, row)
    return moments, row


def health_warnings(mcmc):
    """The categories of the warnings ``rs.numpyro.check_run`` raises (None: it does not
    exist in the checkout measured)."""
    check = getattr(rs.numpyro, "check_run", None)
    if check is None:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(mcmc)
    return [w.category.__name__ for w in caught]


def step_over_scale(mcmc, draws):
    """Per chain, the smallest ``sqrt(2 h M⁻¹_ii) / sd_i`` over coordinates (sd pooled)."""
    adapt = mcmc.last_state.adapt_state
    step = np.asarray(adapt.step_size, np.float64)
    imm = getattr(adapt, "inverse_mass_matrix", None)
    if imm is None:
        diagonal = np.ones((CHAINS, draws.shape[-1]))
    else:
        if isinstance(imm, dict):  # NUTS's form: the default is one block over all sites
            (imm,) = imm.values()
        imm = np.asarray(imm, np.float64)
        diagonal = np.diagonal(imm, axis1=-2, axis2=-1) if imm.ndim == 3 else imm
    sd = draws.std(axis=(0, 1))
    return np.min(np.sqrt(2 * step[:, None] * diagonal) / sd, axis=1)


def mala_row(name, model, model_args, moments, sizes, seed=0):
    mcmc, wall_s = sample(
        rs.numpyro.ScoreLangevin(model, adjust=True),
        model_args,
        jax.random.key(seed),
        sizes["warmup"],
        sizes["draws"],
        extra_fields=("accept_prob",),
    )
    draws = unconstrained(model, model_args, mcmc.get_samples(group_by_chain=True))
    fields = mcmc.get_extra_fields(group_by_chain=True)
    log_accept = np.log(np.asarray(fields["accept_prob"], np.float64))
    row = {
        "model": name,
        "divergences": int(fields["diverging"].sum()),
        "divergences_per_chain": [int(n) for n in fields["diverging"].sum(axis=1)],
        **summary(draws, moments),
        "step_size": [float(h) for h in np.asarray(mcmc.last_state.adapt_state.step_size)],
        "step_over_scale": [float(r) for r in step_over_scale(mcmc, draws)],
        "log_ratio_below": {f"-{cut:g}": int(np.sum(log_accept < -cut)) for cut in LOG_RATIO_CUTS},
        "warnings": health_warnings(mcmc),
        "wall_s": wall_s,
    }
    row["signalled"] = bool(row["divergences"] or row["warnings"])
    log(row)
    return row


def ula_rows(moments, sizes, seeds):
    model, model_args, _, _ = models()["eight_schools"]
    runs, divergences, steps = [], 0, []
    for seed in range(seeds):
        mcmc, _ = sample(rs.numpyro.ScoreLangevin(model), model_args, jax.random.key(100 + seed),
                         sizes["warmup"], sizes["draws"])  # fmt: skip
        runs.append(unconstrained(model, model_args, mcmc.get_samples(group_by_chain=True)))
        divergences += int(mcmc.get_extra_fields()["diverging"].sum())
        steps.append(np.asarray(mcmc.last_state.step_size).tolist())
    pooled = np.concatenate(runs, axis=0)  # seeds' chains side by side
    mean, sd = moments
    bias = (pooled.mean(axis=(0, 1)) - mean) / sd
    ess = np.asarray(arviz_stats.ess(pooled, method="bulk"))
    gradients = pooled.shape[0] * (sizes["warmup"] + sizes["draws"])
    row = {
        "seeds": seeds,
        "bias_sd": [round(float(b), 3) for b in bias],
        "max_abs_bias_sd": float(np.abs(bias).max()),
        "worst_coordinate": int(np.abs(bias).argmax()),
        "monte_carlo_sd": float(np.max(1 / np.sqrt(ess))),
        "max_sd_ratio": float(np.max(pooled.std(axis=(0, 1)) / sd)),
        "min_ess_per_1000_gradients": float(1000 * ess.min() / gradients),
        "step_sizes": steps,
        "divergences": divergences,
    }
    log(row)
    return [row]


def main(quick=False, only=None, skip_ula=False, seeds=2, skip_mala=False):
    sizes = dict(QUICK) if quick else {"warmup": WARMUP, "draws": DRAWS}
    sizes.setdefault("reference_draws", REFERENCE_DRAWS)
    started = time.perf_counter()
    catalogue = models()
    names = [] if skip_mala else only or list(catalogue)
    references, moments_of, rows = {}, {}, []

    def moments(name):
        if name not in moments_of:
            model, model_args, exact, _ = catalogue[name]
            moments_of[name], references[name] = reference(name, model, model_args, exact, sizes)
        return moments_of[name]

    for name in names:
        model, model_args, _, hard = catalogue[name]
        row = mala_row(name, model, model_args, moments(name), sizes)
        row["hard"] = hard
        row["misses"] = row["max_mean_shift_sd"] > MISS_SD
        rows.append(row)
    ula = []
    if not skip_ula:
        ula = ula_rows(moments("eight_schools"), sizes, seeds)
    return {
        "machine": machine(),
        "chains": CHAINS,
        **sizes,
        "references": references,
        "mala": rows,
        "ula_eight_schools": ula,
        "total_s": time.perf_counter() - started,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, a smoke test")
    parser.add_argument("--only", action="append", help="a model (repeatable)")
    parser.add_argument("--skip-ula", action="store_true", help="MALA rows only")
    parser.add_argument("--skip-mala", action="store_true", help="the ULA row only")
    parser.add_argument("--seeds", type=int, default=2, help="ULA runs")
    parser.add_argument("--out", default="hard_geometry.json")
    args = parser.parse_args()
    write_json(args.out, main(args.quick, args.only, args.skip_ula, args.seeds, args.skip_mala))
