"""Run the user's own sampler from given starts, whatever the user gave.

:func:`as_runner` turns a ``blackjax.SamplingAlgorithm``, a NumPyro ``MCMCKernel`` or the
NumPyro ``MCMC`` of the run into a :class:`Runner`: the user's draws in the space that
sampler moves in, and ``run(rng_key, flat_starts, num_steps, thin)`` returning draws in that
same flat space. The restart check calls ``run`` and never asks which kind it was.

- BlackJAX: positions are the posterior's variables as ``rs.run`` wrote them (a lone ``x``
  is an array, several variables a dict); ``rs.sample_chains`` runs them.
- NumPyro: positions are the model's latent sites in unconstrained space (deterministic and
  observed sites are never handed to the kernel); a fresh ``MCMC`` over a copy of the kernel
  (``chain_method="vectorized"``, or ``"sequential"`` for kernels without a vectorized mode
  such as ``BarkerMH``) warms up and samples from the starts given as
  ``init_params``, with the model arguments of the user's run, and its draws are read
  without NumPyro's postprocessing, i.e. unconstrained. NumPyro compiles every
  ``MCMC.run`` afresh (seconds for NUTS), so :meth:`Runner.for_groups` runs all the restart
  groups' chains as one vectorized ``MCMC`` the first time any group is asked for.
"""

import copy
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_count, check_model_arguments, check_sampler_or_kernel
from robust_score.diagnostics.draws import (
    Draws,
    as_datatree,
    is_numpyro_mcmc,
    numpyro_datatree,
    posterior_draws,
)

__all__ = ["Runner", "as_runner", "flatten_draws", "run_quietly"]

# a start 2**40 times its distance from the center away still overflowing is left as it is
_MAX_HALVINGS = 40


def flatten_draws(positions) -> np.ndarray:
    """Positions pytree with leading ``(chain, draw)`` axes -> ``(chain, draw, dim)``."""
    leaves = jax.tree.leaves(positions)
    chains, draws = leaves[0].shape[:2]
    return np.concatenate(
        [np.asarray(leaf, np.float64).reshape(chains, draws, -1) for leaf in leaves], axis=-1
    )


def run_quietly(sampler, rng_key, positions, num_steps: int, thin: int = 1):
    """The positions of ``rs.sample_chains`` without its warnings (divergent chains are
    reported by the checks)."""
    from robust_score.sampling import sample_chains

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positions, _, _ = sample_chains(sampler, rng_key, positions, num_steps, thin=thin)
    return positions


class Runner(NamedTuple):
    """The user's draws in the sampler's space and a way to run the sampler there."""

    tree: xr.DataTree  # the user's run as the sampler sees it (its `posterior` group)
    draws: Draws  # the same, flattened: `run` takes and returns this flat space
    run: Callable  # run(rng_key, flat_starts (chain, dim), num_steps, thin=1) -> (chain, draw, dim)
    kind: str  # "blackjax" or "numpyro"
    num_warmup: int | None  # NumPyro: warm-up steps before each run (None: num_steps)
    startable: Callable | None = None  # flat starts -> where log density and gradient are finite
    model: Callable | None = None  # NumPyro: the kernel's model and the arguments it runs with
    model_args: tuple = ()
    model_kwargs: dict | None = None

    def pull_in(self, flat_starts, center) -> tuple[np.ndarray, int]:
        """``(starts, how many moved)``: each start where the model's log density or its
        gradient is not finite (NumPyro: an overdispersed start past the float range of a
        positive site's ``exp``) moved towards ``center``, halving its offset until both
        are finite. BlackJAX samplers get their starts as they are."""
        starts = np.array(flat_starts, dtype=np.float64)
        if self.startable is None:
            return starts, 0
        bad = ~self.startable(starts)
        moved = bad.copy()
        for _ in range(_MAX_HALVINGS):
            if not bad.any():
                break
            starts[bad] = center + 0.5 * (starts[bad] - center)
            bad = ~self.startable(starts)
        return starts, int(moved.sum())

    def for_groups(self, groups: dict) -> Callable:
        """``run`` for start groups known in advance (``{label: flat starts}``), called once
        per group with that group's starts array. BlackJAX compiles once per shape and keeps
        ``run`` as it is; NumPyro runs every group's chains together at the first call, with
        its key, and hands each group its own chains."""
        if self.kind != "numpyro":
            return self.run
        return _run_together(self.run, groups)


def as_runner(data, sampler=None, *, model_args=None, model_kwargs=None, num_warmup=None) -> Runner:
    """A :class:`Runner` for ``sampler`` over the draws in ``data``.

    ``sampler``: a ``blackjax.SamplingAlgorithm``, a NumPyro ``MCMCKernel`` or a NumPyro
    ``MCMC``; ``None`` when ``data`` is a NumPyro ``MCMC`` means its own kernel. For NumPyro,
    the model's arguments are ``model_args`` / ``model_kwargs`` when given, else those the
    ``MCMC`` (``data`` or ``sampler``) last ran with; ``num_warmup`` defaults to that run's
    warm-up, else to the number of steps of each restart run.
    """
    check_model_arguments(model_args, model_kwargs)
    if num_warmup is not None:
        check_count(num_warmup, "num_warmup", minimum=0)
    if sampler is None and is_numpyro_mcmc(data):
        sampler = data
    kind = check_sampler_or_kernel(sampler, "sampler")
    if kind == "blackjax":
        tree = as_datatree(data)
        draws = posterior_draws(tree)
        return Runner(tree, draws, _blackjax_run(sampler, draws), "blackjax", None)

    run_mcmc = sampler if kind == "numpyro mcmc" else data if is_numpyro_mcmc(data) else None
    kernel = sampler.sampler if kind == "numpyro mcmc" else sampler
    if model_args is None and run_mcmc is not None:
        model_args = getattr(run_mcmc, "_args", None)
    if model_kwargs is None and run_mcmc is not None:
        model_kwargs = getattr(run_mcmc, "_kwargs", None)
    model_args = () if model_args is None else tuple(model_args)
    model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
    if num_warmup is None and run_mcmc is not None:
        num_warmup = run_mcmc.num_warmup
    model = getattr(kernel, "model", None)  # None: a kernel built from a potential_fn
    tree = numpyro_datatree(data, model, model_args, model_kwargs, num_warmup=num_warmup)
    draws = posterior_draws(tree)
    startable = _startable(
        model, getattr(kernel, "_potential_fn", None), model_args, model_kwargs, draws
    )
    run = _numpyro_run(kernel, model_args, model_kwargs, num_warmup, draws, startable)
    return Runner(
        tree, draws, run, "numpyro", num_warmup, startable, model, model_args, model_kwargs
    )


