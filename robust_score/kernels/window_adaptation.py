"""The one warm-up core of the Langevin kernels: Stan's windows, a step-size rule and the
score-matched inverse mass matrix, as small pure pieces in the manner of BlackJAX's
``window_adaptation`` ``base()``.

:func:`base` returns ``init``, ``update``, ``window_end`` and ``final`` over one typed
state, NumPyro's :class:`~numpyro.infer.hmc_util.HMCAdaptState` (so a NumPyro user reads
``adapt_state.step_size`` and ``adapt_state.inverse_mass_matrix`` as NUTS's); the schedule
of windows is data (:func:`schedule`) and each loop that runs it is its caller's:
:func:`robust_score.mala_adaptation` and :func:`robust_score.ula_adaptation` scan it,
:class:`robust_score.numpyro.ScoreLangevin` steps it one move at a time.

The structure of the mass is NumPyro's (:func:`numpyro.infer.hmc_util._initialize_mass_matrix`):
one array over the raveled position, or, for a NumPyro model, a dict of blocks keyed by
tuples of site names (``dense_mass=[("w",), ("x", "y")]``), each dense or diagonal. The
moments of each block are NumPyro's Welford estimates
(:func:`~numpyro.infer.hmc_util.welford_covariance`) of the draws and of the scores at
them; a block's new mass is :func:`~robust_score.kernels.mass.score_matched_mass`.

A step-size rule (:class:`StepSizeRule`) is a piece of its own: dual averaging to a target
acceptance (NumPyro's or BlackJAX's implementation, so each front end keeps its library's
draws), or, for ULA, which has no acceptance to adapt on, the score's curvature
(:func:`curvature_rule`).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.step_size import dual_averaging_adaptation
from numpyro.infer.hmc_util import (
    HMCAdaptState,
    _initialize_mass_matrix,
    build_adaptation_schedule,
    dual_averaging,
    welford_covariance,
)

from robust_score.kernels.integrators import BlockMass, DenseMass, metric_from
from robust_score.kernels.mass import preconditioned_curvature, score_matched_mass

__all__ = [
    "SHORT_WARMUP",
    "ULA_STEP_FRACTION",
    "StepSizeRule",
    "adapt_by_phase",
    "base",
    "blackjax_dual_averaging",
    "curvature_rule",
    "mass_of",
    "numpyro_dual_averaging",
    "schedule",
    "search_rule",
    "warmup_phase",
]

# ULA's step: this fraction of the inverse of the score's largest curvature under the mass.
# For a Gaussian target whose covariance the mass matches, ULA's stationary variances are
# inflated by 1 / (1 - h λ / 2) ≤ 1 / (1 - 0.05): 5.3 % in variance, 2.6 % in sd, inside
# NumPyro's test tolerances on a normal's sd (7 %) with room for Monte-Carlo error.
ULA_STEP_FRACTION = 0.1


class StepSizeRule(NamedTuple):
    """How the step size is set during warm-up. ``init(step_size, reading)`` returns the
    rule's state and the first move's step; it, ``restart(state, reading)`` (after the mass
    changed) and ``final(state, reading)`` (the step after warm-up) take a ``reading``, a
    thunk that reads the target at the current mass and a position the core chooses (the
    score's curvature, or a searched step), which only a curvature or search rule calls;
    ``update(state, accept_prob)`` follows each move; ``step_size(state)`` is the step of the
    next move."""

    init: Callable
    update: Callable
    step_size: Callable
    restart: Callable
    final: Callable


def numpyro_dual_averaging(target_accept_prob) -> StepSizeRule:
    """NumPyro's :func:`~numpyro.infer.hmc_util.dual_averaging` as
    :func:`~numpyro.infer.hmc_util.warmup_adapter` runs it: prox center ``log(10 h)``, the
    averaged iterate at the end, a restart from the current iterate when the mass changes."""
    da_init, da_update = dual_averaging()

    def init(step_size, reading=None):
        # NumPyro's first move takes the given step, not exp(log) of it
        return da_init(jnp.log(10.0) + jnp.log(step_size)), step_size

    def update(state, accept_prob):
        return da_update(target_accept_prob - accept_prob, state)

    def step_size(state):
        return _clip_exp(state[0])

    def restart(state, reading=None):
        return init(step_size(state))[0]

    def final(state, reading=None):
        return _clip_exp(state[1])

    return StepSizeRule(init, update, step_size, restart, final)


def blackjax_dual_averaging(target_accept_prob) -> StepSizeRule:
    """BlackJAX's :func:`~blackjax.adaptation.step_size.dual_averaging_adaptation` as its
    ``window_adaptation`` runs it: the restart, as Stan's, from the averaged step."""
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept_prob)

    def init(step_size, reading=None):
        state = da_init(step_size)
        return state, step_size_of(state)

    def step_size_of(state):
        return jnp.exp(state.log_step_size)

    def restart(state, reading=None):
        return da_init(da_final(state))

    def final(state, reading=None):
        return da_final(state)

    return StepSizeRule(init, da_update, step_size_of, restart, final)


