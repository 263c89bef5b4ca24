"""NumPyro drop-in: the same model sampled by NUTS and by rs.numpyro.ScoreLangevin.

Two models (eight schools, non-centerd; a synthetic logistic regression, d = 10), four kernels:

- NUTS, the reference;
- ScoreLangevin(adjust=True): MALA with the model's exact score — agrees with NUTS;
- ScoreLangevin(adjust=False): ULA with the exact score — close, up to its O(h) bias;
- ScoreLangevin(adjust=False, score_fn=trapped): ULA with a corrupted score.

The corrupted score is the paper's Thm 1 trap (``rs.scores.center_trap``) placed at the
chains' starting point: an attractor there, the exact score outside a ball that no NUTS draw
enters, so its L2 error under the posterior is zero. All chains start at the same
over-dispersed point (NUTS mean + 4 sd per unconstrained coordinate, a common diagnostic
start); ULA with the exact score walks to the posterior, ULA with the trapped score stays.

Run: .venv/bin/python examples/numpyro_dropin.py
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model, unconstrain_fn

import robust_score as rs

CHAINS = 4
# the test suite sets RS_EXAMPLE_QUICK=1: one problem and a fifth of the draws keep CI inside its
# time budget (the script still runs every kernel, the trap included)
QUICK = bool(os.environ.get("RS_EXAMPLE_QUICK"))
NUM_WARMUP, NUM_SAMPLES = (200, 400) if QUICK else (500, 2000)


def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def logistic_regression(x, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 2.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("obs", dist.Bernoulli(logits=alpha + x @ beta), obs=y)


def logistic_data(n=200, p=9):
    key_x, key_beta, key_y = jax.random.split(jax.random.key(2026), 3)
    x = jax.random.normal(key_x, (n, p))
    beta = 0.7 * jax.random.normal(key_beta, (p,))
    y = jax.random.bernoulli(key_y, jax.nn.sigmoid(0.3 + x @ beta)).astype(jnp.float32)
    return (np.asarray(x),), {"y": np.asarray(y)}


PROBLEMS = {
    "eight schools (non-centerd)": (
        eight_schools,
        (np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]),),
        {"y": np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])},
    ),
    "logistic regression (d = 10)": (logistic_regression, *logistic_data()),
}


def sample(
    kernel,
    args,
    kwargs,
    *,
    init_params=None,
    num_warmup=NUM_WARMUP,
    num_samples=NUM_SAMPLES,
    thin=2,
):
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thinning=thin,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )
    extra = () if isinstance(kernel, NUTS) else ("accept_prob", "step_size", "diverging")
    mcmc.run(jax.random.key(1), *args, init_params=init_params, extra_fields=extra, **kwargs)
    return mcmc


def trapped_score(model, args, kwargs, unconstrained_draws, start):
    """The exact score with the Thm 1 trap at ``start``, radii set so no draw is inside."""
    _, potential_fn, _, _ = initialize_model(
        jax.random.key(0), model, model_args=args, model_kwargs=kwargs
    )
    exact = rs.scores.from_logdensity(lambda z: -potential_fn(z))
    flat_start = ravel_pytree(start)[0]
    flat_draws = jax.vmap(lambda z: ravel_pytree(z)[0])(unconstrained_draws)
    nearest = float(jnp.linalg.norm(flat_draws - flat_start, axis=-1).min())
    r_out = 0.9 * nearest
    r_in = 0.6 * r_out
    stiffness = 4.0 * flat_start.size / r_in**2  # the well's spread sqrt(d / k) = r_in / 2
    trap = rs.scores.center_trap(exact, start, r_in=r_in, r_out=r_out, stiffness=stiffness)
    error = float(rs.scores.l2_error(trap, exact, unconstrained_draws))
    return trap, error, r_out


def columns(mcmc):
    """Posterior mean and sd of every scalar (each entry of a vector site)."""
    out = {}
    for site, draws in mcmc.get_samples().items():
        draws = np.asarray(draws).reshape(draws.shape[0], -1)
        for j in range(draws.shape[1]):
            name = site if draws.shape[1] == 1 else f"{site}[{j}]"
            out[name] = (draws[:, j].mean(), draws[:, j].std())
    return out


def compare(title, model, args, kwargs):
    nuts = sample(
        NUTS(model), args, kwargs, num_warmup=min(300, NUM_WARMUP), num_samples=500, thin=1
    )
    unconstrained = jax.vmap(lambda s: unconstrain_fn(model, args, kwargs, s))(nuts.get_samples())
    start = jax.tree.map(lambda z: z.mean(0) + 4.0 * z.std(0), unconstrained)
    starts = jax.tree.map(lambda z: jnp.broadcast_to(z, (CHAINS, *z.shape)), start)
    trap, trap_error, radius = trapped_score(model, args, kwargs, unconstrained, start)

    mala = sample(rs.numpyro.ScoreLangevin(model, adjust=True), args, kwargs, init_params=starts)
    ula = sample(rs.numpyro.ScoreLangevin(model), args, kwargs, init_params=starts)
    # the trapped score disagrees with the model, which would shrink an adapted step to
    # nothing: drive it at the step ULA chose with the exact score
    ula_step = float(ula.last_state.adapt_state.step_size.min())
    trapped_kernel = rs.numpyro.ScoreLangevin(
        model, score_fn=trap, step_size=ula_step, adapt_step_size=False
    )
    trapped = sample(trapped_kernel, args, kwargs, init_params=starts)

    runs = {"NUTS": nuts, "MALA exact": mala, "ULA exact": ula, "ULA trapped": trapped}
    tables = {name: columns(run) for name, run in runs.items()}
    print(f"\n== {title}: posterior mean (sd), {CHAINS} chains ==")
    print(
        f"trap: attractor at the start, exact score beyond r = {radius:.2f} of it; "
        f"relative L2 error under the NUTS draws = {trap_error:.1e}"
    )
    for name in ("MALA exact", "ULA exact"):
        extra = runs[name].get_extra_fields()
        print(
            f"{name}: step size {float(extra['step_size'].mean()):.3g}, "
            f"acceptance {float(extra['accept_prob'].mean()):.2f}, "
            f"divergences {int(extra['diverging'].sum())}"
        )
    print(f"{'site':16s}" + "".join(f"{name:>20s}" for name in runs))
    for site in tables["NUTS"]:
        cells = "".join(
            f"{tables[name][site][0]:11.2f} ({tables[name][site][1]:5.2f})" for name in runs
        )
        print(f"{site:16s}{cells}")


def main():
    problems = list(PROBLEMS.items())
    if QUICK:
        problems = problems[:1]
    for title, (model, args, kwargs) in problems:
        compare(title, model, args, kwargs)


if __name__ == "__main__":
    main()
