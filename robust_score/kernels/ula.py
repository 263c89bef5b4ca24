"""Unadjusted Langevin algorithm driven by any (possibly wrong) score.

Divergence policy: a move that lands on a non-finite position or score (a step too large for
the local curvature overflows; a score that is NaN or infinite there) is rejected — the chain
stays where it was and the step is flagged ``is_divergent`` — as the NumPyro ULA move
(:func:`build_shadow_kernel`) does. A move whose drift changes across it by more than
``STIFFNESS_THRESHOLD`` times the move itself (:func:`move_stiffness`) is taken but flagged
too: the step is too large for the curvature there, and the draws near it are not the
target's. Every finite move is taken: there is no Metropolis correction, so the draws are
those of plain ULA.
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
from robust_score.kernels.integrators import langevin_step, metric_from, squared_norms

__all__ = [
    "STIFFNESS_THRESHOLD",
    "ULAState",
    "ULAInfo",
    "init",
    "build_kernel",
    "build_shadow_kernel",
    "as_top_level_api",
    "move_stiffness",
]

# Along a direction of curvature λ an Euler step multiplies the distance to the mode by
# 1 - hλ: it overshoots past hλ = 1 (the variance there is inflated by 1/(1 - hλ/2) >= 2)
# and blows up past 2. move_stiffness reads hλ along the move, so a move above 1 is where
# ULA has stopped approximating the target. rs.ula_adaptation's step keeps it at 0.1 on a
# Gaussian. Measured on the non-centred eight schools (benchmarks/hard_geometry.py, NumPyro
# ULA, 16 chains x 2000 moves): 0.08 % of moves flagged at warm-up target 0.95 (bias 0.09
# sd), 0.7 % at 0.8 (bias 0.28 sd), all in the stiff τ tail.
STIFFNESS_THRESHOLD = 1.0


class ULAState(NamedTuple):
    """The position and the score there. (Carried, not re-evaluated: each move evaluates the
    score once, at its end, where the next move starts and the stiffness check needs it.)"""

    position: ArrayTree
    score: ArrayTree


class ULAInfo(NamedTuple):
    """``is_divergent``: the move was rejected because it landed on a non-finite position or
    score (the state then keeps the old ones), or it was taken but its stiffness
    (:func:`move_stiffness`) exceeded the threshold: the step is too large for the curvature
    there."""

    is_divergent: jax.Array


def move_stiffness(position, new_position, score, new_score, step_size, metric=None):
    """``h ||Lᵀ (s(x') - s(x))|| / ||L⁻¹ (x' - x)||`` with ``L Lᵀ = M⁻¹`` (``metric``;
    ``None``: the identity): how much the drift ``h M⁻¹ s`` changes across the move, in units
    of the move, both measured in the coordinates the mass whitens. For a quadratic target it
    is ``hλ`` for the curvature ``λ`` along the move (between the smallest and the largest),
    from two scores the moves evaluate anyway."""
    change_sq, move_sq = _whitened_squares(position, new_position, score, new_score, metric)
    return step_size * jnp.sqrt(change_sq) / jnp.sqrt(move_sq)


def _whitened_squares(position, new_position, score, new_score, metric):
    """``(||Lᵀ Δs||², ||L⁻¹ Δx||²)`` of a move, from one pass over it."""
    move = jax.tree.map(jnp.subtract, new_position, position)
    change = jax.tree.map(jnp.subtract, new_score, score)
    if metric is not None:
        move = metric.scale(position, move, inv=False, trans=True)
        change = metric.scale(position, change, inv=True, trans=True)
    return squared_norms(change, move)


def _is_stiff(change_sq, move_sq, step_size, stiffness_threshold):
    """:func:`move_stiffness` above ``stiffness_threshold``, compared squared (no roots)."""
    return step_size * step_size * change_sq > stiffness_threshold**2 * move_sq


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
    return ULAState(position, score_fn(position))


def build_kernel(stiffness_threshold: float = STIFFNESS_THRESHOLD):
    """ULA kernel: ``kernel(rng_key, state, score_fn, step_size, inverse_mass_matrix=None)
    -> (state, info)``. ``inverse_mass_matrix``: ``None`` (the identity), a 1-D or 2-D array
    over the raveled position, a BlackJAX ``Metric``, or a
    :class:`~robust_score.kernels.integrators.DenseMass`. A move to a non-finite position or
    score is rejected (the old state kept) and flagged divergent; a move whose
    :func:`move_stiffness` exceeds ``stiffness_threshold`` is taken and flagged."""

    def kernel(
        rng_key: PRNGKey,
        state: ULAState,
        score_fn: Callable,
        step_size: float,
        inverse_mass_matrix=None,
    ) -> tuple[ULAState, ULAInfo]:
        metric = metric_from(inverse_mass_matrix)
        position = langevin_step(rng_key, state.position, state.score, step_size, metric)
        score = score_fn(position)
        change_sq, move_sq = _whitened_squares(state.position, position, state.score, score, metric)
        # the old state is finite, so a sum is non-finite exactly when the new position or
        # score is (or when a move is too long to square in its dtype: divergent too); one
        # fused pass gives the finiteness and the stiffness, where separate reductions cost
        # up to 1.6x the loop at d = 100 (squared_norms)
        is_finite = jnp.isfinite(change_sq) & jnp.isfinite(move_sq)
        is_stiff = _is_stiff(change_sq, move_sq, step_size, stiffness_threshold)
        new_state = jax.tree.map(
            lambda old, new: jnp.where(is_finite, new, old), state, ULAState(position, score)
        )
        return new_state, ULAInfo(~is_finite | is_stiff)

    return kernel


def build_shadow_kernel(
    divergence_threshold: float = jnp.inf, stiffness_threshold: float = STIFFNESS_THRESHOLD
):
    """ULA that also reports MALA's acceptance probability of each move without rejecting it,
    the move the NumPyro kernel makes (its step-size adaptation targets that probability):
    ``kernel(rng_key, state, logdensity_fn, step_size, score_fn=None,
    inverse_mass_matrix=None)`` on a
    :class:`~robust_score.kernels.mala.MALAState`, returning ``(state, MALAInfo)``.

    The position moves as :func:`build_kernel`'s does (the same integrator, key and drift).
    A move is refused and flagged divergent when the MH log ratio is non-finite (a
    non-finite position, score or log density) or below ``-divergence_threshold``: at a step
    too large for the local curvature ULA runs away geometrically, and that is where the
    ratio collapses first. A move whose :func:`move_stiffness` exceeds
    ``stiffness_threshold`` is taken and flagged divergent, as in :func:`build_kernel`.
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
        is_refused = ~jnp.isfinite(log_ratio) | ~(log_ratio > -divergence_threshold)
        log_ratio = jnp.where(is_refused, -jnp.inf, log_ratio)
        # min(1, exp(r)) as a select: the exp(min(r, 0)) spelling ran slowly (see mala)
        acceptance_rate = jnp.where(log_ratio >= 0, 1.0, jnp.exp(log_ratio))
        new_state = jax.tree.map(
            lambda old, moved: jnp.where(is_refused, old, moved), state, proposal
        )
        change_sq, move_sq = _whitened_squares(
            state.position, proposal.position, state.score, proposal.score, metric
        )
        is_stiff = _is_stiff(change_sq, move_sq, step_size, stiffness_threshold)
        is_divergent = is_refused | is_stiff
        return new_state, mala.MALAInfo(acceptance_rate, ~is_refused, is_divergent)

    return kernel


def as_top_level_api(
    score_fn: Callable,
    step_size: float,
    inverse_mass_matrix=None,
    stiffness_threshold: float = STIFFNESS_THRESHOLD,
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
    A move that lands on a non-finite position or score is rejected and flagged
    ``is_divergent`` (the chain stays where it was), as in the NumPyro ULA kernel; a move
    whose drift changes across it by more than ``stiffness_threshold`` times the move
    (:func:`move_stiffness`; default ``STIFFNESS_THRESHOLD``, where an Euler step starts to
    overshoot) is taken and flagged too. ``rs.run`` warns about flagged draws.
    """
    check_callable(score_fn, "score_fn")
    check_positive_scalar(step_size, "step_size")
    check_positive_scalar(stiffness_threshold, "stiffness_threshold")
    kernel = build_kernel(stiffness_threshold)
    if inverse_mass_matrix is None:
        return build_sampling_algorithm(kernel, init, score_fn, kernel_args=(step_size,))
    inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    return build_sampling_algorithm(
        kernel,
        functools.partial(init, inverse_mass_matrix=inverse_mass_matrix),
        score_fn,
        # factorized once here, not at every step
        kernel_args=(step_size, metric_from(inverse_mass_matrix)),
    )
