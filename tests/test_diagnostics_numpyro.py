"""Trap diagnostics on NumPyro runs: read in the model's unconstrained latent space, with the
run's own kernel re-run as the restart sampler.

Monte-Carlo room. Every run uses fixed keys, drawn once and not searched. Clean runs are
only required not to *fail*: a restart group fails only when its effect exceeds the fail
threshold (0.1) with p < 0.01 *and* the group is self-consistent (it agrees with itself,
moved, mixed). On a sampler that mixes each group's effect is noise; on these keys it was at
most 0.03 for NUTS and MALA on eight schools and 0.12 (p = 0.5) on the one-site model, so
the tests keep the whole gap to the threshold plus the p-value guard (about a 1 % false-fail
rate per group). The trapped run sits 8.9 from the posterior mode, where every escaping
restart ends: its farthest group's effect was 0.9-1.0 (p < 1e-15) against the 0.1 threshold.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from arviz_base import from_numpyro
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model

import robust_score as rs
from robust_score.diagnostics import RESTART, restart_sensitivity, trap_report
from robust_score.diagnostics.inputs import gather

SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
LATENT = ["mu", "tau", "theta_tilde"]  # theta is deterministic, obs observed


def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def half_normal(scale):
    numpyro.sample("x", dist.HalfNormal(scale))  # one site, constrained to x > 0


def run_mcmc(
    kernel, *args, num_warmup=200, num_samples=200, thinning=1, init_params=None, **kwargs
):
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        thinning=thinning,
        num_chains=4,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(1), *args, init_params=init_params, **kwargs)
    return mcmc


@pytest.fixture(scope="module")
def nuts():
    return run_mcmc(NUTS(eight_schools), SIGMA, y=Y)


@pytest.fixture(scope="module")
def mala():
    # MALA needs longer than NUTS on eight schools: at 300 + 300 steps its restarts from 10
    # sd out have not mixed in mu (group R-hat 2), which a plain energy test reads as "ends
    # elsewhere"; 1000 + 1000 steps (thinned to 500 draws) is a converged run
    kernel = rs.numpyro.ScoreLangevin(eight_schools, adjust=True)
    return run_mcmc(kernel, SIGMA, num_warmup=1000, num_samples=1000, thinning=2, y=Y)


def by_hand(mcmc) -> np.ndarray:
    """Eight schools' latent sites mapped to unconstrained space by hand: (chain, draw, 10)."""
    samples = mcmc.get_samples(group_by_chain=True)
    mu, tau, theta_tilde = (np.asarray(samples[name]) for name in LATENT)
    return np.concatenate([mu[..., None], np.log(tau)[..., None], theta_tilde], axis=-1)


def groups_of(result) -> dict:
    """A restart result's groups by label."""
    return {group.label: group for group in result.details.groups}


@pytest.mark.parametrize("run", ["nuts", "mala"])
def test_trap_report_reruns_the_runs_own_kernel(run, request):
    mcmc = request.getfixturevalue(run)
    kernel_state = dict(mcmc.sampler.__dict__)
    samples = jax.tree.map(np.asarray, mcmc.get_samples())
    report = trap_report(mcmc)  # no sampler=: the MCMC's kernel, arguments and warm-up
    restart = report[RESTART]
    assert restart.status != "fail", restart
    assert restart.details.sampler == "numpyro"
    assert len(restart.details.groups) == 3
    # the restarts warm up as long as the user's run did
    assert gather(mcmc)[1].runner.num_warmup == mcmc.num_warmup
    # the checks read the latent sites only (no deterministic theta), tau on the log scale
    assert sorted(report.draws.var_names) == LATENT
    assert sorted(report.draws.tree["posterior"].data_vars) == LATENT
    np.testing.assert_allclose(report.draws.flat, by_hand(mcmc), atol=1e-5)
    # the user's MCMC and kernel are left as they were
    assert all(mcmc.sampler.__dict__[name] is value for name, value in kernel_state.items())
    after = jax.tree.map(np.asarray, mcmc.get_samples())
    assert all(np.array_equal(after[name], samples[name]) for name in samples)


def test_from_numpyro_tree_with_the_runs_kernel(mala):
    tree = from_numpyro(mala)  # constrained values, theta included
    assert "theta" in tree["posterior"].data_vars
    # the kernel alone does not know the model's arguments: the error says what to pass
    with pytest.raises(TypeError, match="model_args"):
        restart_sensitivity(tree, mala.sampler)
    result = restart_sensitivity(
        tree, mala.sampler, model_args=(SIGMA,), model_kwargs={"y": Y}, rng_key=jax.random.key(3)
    )
    assert result.status != "fail", result
    # nothing says how long the user's run warmed up or thinned: each restart warms up for
    # num_steps = the 500 kept draws per chain, at least 200
    assert result.details.num_steps == 500
    _, inputs = gather(tree, sampler=mala.sampler, model_args=(SIGMA,), model_kwargs={"y": Y})
    assert inputs.runner.num_warmup is None  # None: warm up for num_steps