def curvature_rule(step_fraction: float = ULA_STEP_FRACTION) -> StepSizeRule:
    """ULA's step, from the score alone: ``step_fraction / λ`` with ``λ`` the score's largest
    curvature under the mass at the chain's position
    (:func:`~robust_score.kernels.mass.preconditioned_curvature`), read at the start, whenever
    the mass changes and at the end of warm-up. Where the reading is not finite (a score with
    a kink there) the step is kept. The state is the step.

    Measured alternatives, both rejected on the non-centred eight schools (16 chains): a
    larger step during warm-up alone (0.25 or 0.5 / λ) sent 2 chains into the funnel's neck;
    reading λ at each window's mean draw, where it is typical, raised ESS per gradient 1.6-3x
    but let a chain wander where the curvature is higher (τ's upper tail) and stay there
    (bias 0.52 sd, sd 2.1x). One draw's reading varies, and a high one errs on the safe side."""

    def from_reading(reading, previous):
        curvature = reading()
        usable = jnp.isfinite(curvature) & (curvature > 0)
        return jnp.where(usable, step_fraction / curvature, previous).astype(previous.dtype)

    def init(step_size, reading):
        step_size = from_reading(reading, jnp.asarray(step_size))
        return step_size, step_size

    def at_reading(state, reading):
        return from_reading(reading, state)

    return StepSizeRule(init, lambda state, accept_prob: state, lambda s: s, at_reading, at_reading)


# Fewer warm-up moves than this leave no slow window (Stan's rule) and too few iterations for
# dual averaging, whose averaged step after 10 moves can sit orders of magnitude from any
# step that is ever accepted; a MALA warm-up this short sets its step by search_rule instead.
SHORT_WARMUP = 20


def search_rule() -> StepSizeRule:
    """The step found by a search at the chain's position (``reading()`` runs it:
    :func:`robust_score.kernels.mala.reasonable_step_size`), at the start and at the end of
    warm-up, for a warm-up shorter than ``SHORT_WARMUP`` moves. The state is the step."""

    def init(step_size, reading):
        step_size = reading().astype(jnp.result_type(step_size))
        return step_size, step_size

    def at_reading(state, reading):
        return reading().astype(state.dtype)

    return StepSizeRule(init, lambda state, accept_prob: state, lambda s: s, at_reading, at_reading)


def _clip_exp(log_step_size):
    finfo = jnp.finfo(jnp.result_type(log_step_size))
    return jnp.clip(jnp.exp(log_step_size), finfo.tiny, finfo.max)


def schedule(num_steps: int) -> np.ndarray:
    """Stan's windows as data: a ``(num_steps, 2)`` bool array of (in a slow window, a slow
    window ends here); fewer than 20 steps have no slow window (NumPyro's
    ``build_adaptation_schedule``; BlackJAX's ``build_schedule`` agrees step for step). A
    NumPy array, so that a kernel built inside one trace can index it inside another."""
    marks = np.zeros((num_steps, 2), bool)
    for start, end in build_adaptation_schedule(num_steps)[1:-1]:
        marks[start : end + 1, 0] = True
        marks[end, 1] = True
    return marks


