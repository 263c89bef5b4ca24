"""Metropolis-adjusted Langevin whose proposal drift may be a user-supplied score."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.base import SamplingAlgorithm
from blackjax.types import ArrayTree, PRNGKey

from robust_score._checks import check_finite_tree, check_positive_scalar, check_score_output
from robust_score.kernels.integrators import langevin_log_proposal, langevin_step

__all__ = ["MALAState", "MALAInfo", "init", "build_kernel", "as_top_level_api"]


class MALAState(NamedTuple):
    position: ArrayTree
    logdensity: jax.Array
    score: ArrayTree  # the proposal drift at ``position``


class MALAInfo(NamedTuple):
    """``acceptance_rate``: min(1, MH ratio); ``is_divergent``: the MH log ratio was not finite
    (a non-finite log density or drift at the proposal, or a log density of ``+inf``); the
    proposal is then rejected, so the chain itself never holds a NaN."""

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    is_divergent: jax.Array


def _logdensity_and_drift(logdensity_fn: Callable, score_fn: Callable | None) -> Callable:
    if score_fn is None:
        return jax.value_and_grad(logdensity_fn)
    return lambda x: (logdensity_fn(x), score_fn(x))


def init(
    position: ArrayTree,
    logdensity_fn: Callable,
    score_fn: Callable | None = None,
    rng_key: PRNGKey | None = None,
) -> MALAState:
    del rng_key
    check_finite_tree(position, "position")
    if score_fn is not None:
        check_score_output(score_fn, position)
    logdensity_shape = jax.eval_shape(logdensity_fn, position).shape
    if logdensity_shape != ():
        raise ValueError(f"`logdensity_fn` must return a scalar, got shape {logdensity_shape}.")
    logdensity, drift = _logdensity_and_drift(logdensity_fn, score_fn)(position)
    return MALAState(position, logdensity, drift)


def build_kernel():
    """MALA kernel: ``kernel(rng_key, state, logdensity_fn, step_size, score_fn=None)``."""

    def kernel(
        rng_key: PRNGKey,
        state: MALAState,
        logdensity_fn: Callable,
        step_size: float,
        score_fn: Callable | None = None,
    ) -> tuple[MALAState, MALAInfo]:
        key_proposal, key_accept = jax.random.split(rng_key)
        proposal = langevin_step(key_proposal, state.position, state.score, step_size)
        logdensity, drift = _logdensity_and_drift(logdensity_fn, score_fn)(proposal)
        log_ratio = (
            logdensity
            - state.logdensity
            + langevin_log_proposal(state.position, proposal, drift, step_size)
            - langevin_log_proposal(proposal, state.position, state.score, step_size)
        )
        # The proposal is finite (it moves a finite state by a finite drift), and a non-finite
        # log density or drift at it makes the log ratio non-finite: the one scalar check
        # covers them all without another pass over the position.
        is_divergent = ~jnp.isfinite(log_ratio)
        log_ratio = jnp.where(is_divergent, -jnp.inf, log_ratio)
        acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
        is_accepted = jax.random.bernoulli(key_accept, acceptance_rate)  # as blackjax.mala
        new_state = jax.tree.map(
            lambda new, old: jnp.where(is_accepted, new, old),
            MALAState(proposal, logdensity, drift),
            state,
        )
        return new_state, MALAInfo(acceptance_rate, is_accepted, is_divergent)

    return kernel


def as_top_level_api(
    logdensity_fn: Callable, step_size: float, score_fn: Callable | None = None
) -> SamplingAlgorithm:
    """MALA as a ``blackjax.SamplingAlgorithm``.

    The proposal is ``x' = x + h s(x) + sqrt(2h) z`` with ``s = score_fn`` when given (a
    learned or approximate score) and ``grad logdensity_fn`` otherwise; the MH ratio uses
    ``logdensity_fn`` and the same drift at ``x'`` for the reverse move, so the chain targets
    ``exp(logdensity_fn)`` exactly whatever the drift. Tune ``step_size`` with
    :func:`robust_score.mala_adaptation`.
    """
    if not callable(logdensity_fn):
        raise TypeError(f"`logdensity_fn` must be callable, got {type(logdensity_fn).__name__}.")
    if score_fn is not None and not callable(score_fn):
        raise TypeError(f"`score_fn` must be callable or None, got {type(score_fn).__name__}.")
    check_positive_scalar(step_size, "step_size")
    kernel = build_kernel()

    def init_fn(position, rng_key=None):
        return init(position, logdensity_fn, score_fn, rng_key)

    def step_fn(rng_key, state):
        return kernel(rng_key, state, logdensity_fn, step_size, score_fn)

    return SamplingAlgorithm(init_fn, step_fn)