def _position_dtype(draws: Draws):
    return jnp.result_type(*jax.tree.leaves(draws.unravel(jnp.zeros(draws.dim))))


def _blackjax_run(sampler, draws: Draws) -> Callable:
    dtype = _position_dtype(draws)

    def run(rng_key, flat_starts, num_steps: int, thin: int = 1) -> np.ndarray:
        positions = jax.vmap(draws.unravel)(jnp.asarray(flat_starts, dtype))
        return flatten_draws(run_quietly(sampler, rng_key, positions, num_steps, thin))

    return run


def _startable(model, potential_fn, model_args, model_kwargs, draws: Draws) -> Callable:
    """``flat starts (chain, dim) -> (chain,) bool``: the potential energy (of ``model``, less
    any ``ScorePrior`` site's unknown density, else ``potential_fn``) and its gradient are
    finite there, evaluated as one compiled program.
    A kernel with neither gives every start a try."""
    from numpyro.infer.util import potential_energy

    from robust_score.numpyro.score_prior import without_prior_densities

    dtype = _position_dtype(draws)
    if model is not None:
        model = without_prior_densities(model)  # a ScorePrior site has no density to read

        def potential(z):
            return potential_energy(model, model_args, model_kwargs, z)
    elif potential_fn is not None:
        potential = potential_fn
    else:
        return lambda flat_starts: np.ones(len(flat_starts), bool)

    def finite(flat):
        value, grad = jax.value_and_grad(potential)(draws.unravel(flat))
        return jnp.isfinite(value) & jnp.isfinite(ravel_pytree(grad)[0]).all()

    finite_all = jax.jit(jax.vmap(finite))
    return lambda flat_starts: np.asarray(finite_all(jnp.asarray(flat_starts, dtype)))


def _numpyro_run(
    kernel, model_args, model_kwargs, num_warmup, draws: Draws, startable: Callable
) -> Callable:
    from numpyro.infer import MCMC

    dtype = _position_dtype(draws)

    def run(rng_key, flat_starts, num_steps: int, thin: int = 1) -> np.ndarray:
        flat_starts = np.asarray(flat_starts)
        positions = jax.vmap(draws.unravel)(jnp.asarray(flat_starts, dtype))
        # a start where the model is not finite cannot be run (NumPyro's kernels refuse or
        # stall there): its chain is reported as diverged (NaN), as a chain that blew up is
        runnable = startable(flat_starts)
        out = np.full((len(flat_starts), num_steps // thin, draws.dim), np.nan)
        if not runnable.any():
            return out
        positions = jax.tree.map(lambda leaf: leaf[runnable], positions)
        num_chains = int(runnable.sum())
        if num_chains == 1:  # NumPyro takes one chain's init_params without a chain axis
            positions = jax.tree.map(lambda leaf: leaf[0], positions)
        for chain_method in ("vectorized", "sequential"):
            mcmc = MCMC(
                copy.copy(kernel),  # the copy's closures are rebuilt; the user's stay as they are
                num_warmup=num_steps if num_warmup is None else num_warmup,
                num_samples=num_steps,
                thinning=thin,
                num_chains=num_chains,
                chain_method=chain_method,
                progress_bar=False,
                postprocess_fn=_identity,  # keep the draws in unconstrained space
            )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mcmc.run(rng_key, *model_args, init_params=positions, **model_kwargs)
                break
            except (AssertionError, NotImplementedError):
                # kernels without a vectorized mode (BarkerMH) say so at `init`: one chain
                # after another then; an error of any other kind is the user's to see
                if chain_method == "sequential":
                    raise
        out[runnable] = flatten_draws(mcmc.get_samples(group_by_chain=True))
        return out

    return run


def _run_together(run: Callable, groups: dict) -> Callable:
    arrays = [np.asarray(starts) for starts in groups.values()]
    bounds = np.cumsum([0] + [len(starts) for starts in arrays])
    cache = {}

    def run_group(rng_key, flat_starts, num_steps: int, thin: int = 1) -> np.ndarray:
        index = next(
            (i for i, starts in enumerate(arrays) if np.array_equal(starts, flat_starts)), None
        )
        if index is None:  # not one of the announced groups: run it alone
            return run(rng_key, flat_starts, num_steps, thin)
        if (num_steps, thin) not in cache:
            cache[(num_steps, thin)] = run(rng_key, np.concatenate(arrays), num_steps, thin)
        return cache[(num_steps, thin)][bounds[index] : bounds[index + 1]]

    return run_group


def _identity(z):
    return z
