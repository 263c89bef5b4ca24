"""Unadjusted Langevin algorithm driven by any (possibly wrong) score.

Divergence policy: a move that lands on a non-finite position (a step too large for the
local curvature overflows; a score that is NaN or infinite makes the move so) is rejected —
the chain stays where it was and the step is flagged ``is_divergent`` — as the NumPyro ULA
move (:func:`build_shadow_kernel`) does. A finite move is always taken: there is no
Metropolis correction, so the draws of a run with no divergent step are those of plain ULA.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.base import SamplingAlgorithm, build_sampling_algorithm
from blackjax.types import ArrayTree, PRNGKey

from robust_score._checks import (
    check_callable,
    check_finite_tree,
    check_inverse_mass_matrix,
    check_mass_matches_position,
    check_positive_scalar,
    check_score_output,
)
from robust_score.kernels import mala
from robust_score.kernels.integrators import all_finite, langevin_step, metric_from

__all__ = ["ULAState", "ULAInfo", "init", "build_kernel", "build_shadow_kernel", "as_top_level_api"]


class ULAState(NamedTuple):
    """The position. (The score is not carried: each step evaluates it once either way, and
    carrying it would cost the loop a second state array to read and write.)"""

    position: ArrayTree


class ULAInfo(NamedTuple):
    """``is_divergent``: the move was rejected because it landed on a non-finite position,
    as it does whenever the score at the old one was non-finite (the step adds ``h s`` with
    ``h > 0``); the state then keeps the old position."""

    is_divergent: jax.Array


def init(
    position: ArrayTree,
    score_fn: Callable,
    rng_key: PRNGKey | None = None,
    *,
    inverse_mass_matrix=None,
) -> ULAState:
    del rng_key  # accepted for blackjax.util.run_inference_algorithm
    check_finite_tree(position, "position")
    check_score_output(score_fn, position)
    if inverse_mass_matrix is not None:
        check_mass_matches_position(inverse_mass_matrix, position)
    return ULAState(position)


def build_kernel():
    """ULA kernel: ``kernel(rng_key, state, score_fn, step_size, inverse_mass_matrix=None)
    -> (state, info)``. ``inverse_mass_matrix``: ``None`` (the identity), a 1-D or 2-D array
    over the raveled position, a BlackJAX ``Metric``, or a
    :class:`~robust_score.kernels.integrators.DenseMass`. A move to a non-finite position is
    rejected (the old position kept) and flagged divergent."""

    def kernel(
        rng_key: PRNGKey,
        state: ULAState,
        score_fn: Callable,
        step_size: float,
        inverse_mass_matrix=None,
    ) -> tuple[ULAState, ULAInfo]:
        metric = metric_from(inverse_mass_matrix)
        score = score_fn(state.position)
        proposal = langevin_step(rng_key, state.position, score, step_size, metric)
        is_divergent = ~all_finite(proposal)
        position = jax.tree.map(
            lambda old, new: jnp.where(is_divergent, old, new), state.position, proposal
        )
        return ULAState(position), ULAInfo(is_divergent)

    return kernel


def build_shadow_kernel(max_log_ratio_drop: float = jnp.inf):
    """ULA that also reports MALA's acceptance probability of each move without rejecting it,
    the move the NumPyro kernel makes (its step-size adaptation targets that probability):
    ``kernel(rng_key, state, logdensity_fn, step_size, score_fn=None,
    inverse_mass_matrix=None)`` on a
    :class:`~robust_score.kernels.mala.MALAState`, returning ``(state, MALAInfo)``.

    The position moves as :func:`build_kernel`'s does (the same integrator, key and drift).
    A move is refused and flagged divergent when the MH log ratio is non-finite (a
    non-finite position, score or log density) or below ``-max_log_ratio_drop``: at a step
    too large for the local curvature ULA runs away geometrically, and that is where the
    ratio collapses first.
    """

    def kernel(
        rng_key: PRNGKey,
        state: mala.MALAState,
        logdensity_fn: Callable,
        step_size: float,
        score_fn: Callable | None = None,
        inverse_mass_matrix=None,
    ) -> tuple[mala.MALAState, mala.MALAInfo]:
        metric = metric_from(inverse_mass_matrix)
        proposal, log_ratio = mala.propose(
            rng_key, state, logdensity_fn, step_size, score_fn, metric
        )
        is_divergent = ~jnp.isfinite(log_ratio) | ~(log_ratio > -max_log_ratio_drop)
        log_ratio = jnp.where(is_divergent, -jnp.inf, log_ratio)
        acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
        new_state = jax.tree.map(
            lambda old, moved: jnp.where(is_divergent, old, moved), state, proposal
        )
        return new_state, mala.MALAInfo(acceptance_rate, ~is_divergent, is_divergent)

    return kernel


def as_top_level_api(
    score_fn: Callable, step_size: float, inverse_mass_matrix=None
) -> SamplingAlgorithm:
    """ULA with step ``x' = x + h M⁻¹ s(x) + sqrt(2h) M^{-1/2} z``, as a
    ``blackjax.SamplingAlgorithm``.

    .. code::

        ula = rs.ula(score_fn, step_size=0.05)
        state = ula.init(position)
        state, info = jax.jit(ula.step)(rng_key, state)

    ``inverse_mass_matrix`` (``M⁻¹``): ``None`` for the identity, a 1-D vector (diagonal) or
    a 2-D positive-definite matrix (dense) over the raveled position, ordered as
    ``jax.flatten_util.ravel_pytree`` orders it (dict keys sorted), as for
    ``blackjax.nuts``. Set it to the target's covariance, e.g. from
    :func:`robust_score.ula_adaptation`, so one step size fits every direction.

    ``score_fn`` maps a position (array or pytree) to an estimate of ``grad log p`` shaped like
    it. It need not be a gradient, nor be right: that is the point. ULA is biased by O(h)
    even with the exact score; see :func:`robust_score.mala` for the MH-corrected kernel.
    A move that lands on a non-finite position is rejected and flagged ``is_divergent``
    (the chain stays where it was), as in the NumPyro ULA kernel.
    """
    check_callable(score_fn, "score_fn")
    check_positive_scalar(step_size, "step_size")
    if inverse_mass_matrix is None:
        return build_sampling_algorithm(build_kernel(), init, score_fn, kernel_args=(step_size,))
    inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    return build_sampling_algorithm(
        build_kernel(),
        functools.partial(init, inverse_mass_matrix=inverse_mass_matrix),
        score_fn,
        # factorized once here, not at every step
        kernel_args=(step_size, metric_from(inverse_mass_matrix)),
    )