def test_one_constrained_site_and_explicit_model_args():
    mcmc = run_mcmc(rs.numpyro.ScoreLangevin(half_normal, adjust=True), 2.0)
    report = trap_report(mcmc)
    # the lone site stays a dict position {"x": ...} (NumPyro's), on the log scale
    assert report.draws.var_names == ("x",)
    x = np.asarray(report.draws.tree["posterior"]["x"].values)
    np.testing.assert_allclose(x, np.log(mcmc.get_samples(group_by_chain=True)["x"]), atol=1e-6)
    restart = report[RESTART]
    assert restart.status != "fail", restart
    # starts at 100 sd of log x overflow exp in float32: they are pulled in until finite
    assert restart.details.starts_pulled_in["overdispersed x100"] > 0
    assert groups_of(restart)["overdispersed x100"].diverged == 0
    # explicit arguments win over the run's: HalfNormal(40) ends far from HalfNormal(2)
    moved = restart_sensitivity(mcmc, model_args=(40.0,))
    assert moved.status == "fail" and moved.finding == "trapped", moved


def test_rs_run_dict_positions_with_a_blackjax_sampler():
    def logdensity(p):
        return -0.5 * (jnp.sum(p["a"] ** 2) + jnp.sum((p["b"] - 1.0) ** 2))

    starts = {"a": jnp.zeros((4, 3)), "b": jnp.zeros((4, 2))}
    tree = rs.run(rs.mala(logdensity, 0.5), jax.random.key(0), starts, 400)
    restart = trap_report(tree, sampler=rs.mala(logdensity, 0.5))[RESTART]
    assert restart.status != "fail", restart
    assert restart.details.sampler == "blackjax" and len(restart.details.groups) == 3


def test_a_trapped_numpyro_run_fails_the_restart_check():
    def model():
        numpyro.sample("loc", dist.Normal(0.0, 1.0).expand([4]).to_event(1))
        numpyro.sample("scale", dist.LogNormal(0.0, 0.5))  # log scale ~ N(0, 0.5^2)

    _, potential_fn, _, _ = initialize_model(jax.random.key(0), model)
    exact = rs.scores.from_logdensity(lambda z: -potential_fn(z))
    # Thm 1's trap at the chains' start, 4 posterior sd out in every unconstrained
    # coordinate (8.9 from the mode): the well r <= 3 holds them at spread sqrt(1/8) per
    # coordinate, the exact score beyond r = 4 (so ~5 sd of room before any posterior mass)
    center = {"loc": jnp.full(4, 4.0), "scale": jnp.asarray(2.0)}
    trap = rs.scores.center_trap(exact, center, r_in=3.0, r_out=4.0, stiffness=8.0)
    kernel = rs.numpyro.ScoreLangevin(
        model, score_fn=trap, adjust=False, adapt_step_size=False, step_size=0.1
    )
    starts = jax.tree.map(lambda c: jnp.broadcast_to(c, (4, *c.shape)), center)
    mcmc = run_mcmc(kernel, init_params=starts)
    samples = mcmc.get_samples(group_by_chain=True)
    z = np.concatenate([samples["loc"], np.log(samples["scale"])[..., None]], axis=-1)
    assert np.linalg.norm(z - np.array([4.0, 4, 4, 4, 2]), axis=-1).max() < 3.0  # trapped
    restart = trap_report(mcmc)[RESTART]
    assert restart.status == "fail" and restart.finding == "trapped", restart
    # the x3 restarts start inside the trap's reach and fall back in: only far ones escape
    groups = groups_of(restart)
    assert groups["overdispersed x3"].status != "fail"
    assert groups["overdispersed x100"].status == "fail"


def test_bad_inputs_are_named(nuts):
    tree = from_numpyro(nuts)
    with pytest.raises(TypeError, match="`model_args` must be a tuple"):
        trap_report(nuts, model_args=SIGMA)
    with pytest.raises(TypeError, match="`model_kwargs` must be a dict"):
        restart_sensitivity(nuts, model_kwargs=[Y])
    # a kernel for another model: the tree lacks its latent site
    other = rs.numpyro.ScoreLangevin(half_normal)
    with pytest.raises(ValueError, match=r"lacks the model's latent site\(s\) \['x'\]"):
        restart_sensitivity(tree, other, model_args=(1.0,))
    with pytest.raises(TypeError, match="a numpyro MCMCKernel"):
        restart_sensitivity(tree, object())


def test_a_tree_without_a_sampler_is_skipped(nuts):
    # a tree with no NumPyro kernel and no BlackJAX sampler is skipped, not guessed at
    assert restart_sensitivity(from_numpyro(nuts)).status == "skipped"
