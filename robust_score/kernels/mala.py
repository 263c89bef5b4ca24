"""Metropolis-adjusted Langevin whose proposal drift may be a user-supplied score, optionally
preconditioned by an inverse mass matrix."""

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
    check_scalar_output,
    check_score_output,
)
from robust_score.kernels.integrators import langevin_log_proposal, langevin_step, metric_from

__all__ = [
    "MALAState",
    "MALAInfo",
    "init",
    "build_kernel",
    "as_top_level_api",
    "DIVERGENCE_THRESHOLD",
    "logdensity_and_drift",
    "mh_log_ratio",
    "propose",
    "reasonable_step_size",
]

# A MALA move is one leapfrog step of HMC with fresh momentum, and its MH log ratio is minus
# that step's energy error: NumPyro's HMC (``max_delta_energy``) and BlackJAX's
# (``divergence_threshold``) call a transition divergent when that error exceeds 1000, and so
# does this kernel. Measured (benchmarks/hard_geometry.py, 4 chains x 2000 moves after the
# default warm-up): none on a Gaussian and two logistic regressions (log ratios above -14);
# 19, 116 and 45 on the centred eight schools, the horseshoe and Neal's funnel; 66 on the
# non-centred eight schools, whose τ tail is too stiff for the step adapted to 0.57
# acceptance. No threshold tells that last, accurate run from the three failed ones (log
# ratios down to -2.5e6 against -8e3): their R̂ and ESS do (robust_score.run_health).
DIVERGENCE_THRESHOLD = 1000.0


class MALAState(NamedTuple):
    position: ArrayTree
    logdensity: jax.Array
    score: ArrayTree  # the proposal drift at ``position``


class MALAInfo(NamedTuple):
    """``acceptance_rate``: min(1, MH ratio); ``is_divergent``: the MH log ratio was below
    ``-divergence_threshold`` (the step is far too large for the geometry there: NumPyro's
    and BlackJAX's HMC rule) or not finite (a non-finite log density or drift at the proposal,
    or a log density of ``+inf``; the proposal is then rejected, so the chain itself never
    holds a NaN). A finite ratio below the threshold is accepted with its own probability,
    below ``exp(-divergence_threshold)``: the flag never changes the draws."""

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    is_divergent: jax.Array


def logdensity_and_drift(logdensity_fn: Callable, score_fn: Callable | None) -> Callable:
    """``x -> (log density, drift)``: one value-and-grad pass when the drift is the gradient."""
    if score_fn is None:
        return jax.value_and_grad(logdensity_fn)
    return lambda x: (logdensity_fn(x), score_fn(x))


def init(
    position: ArrayTree,
    logdensity_fn: Callable,
    score_fn: Callable | None = None,
    rng_key: PRNGKey | None = None,
    *,
    inverse_mass_matrix=None,
) -> MALAState:
    del rng_key
    check_finite_tree(position, "position")
    if score_fn is not None:
        check_score_output(score_fn, position)
    if inverse_mass_matrix is not None:
        check_mass_matches_position(inverse_mass_matrix, position)
    check_scalar_output(logdensity_fn, position, "logdensity_fn")
    logdensity, drift = logdensity_and_drift(logdensity_fn, score_fn)(position)
    return MALAState(position, logdensity, drift)


def mh_log_ratio(state: MALAState, proposal: MALAState, step_size, metric=None) -> jax.Array:
    """The Metropolis–Hastings log ratio of moving from ``state`` to ``proposal`` by a Langevin
    proposal (each state carries its drift), preconditioned by ``metric``
    (:func:`~robust_score.kernels.integrators.metric_from`; ``None``: the identity). The one
    MALA ratio of the package: MALA accepts with it, the NumPyro ULA reports it without
    rejecting."""
    return (
        proposal.logdensity
        - state.logdensity
        + langevin_log_proposal(
            state.position, proposal.position, proposal.score, step_size, metric
        )
        - langevin_log_proposal(proposal.position, state.position, state.score, step_size, metric)
    )


def propose(
    rng_key: PRNGKey,
    state: MALAState,
    logdensity_fn: Callable,
    step_size,
    score_fn: Callable | None = None,
    metric=None,
) -> tuple[MALAState, jax.Array]:
    """A Langevin proposal from ``state`` (the one integrator, preconditioned by ``metric``)
    with its log density and drift, and the log MH ratio of moving there."""
    position = langevin_step(rng_key, state.position, state.score, step_size, metric)
    proposal = MALAState(position, *logdensity_and_drift(logdensity_fn, score_fn)(position))
    return proposal, mh_log_ratio(state, proposal, step_size, metric)


def reasonable_step_size(
    rng_key, state: MALAState, logdensity_fn, step_size, score_fn=None, metric=None, target=0.574
) -> jax.Array:
    """A step whose proposal from ``state`` is accepted with probability about ``target``:
    the step is doubled while the acceptance probability stays above ``target`` or halved
    while it stays below, with one fixed noise draw (so the probability moves with the step
    alone), and the last step on the accepting side is returned. NumPyro's
    ``find_reasonable_step_size`` for HMC, for one Langevin move."""
    dtype = jnp.result_type(step_size)
    finfo = jnp.finfo(dtype)

    def accepts(log_step_size):
        _, log_ratio = propose(
            rng_key, state, logdensity_fn, jnp.exp(log_step_size), score_fn, metric
        )
        return jnp.isfinite(log_ratio) & (log_ratio >= jnp.log(target))

    start = jnp.log(jnp.asarray(step_size, dtype))
    direction = jnp.where(accepts(start), 1.0, -1.0).astype(dtype)

    def keep_going(carry):
        log_step_size, count = carry
        still_same_side = accepts(log_step_size) == (direction > 0)
        in_range = (log_step_size > jnp.log(finfo.tiny)) & (log_step_size < jnp.log(finfo.max))
        return still_same_side & in_range & (count < 100)

    def double_or_halve(carry):
        log_step_size, count = carry
        return log_step_size + direction * jnp.log(2.0).astype(dtype), count + 1

    last, _ = jax.lax.while_loop(keep_going, double_or_halve, (start, 0))
    # doubling stops at the first rejected step: the one before it was accepted
    accepted = jnp.where(direction > 0, last - jnp.log(2.0).astype(dtype), last)
    return jnp.exp(accepted)