def mass_of(state: HMCAdaptState):
    """The mass as the moves take it: a diagonal vector, a :class:`DenseMass` built from the
    factors the adaptation keeps (NumPyro's ``mass_matrix_sqrt_inv`` is ``Uᵀ`` with
    ``U Uᵀ = M⁻¹``, ``mass_matrix_sqrt`` its inverse ``U⁻ᵀ``; not a factorization per
    move), or, for several blocks, a :class:`BlockMass`. One block over every site in sorted
    order is the raveled position's own mass, and is moved as such."""
    inverse_mass_matrix = state.inverse_mass_matrix
    sqrt, sqrt_inv = state.mass_matrix_sqrt, state.mass_matrix_sqrt_inv
    if isinstance(inverse_mass_matrix, dict):
        (sites, *others) = inverse_mass_matrix or [None]
        if others or sites is None or list(sites) != sorted(sites):
            return BlockMass(sqrt, sqrt_inv)
        inverse_mass_matrix, sqrt, sqrt_inv = (
            inverse_mass_matrix[sites],
            sqrt[sites],
            sqrt_inv[sites],
        )
    if jnp.ndim(inverse_mass_matrix) == 1:
        return inverse_mass_matrix
    return DenseMass(inverse_mass_matrix, lower=sqrt_inv.T, inverse_lower_t=sqrt)


def _shapes(inverse_mass_matrix):
    if isinstance(inverse_mass_matrix, dict):
        return {sites: block.shape for sites, block in inverse_mass_matrix.items()}
    return inverse_mass_matrix.shape


def base(
    step_rule: StepSizeRule,
    *,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
    dense_mass=False,
) -> tuple[Callable, Callable, Callable, Callable]:
    """``(init, update, window_end, final)`` of a windowed warm-up.

    - ``init(position, step_size, inverse_mass_matrix=None, rng_key=None, reading=None)``:
      the state, with the mass in NumPyro's structure for ``dense_mass`` (a bool, or a list
      of site-name tuples for a dict ``position``) from ``inverse_mass_matrix`` (``None``: the
      identity).
    - ``update(state, position, score, accept_prob, is_slow)``: after a move to ``position``
      with ``score`` there: the step rule and, in a slow window, the Welford moments.
    - ``window_end(state, position, reading)``: the next mass from the window's moments and
      a restarted step rule (call it where ``schedule`` marks a slow window's end).
    - ``final(state, position, reading)``: the state holding the step size after warm-up.

    ``reading`` is ``(metric, position) -> value`` (:func:`curvature_rule`,
    :func:`search_rule`); dual averaging ignores it.
    """
    moments_init, moments_update, _ = welford_covariance()

    def init(position, step_size, inverse_mass_matrix=None, rng_key=None, reading=None):
        imm, sqrt, sqrt_inv = _initialize_mass_matrix(
            position, _copy(inverse_mass_matrix), dense_mass
        )
        state = HMCAdaptState(step_size, imm, sqrt, sqrt_inv, None, None, jnp.array(0), rng_key)
        moments = (moments_init(_shapes(imm)),) * 2 if adapt_mass_matrix else None
        state = state._replace(mm_state=moments)
        if not adapt_step_size:
            return state
        ss_state, step_size = step_rule.init(step_size, _bind(reading, state, position))
        return state._replace(ss_state=ss_state, step_size=step_size)

    def update(state, position, score, accept_prob, is_slow):
        if adapt_step_size:
            ss_state = step_rule.update(state.ss_state, accept_prob)
            state = state._replace(ss_state=ss_state, step_size=step_rule.step_size(ss_state))
        if adapt_mass_matrix:
            new = tuple(map(moments_update, (position, score), state.mm_state))
            moments = jax.tree.map(lambda a, b: jnp.where(is_slow, a, b), new, state.mm_state)
            state = state._replace(mm_state=moments)
        return state

    def window_end(state, position, reading=None):
        if not adapt_mass_matrix:
            return state
        imm = _next_inverse_mass(state.mm_state, state.inverse_mass_matrix)
        imm, sqrt, sqrt_inv = _initialize_mass_matrix(position, imm, dense_mass)
        state = state._replace(
            inverse_mass_matrix=imm,
            mass_matrix_sqrt=sqrt,
            mass_matrix_sqrt_inv=sqrt_inv,
            mm_state=(moments_init(_shapes(imm)),) * 2,
            window_idx=state.window_idx + 1,
        )
        if adapt_step_size:
            ss_state = step_rule.restart(state.ss_state, _bind(reading, state, position))
            state = state._replace(ss_state=ss_state, step_size=step_rule.step_size(ss_state))
        return state

    def final(state, position, reading=None):
        if not adapt_step_size:
            return state
        step_size = step_rule.final(state.ss_state, _bind(reading, state, position))
        return state._replace(step_size=step_size)

    return init, update, window_end, final


