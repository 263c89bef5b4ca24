"""``check_run``: after a NumPyro run, warn about each reason not to trust its draws, with
what to do (:mod:`robust_score.run_health`)."""

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import unconstrain_fn

from robust_score._checks import check_flag
from robust_score.numpyro.score_diffusion import ScoreDiffusion
from robust_score.numpyro.score_langevin import ScoreLangevin
from robust_score.run_health import (
    RunProblem,
    convergence_problems,
    coordinate_names,
    divergence_problems,
    step_size_problems,
    warn_problems,
)

__all__ = ["check_run"]

# a ScoreDiffusion iteration is a path from noise; one that diverged was not taken
PATH_DIVERGED = (
    "those paths from noise hit a non-finite value, were not taken, and repeat the previous "
    "draw, so they are not draws. The time score (or a ScorePrior posterior's guidance) is "
    "not finite, or too large for the steps, somewhere on the path: use more steps, a smaller "
    "guidance scale, or check the score with rs.diagnostics.trap_report."
)


def check_run(mcmc, *, warn: bool = True) -> list[RunProblem]:
    """The problems of a finished ``numpyro.infer.MCMC`` run, each warned about (``warn``)
    with its remedy, and returned.

    .. code::

        mcmc = MCMC(rs.numpyro.ScoreLangevin(model, adjust=True), num_warmup=1000,
                    num_samples=1000, num_chains=2, chain_method="vectorized")
        mcmc.run(jax.random.key(0), *model_args)
        problems = rs.numpyro.check_run(mcmc)  # after every run, as print_summary

    Checked on the latent sites in unconstrained space (the moves' own coordinates):

    - R̂ above 1.01 or bulk ESS below 100 (``ConvergenceWarning``), any kernel, from at least
      100 draws per chain;
    - more than 5 % of the moves after warm-up divergent (``rs.DivergenceWarning``), any
      kernel that collects ``diverging``;
    - for :class:`ScoreLangevin`, a step the warm-up shrank below 0.1 posterior sd per move
      (``StepSizeWarning``).

    The thresholds and their measurements are in :mod:`robust_score.run_health`.
    """
    check_flag(warn, "warn")
    try:
        state = mcmc.last_state
        samples = mcmc.get_samples(group_by_chain=True)
    except AssertionError as err:  # NumPyro's own "`run` must be called ..."
        raise ValueError("`mcmc` has not been run yet: call `mcmc.run(...)` first.") from err
    if state is None:
        raise ValueError("`mcmc` has not been run yet: call `mcmc.run(...)` first.")
    draws, names = _unconstrained(mcmc, samples)
    problems = convergence_problems(draws, names)
    diverging = mcmc.get_extra_fields(group_by_chain=True).get("diverging")
    if diverging is not None:
        what = PATH_DIVERGED if isinstance(mcmc.sampler, ScoreDiffusion) else None
        problems += divergence_problems(diverging, what)
    if isinstance(mcmc.sampler, ScoreLangevin):
        adapt_state = state.adapt_state
        problems += step_size_problems(
            adapt_state.step_size, _mass_diagonal(adapt_state, state.z), draws, names
        )
    if warn:
        warn_problems(problems, stacklevel=2)
    return problems


def _unconstrained(mcmc, samples):
    """``(chain, draw, k)`` draws of the latent sites in unconstrained space, raveled as the
    kernels ravel them (sites sorted), and a name per coordinate."""
    model, z = mcmc.sampler.model, mcmc.last_state.z
    if model is None:  # a potential_fn kernel samples in its own space
        latent = samples
    else:
        names = z if isinstance(z, dict) else samples
        latent = {name: samples[name] for name in names}
    leaves = jax.tree.leaves(latent)
    chains, num_draws = leaves[0].shape[:2]
    flat = jax.tree.map(lambda a: a.reshape(chains * num_draws, *a.shape[2:]), latent)
    if model is not None:
        args, kwargs = getattr(mcmc, "_args", ()), getattr(mcmc, "_kwargs", {})
        flat = jax.vmap(lambda p: unconstrain_fn(model, args, kwargs, p))(flat)
    raveled = jax.vmap(lambda p: ravel_pytree(p)[0])(flat)
    one = jax.tree.map(lambda a: a[0], flat)
    if isinstance(one, dict):
        shapes = {name: np.shape(one[name]) for name in sorted(one)}
    else:
        shapes = {"z": np.shape(ravel_pytree(one)[0])}
    draws = np.asarray(raveled, np.float64).reshape(chains, num_draws, -1)
    return draws, coordinate_names(shapes)


def _mass_diagonal(adapt_state, z):
    """The diagonal of each chain's inverse mass matrix over the raveled sites (sorted by
    name), from one array or NumPyro's blocks keyed by site tuples (``None``: the
    identity)."""
    imm = getattr(adapt_state, "inverse_mass_matrix", None)
    if imm is None:
        return None
    step_ndim = np.ndim(adapt_state.step_size)  # 1 with a chain axis

    def diagonal(block):
        block = np.asarray(block, np.float64)
        if block.ndim - step_ndim == 2:
            return np.diagonal(block, axis1=-2, axis2=-1)
        return block

    if not isinstance(imm, dict):
        return diagonal(imm)
    per_site = {}
    for sites, block in imm.items():
        values, offset = diagonal(block), 0
        for name in sites:
            size = int(np.prod(np.shape(z[name])[step_ndim:], dtype=int))
            per_site[name] = values[..., offset : offset + size]
            offset += size
    return np.concatenate([per_site[name] for name in sorted(per_site)], axis=-1)
