"""Warm-up for the Langevin kernels, returning BlackJAX's adaptation types.

- :func:`mala_adaptation`: the step size by BlackJAX's dual averaging (Hoffman & Gelman
  2014) to a target acceptance rate and, with ``adapt_mass_matrix=True``, the inverse mass
  matrix in Stan's windows, from the draws and their scores.
- :func:`ula_adaptation`: a score-only warm-up for ULA (no log density, so no acceptance
  rate): the mass matrix in the same windows, and the step size from the score's curvature
  under that mass.

Both run the one warm-up core, :mod:`robust_score.kernels.window_adaptation`, which
:class:`robust_score.numpyro.ScoreLangevin` runs too.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from blackjax.adaptation.base import AdaptationInfo, AdaptationResults
from blackjax.base import AdaptationAlgorithm
from jax.flatten_util import ravel_pytree

from robust_score._checks import (
    check_callable,
    check_count,
    check_flag,
    check_fraction,
    check_inverse_mass_matrix,
    check_mass_matches_position,
    check_positive_scalar,
)
from robust_score.kernels import mala, ula
from robust_score.kernels import window_adaptation as windows
from robust_score.kernels.mass import (
    DENSE_MASS_MAX_DIM,
    SHRINKAGE_DRAWS_PER_DIM,
    preconditioned_curvature,
    resolve_dense_mass,
    score_matched_mass,
    shrink_to_diagonal,
)

__all__ = [
    "DENSE_MASS_MAX_DIM",
    "SHRINKAGE_DRAWS_PER_DIM",
    "mala_adaptation",
    "preconditioned_curvature",
    "resolve_dense_mass",
    "score_matched_mass",
    "shrink_to_diagonal",
    "ula_adaptation",
]


def _check_common(adapt_mass_matrix, dense_mass, inverse_mass_matrix):
    check_flag(adapt_mass_matrix, "adapt_mass_matrix")
    resolve_dense_mass(dense_mass, 0)  # the type check; the size is known at `run`
    if inverse_mass_matrix is not None:
        return check_inverse_mass_matrix(inverse_mass_matrix)
    return None


def _run_windows(move, core, state, adapt_state, rng_key, num_steps, windowed, reading_at):
    """Scan ``move(key, state, adapt_state) -> (state, info)`` over the warm-up, updating
    the core after each move and, where Stan's schedule (``windowed``) ends a slow window,
    re-estimating the mass; returns BlackJAX's ``(AdaptationResults, AdaptationInfo)``."""
    _, update, window_end, final = core
    schedule = (
        jnp.asarray(windows.schedule(num_steps)) if windowed else jnp.zeros((num_steps, 2), bool)
    )

    def one_step(carry, xs):
        state, adapt_state = carry
        key, (is_slow, is_window_end) = xs
        state, info = move(key, state, adapt_state)
        adapt_state = update(
            adapt_state,
            state.position,
            state.score,
            getattr(info, "acceptance_rate", None),
            is_slow,
        )
        # a curvature reading's key, unused (and so free) under dual averaging
        reading = reading_at(jax.random.fold_in(key, 1))
        adapt_state = jax.lax.cond(
            is_slow & is_window_end,
            lambda a: window_end(a, state.position, reading),
            lambda a: a,
            adapt_state,
        )
        return (state, adapt_state), AdaptationInfo(state, info, adapt_state)

    keys = jax.random.split(rng_key, num_steps)
    (state, adapt_state), history = jax.lax.scan(one_step, (state, adapt_state), (keys, schedule))
    adapt_state = final(adapt_state, state.position, reading_at(jax.random.fold_in(rng_key, 2)))
    return state, adapt_state, history


def _parameters(adapt_state, dtype, preconditioned):
    parameters = {"step_size": jnp.asarray(adapt_state.step_size).astype(dtype)}
    if preconditioned:
        parameters["inverse_mass_matrix"] = adapt_state.inverse_mass_matrix
    return parameters