def _bind(reading, state, position):
    """``reading`` at the state's mass and ``position``, as a thunk (read only by a
    curvature or search rule)."""
    if reading is None:
        return None
    return lambda: reading(metric_from(mass_of(state)), position)


def _copy(inverse_mass_matrix):
    # NumPyro's _initialize_mass_matrix fills a dict in place
    return (
        dict(inverse_mass_matrix) if isinstance(inverse_mass_matrix, dict) else inverse_mass_matrix
    )


def _next_inverse_mass(moments, inverse_mass_matrix):
    """Each block's :func:`score_matched_mass` from the window's moments of the draws and of
    their scores, the draws having been made with the block's current mass."""

    def block(position_moments, score_moments, current):
        (_, position_m2, n), (_, score_m2, _) = position_moments, score_moments
        if position_m2.size == 0:  # a site with no unconstrained coordinate
            return current
        return score_matched_mass(
            position_m2 / (n - 1),
            score_m2 / (n - 1),
            n,
            current if jnp.ndim(current) == 2 else None,
        ).astype(current.dtype)

    position_moments, score_moments = moments
    if isinstance(inverse_mass_matrix, dict):
        return {
            sites: block(position_moments[sites], score_moments[sites], current)
            for sites, current in inverse_mass_matrix.items()
        }
    return block(position_moments, score_moments, inverse_mass_matrix)


def curvature_reading(score_fn: Callable, rng_key):
    """``(metric, position) -> curvature`` for :func:`curvature_rule`."""
    return lambda metric, position: preconditioned_curvature(score_fn, position, rng_key, metric)


def warmup_phase(schedule, num_warmup: int, i):
    """The phase of move ``i`` of a loop that steps the schedule one move at a time: 0 after
    warm-up, 1 a warm-up move, 2 the end of a slow window (the mass changes), 3 the last
    warm-up move (the step is set for sampling)."""
    at_end = jnp.asarray(schedule)[jnp.clip(i, 0, num_warmup - 1)]
    index = jnp.where(at_end[0] & at_end[1], 2, 1)
    index = jnp.where(i == num_warmup - 1, 3, index)
    return jnp.where(i >= num_warmup, 0, index)


def adapt_by_phase(
    core,
    schedule,
    num_warmup: int,
    adapt_state,
    position,
    score,
    acceptance_rate,
    i,
    phase,
    reading,
):
    """The warm-up ``core`` (:func:`base`'s four functions) after a move to ``position``
    with ``score``, by ``phase`` (:func:`warmup_phase`: 0 sampling, 1 warm-up, 2 a slow
    window's end, 3 the last warm-up move); only that phase's work runs."""
    _, update, window_end, final = core
    is_slow = jnp.asarray(schedule)[jnp.clip(i, 0, num_warmup - 1), 0]

    def warmup():
        return update(adapt_state, position, score, acceptance_rate, is_slow)

    branches = [
        lambda: adapt_state,
        warmup,
        lambda: window_end(warmup(), position, reading),
        lambda: final(warmup(), position, reading),
    ]
    return jax.lax.switch(phase, branches)