def build_kernel(divergence_threshold: float = DIVERGENCE_THRESHOLD):
    """MALA kernel: ``kernel(rng_key, state, logdensity_fn, step_size, score_fn=None,
    inverse_mass_matrix=None)``; ``inverse_mass_matrix`` is ``None`` (the identity), a 1-D or
    2-D array over the raveled position, a BlackJAX ``Metric``, or a
    :class:`~robust_score.kernels.integrators.DenseMass` (a dense mass factorized once, to
    carry through a loop whose mass changes). A move whose MH log ratio is below
    ``-divergence_threshold`` is flagged divergent (as BlackJAX's ``hmc.build_kernel``)."""

    def kernel(
        rng_key: PRNGKey,
        state: MALAState,
        logdensity_fn: Callable,
        step_size: float,
        score_fn: Callable | None = None,
        inverse_mass_matrix=None,
    ) -> tuple[MALAState, MALAInfo]:
        metric = metric_from(inverse_mass_matrix)
        key_proposal, key_accept = jax.random.split(rng_key)
        proposal, log_ratio = propose(
            key_proposal, state, logdensity_fn, step_size, score_fn, metric
        )
        # The proposal is finite (it moves a finite state by a finite drift), and a non-finite
        # log density or drift at it makes the log ratio non-finite: the one scalar check
        # covers them all without another pass over the position.
        is_finite = jnp.isfinite(log_ratio)
        is_divergent = ~is_finite | (log_ratio < -divergence_threshold)
        log_ratio = jnp.where(is_finite, log_ratio, -jnp.inf)
        # min(1, exp(r)), bitwise, written as a select: XLA's CPU backend ran the
        # exp(min(r, 0)) spelling, kept for Info, as a slow scalar loop that cost 1.3x the
        # whole MALA loop (d = 10, 32 chains, every draw kept)
        acceptance_rate = jnp.where(log_ratio >= 0, 1.0, jnp.exp(log_ratio))
        is_accepted = jax.random.bernoulli(key_accept, acceptance_rate)  # as blackjax.mala
        new_state = jax.tree.map(lambda new, old: jnp.where(is_accepted, new, old), proposal, state)
        return new_state, MALAInfo(acceptance_rate, is_accepted, is_divergent)

    return kernel


def as_top_level_api(
    logdensity_fn: Callable,
    step_size: float,
    score_fn: Callable | None = None,
    inverse_mass_matrix=None,
    divergence_threshold: float = DIVERGENCE_THRESHOLD,
) -> SamplingAlgorithm:
    """MALA as a ``blackjax.SamplingAlgorithm``.

    The proposal is ``x' = x + h M⁻¹ s(x) + sqrt(2h) M^{-1/2} z`` with ``s = score_fn`` when
    given (a learned or approximate score) and ``grad logdensity_fn`` otherwise; the MH ratio
    uses ``logdensity_fn`` and the same preconditioned proposal from ``x'`` for the reverse
    move, so the chain targets ``exp(logdensity_fn)`` exactly whatever the drift and mass.

    ``inverse_mass_matrix`` (``M⁻¹``): ``None`` for the identity (then the draws are
    ``blackjax.mala``'s), a 1-D vector (diagonal) or a 2-D positive-definite matrix (dense)
    over the raveled position, ordered as ``jax.flatten_util.ravel_pytree`` orders it (dict
    keys sorted), as for ``blackjax.nuts``. Tune ``step_size`` and ``inverse_mass_matrix``
    with :func:`robust_score.mala_adaptation` and pass them on: ``rs.mala(logdensity_fn,
    **parameters)``.

    A move whose MH log ratio is below ``-divergence_threshold`` (default
    ``DIVERGENCE_THRESHOLD``, NumPyro's and BlackJAX's HMC threshold) or not finite is flagged
    ``is_divergent``; ``rs.run`` warns about them with what to do.
    """
    check_callable(logdensity_fn, "logdensity_fn")
    if score_fn is not None:
        check_callable(score_fn, "score_fn")
    check_positive_scalar(step_size, "step_size")
    check_positive_scalar(divergence_threshold, "divergence_threshold")
    kernel = build_kernel(divergence_threshold)
    if inverse_mass_matrix is None:
        return build_sampling_algorithm(
            kernel,
            init,
            logdensity_fn,
            init_args=(score_fn,),
            kernel_args=(step_size, score_fn),
        )
    inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    return build_sampling_algorithm(
        kernel,
        functools.partial(init, inverse_mass_matrix=inverse_mass_matrix),
        logdensity_fn,
        init_args=(score_fn,),
        # factorized once here, not at every step
        kernel_args=(step_size, score_fn, metric_from(inverse_mass_matrix)),
    )