def mala_adaptation(
    logdensity_fn: Callable,
    score_fn: Callable | None = None,
    *,
    initial_step_size: float = 0.1,
    target_acceptance_rate: float = 0.574,
    adapt_mass_matrix: bool = False,
    dense_mass: bool | None = None,
    inverse_mass_matrix=None,
) -> AdaptationAlgorithm:
    """Tune MALA's step size, and its inverse mass matrix with ``adapt_mass_matrix=True``; use
    like ``blackjax.window_adaptation``.

    .. code::

        adapt = rs.mala_adaptation(logdensity_fn, score_fn, adapt_mass_matrix=True)
        (state, parameters), _ = adapt.run(rng_key, position, num_steps=1000)
        sampler = rs.mala(logdensity_fn, score_fn=score_fn, **parameters)

    ``parameters`` holds ``step_size`` and, when a mass was adapted or given,
    ``inverse_mass_matrix``.

    - ``adapt_mass_matrix=False`` (default): one dual-averaging run over all steps, at the
      fixed ``inverse_mass_matrix`` (``None``: the identity), ending on the averaged step.
    - ``adapt_mass_matrix=True``: Stan's schedule as BlackJAX's ``window_adaptation`` runs
      it (a fast window for the step, slow windows of doubling length, a final fast window;
      dual averaging restarts at each slow window's end), with the mass at each slow
      window's end from the Welford moments of its draws and of their scores
      (:func:`score_matched_mass`; BlackJAX's own estimate, the draws' covariance alone,
      stalls Langevin warm-ups). Needs ``num_steps >= 20`` to adapt the mass (fewer: the
      step only). ``dense_mass``: ``True`` dense, ``False`` diagonal, ``None`` the form of a
      given ``inverse_mass_matrix``, else dense up to ``DENSE_MASS_MAX_DIM`` = 50 dimensions
      (raveled) and diagonal above. ``inverse_mass_matrix`` is the first windows' mass.

    The default target 0.574 is the optimal MALA acceptance rate (Roberts & Rosenthal 1998).
    """
    check_callable(logdensity_fn, "logdensity_fn")
    if score_fn is not None:
        check_callable(score_fn, "score_fn")
    check_positive_scalar(initial_step_size, "initial_step_size")
    check_fraction(target_acceptance_rate, "target_acceptance_rate")
    inverse_mass_matrix = _check_common(adapt_mass_matrix, dense_mass, inverse_mass_matrix)
    kernel = mala.build_kernel()
    step_rule = windows.blackjax_dual_averaging(target_acceptance_rate)
    preconditioned = adapt_mass_matrix or inverse_mass_matrix is not None

    def run(rng_key, position, num_steps: int = 1000):
        check_count(num_steps, "num_steps")
        if inverse_mass_matrix is not None:
            check_mass_matches_position(inverse_mass_matrix, position)
        flat = ravel_pytree(position)[0]
        dtype = flat.dtype
        dense = resolve_dense_mass(dense_mass, flat.size, inverse_mass_matrix)
        core = windows.base(step_rule, adapt_mass_matrix=adapt_mass_matrix, dense_mass=dense)
        imm = None if inverse_mass_matrix is None else inverse_mass_matrix.astype(dtype)
        adapt_state = core[0](position, jnp.asarray(initial_step_size, dtype), imm)

        def move(key, state, adapt_state):
            mass = windows.mass_of(adapt_state) if preconditioned else None
            step_size = adapt_state.step_size.astype(dtype)
            return kernel(key, state, logdensity_fn, step_size, score_fn, mass)

        state = mala.init(position, logdensity_fn, score_fn)
        state, adapt_state, history = _run_windows(
            move,
            core,
            state,
            adapt_state,
            rng_key,
            num_steps,
            adapt_mass_matrix,
            lambda key: None,
        )
        return AdaptationResults(state, _parameters(adapt_state, dtype, preconditioned)), history

    return AdaptationAlgorithm(run)


