"""The state of :class:`~robust_score.numpyro.ScoreLangevin` and its two constructors: the
state at ``init`` and the state after a move."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer.hmc_util import HMCAdaptState

__all__ = ["ScoreLangevinState", "initial_state", "next_state"]


class ScoreLangevinState(NamedTuple):
    """State of :class:`ScoreLangevin` (one chain; every field gains a leading chain axis
    under ``chain_method="vectorized"``).

    - **i**: iteration, counted across warm-up and sampling.
    - **z**: unconstrained values at the latent sites.
    - **potential_energy**: ``-log p(z)`` (unnormalized, unconstrained space); with
      ``ScorePrior`` sites, whose density is unknown, that of the rest of the model.
    - **score**: the drift at ``z``: ``score_fn(z)`` if given, else ``-grad potential(z)``
      (with ``ScorePrior`` sites, plus their scores).
    - **accept_prob**: MALA's acceptance probability of the last move; for ULA, whose moves
      are all taken, what MALA's would have been (a measure of ULA's bias), or 1 with
      ``ScorePrior`` sites, where it cannot be computed.
    - **mean_accept_prob**: its running mean over the current phase (warm-up or sampling).
    - **diverging**: the last move diverged (see :class:`ScoreLangevin`).
    - **num_diverging**: divergences so far in the current phase.
    - **step_size**: the step size the last move used.
    - **adapt_state**: NumPyro's ``HMCAdaptState``, as NUTS's: ``step_size`` and
      ``inverse_mass_matrix`` (for a model, a dict keyed by tuples of site names) of the
      next move.
    - **rng_key**: the chain's PRNG key.

    As NUTS's state, it also answers ``num_steps`` (1: one gradient per move),
    ``trajectory_length`` (the step) and ``z_grad`` (``grad potential``, i.e. ``-score``),
    so ``extra_fields`` written for NUTS work.
    """

    i: jax.Array
    z: Any
    potential_energy: jax.Array
    score: Any
    accept_prob: jax.Array
    mean_accept_prob: jax.Array
    diverging: jax.Array
    num_diverging: jax.Array
    step_size: jax.Array
    adapt_state: HMCAdaptState
    rng_key: jax.Array

    @property
    def num_steps(self):
        return jnp.ones_like(self.i)

    @property
    def trajectory_length(self):
        return self.step_size

    @property
    def z_grad(self):
        return jax.tree.map(jnp.negative, self.score)


def initial_state(rng_key, start, adapt_state) -> ScoreLangevinState:
    dtype = jnp.result_type(start.logdensity)
    zero = jnp.zeros((), dtype)
    return ScoreLangevinState(
        i=jnp.array(0),
        z=start.position,
        potential_energy=-start.logdensity,
        score=start.score,
        accept_prob=zero,
        mean_accept_prob=zero,
        diverging=jnp.array(False),
        num_diverging=jnp.array(0),
        step_size=jnp.asarray(adapt_state.step_size, dtype),
        adapt_state=adapt_state._replace(step_size=jnp.asarray(adapt_state.step_size, dtype)),
        rng_key=rng_key,
    )


def next_state(state, new, info, step_size, adapt_state, settings, rng_key):
    """The state after a move to ``new`` (a MALA state) with ``info``; the running acceptance
    mean and divergence count restart when sampling starts."""
    num_warmup = settings["num_warmup"]
    itr = state.i + 1
    n = jnp.where(state.i < num_warmup, itr, itr - num_warmup)
    accept_prob = info.acceptance_rate
    mean_accept_prob = state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / n
    num_diverging = jnp.where(state.i == num_warmup, 0, state.num_diverging)
    dtype = jnp.result_type(state.step_size)
    adapt_state = adapt_state._replace(step_size=jnp.asarray(adapt_state.step_size, dtype))
    return ScoreLangevinState(
        i=itr,
        z=new.position,
        potential_energy=-new.logdensity,
        score=new.score,
        accept_prob=accept_prob,
        mean_accept_prob=mean_accept_prob,
        diverging=info.is_divergent,
        num_diverging=num_diverging + info.is_divergent,
        step_size=step_size,
        adapt_state=adapt_state,
        rng_key=rng_key,
    )