def ula_adaptation(
    score_fn: Callable,
    *,
    step_fraction: float = windows.ULA_STEP_FRACTION,
    adapt_mass_matrix: bool = True,
    dense_mass: bool | None = None,
    inverse_mass_matrix=None,
) -> AdaptationAlgorithm:
    """A score-only warm-up for ULA: the inverse mass matrix from the warm-up draws and the
    step size from the score's curvature, with no log density and so no acceptance rate.

    .. code::

        adapt = rs.ula_adaptation(score_fn)
        (state, parameters), _ = adapt.run(rng_key, position, num_steps=1000)
        sampler = rs.ula(score_fn, **parameters)

    The rule: ``step_size = step_fraction / λ``, where ``λ`` is the score's largest curvature
    under the current mass at the chain's current position
    (:func:`preconditioned_curvature`: power iteration on Jacobian–vector products of the
    score, 21 per estimate). It is set at the start, whenever the mass changes and at the end;
    where the estimate is not finite (a score with a kink there) the step is kept (at the
    start: ``step_fraction``). It is :class:`robust_score.numpyro.ScoreLangevin`'s ULA rule
    too (:func:`~robust_score.kernels.window_adaptation.curvature_rule`). For a Gaussian target
    with the exact score ``λ = 1`` once the mass is the covariance, so the
    step is ``step_fraction`` in whitened units; without a mass ``λ`` is the inverse of the
    smallest variance, so the step is that fraction of the smallest scale squared. A score
    stiffer than the draws' spread (a network trained at low noise, a memorizing score) gives
    a larger ``λ`` and a smaller step.

    The mass is adapted as in :func:`mala_adaptation` (Stan's windows, :func:`score_matched_mass`
    of the draws and their scores), ``dense_mass`` as there; ``adapt_mass_matrix=False``
    keeps ``inverse_mass_matrix`` (``None``: the identity) and sets the step only.

    Known bias: ULA at the returned step is biased by O(h) even with the exact score. For a
    Gaussian target whose covariance the mass matches, each whitened variance is inflated by
    ``1 / (1 - h λ_i / 2)``, at most ``1 / (1 - step_fraction / 2)`` (5.3% at the default
    0.1). Elsewhere the curvature, read at one point per window, can be larger than where it
    was read (tails, funnels) and the bias larger too. The mass comes from the chain's own
    draws, so it cannot move a chain out of a region where a wrong score holds it: a trapped
    chain stays trapped. Check the run with ``rs.diagnostics.trap_report(tree,
    step_size=h, sampler_at=lambda h: rs.ula(score_fn, h, inverse_mass_matrix=imm))``, whose
    step-size sensitivity check separates the O(h) bias from a trap.
    """
    check_callable(score_fn, "score_fn")
    check_fraction(step_fraction, "step_fraction")
    inverse_mass_matrix = _check_common(adapt_mass_matrix, dense_mass, inverse_mass_matrix)
    kernel = ula.build_kernel()
    step_rule = windows.curvature_rule(step_fraction)
    preconditioned = adapt_mass_matrix or inverse_mass_matrix is not None

    def reading_at(key):
        return windows.curvature_reading(score_fn, key)

    def run(rng_key, position, num_steps: int = 1000):
        check_count(num_steps, "num_steps")
        if inverse_mass_matrix is not None:
            check_mass_matches_position(inverse_mass_matrix, position)
        flat = ravel_pytree(position)[0]
        dtype = flat.dtype
        dense = resolve_dense_mass(dense_mass, flat.size, inverse_mass_matrix)
        core = windows.base(step_rule, adapt_mass_matrix=adapt_mass_matrix, dense_mass=dense)
        imm = None if inverse_mass_matrix is None else inverse_mass_matrix.astype(dtype)
        key_start, key_run = jax.random.split(rng_key)
        adapt_state = core[0](
            position,
            jnp.asarray(step_fraction, dtype),
            imm,
            reading=reading_at(key_start),
        )

        def move(key, state, adapt_state):
            mass = windows.mass_of(adapt_state) if preconditioned else None
            return kernel(key, state, score_fn, adapt_state.step_size, mass)

        state = ula.init(position, score_fn)
        state, adapt_state, history = _run_windows(
            move, core, state, adapt_state, key_run, num_steps, adapt_mass_matrix, reading_at
        )
        return AdaptationResults(state, _parameters(adapt_state, dtype, preconditioned)), history

    return AdaptationAlgorithm(run)
