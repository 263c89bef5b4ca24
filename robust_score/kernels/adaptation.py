"""Warm-up for the Langevin kernels, returning BlackJAX's adaptation types.

- :func:`mala_adaptation`: the step size by dual averaging (Hoffman & Gelman 2014) to a
  target acceptance rate and, with ``adapt_mass_matrix=True``, the inverse mass matrix from
  Welford estimates in Stan's windows — BlackJAX's own ``window_adaptation`` driving
  :func:`robust_score.kernels.mala.build_kernel`.
- :func:`ula_adaptation`: a score-only warm-up for ULA (no log density, so no acceptance
  rate): the mass matrix from the warm-up draws in the same windows, and the step size set
  from the score's curvature under that mass (:func:`preconditioned_curvature`).

Whether an adapted mass is dense or diagonal is :func:`resolve_dense_mass`'s rule, shared
with :class:`robust_score.numpyro.ScoreLangevin`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from blackjax.adaptation.base import AdaptationInfo, AdaptationResults
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.adaptation.window_adaptation import build_schedule, window_adaptation
from blackjax.base import AdaptationAlgorithm
from blackjax.mcmc import mala as blackjax_mala
from jax.flatten_util import ravel_pytree

from robust_score._checks import (
    check_callable,
    check_count,
    check_fraction,
    check_inverse_mass_matrix,
    check_mass_matches_position,
    check_positive_scalar,
)
from robust_score.kernels import mala, ula
from robust_score.kernels.integrators import metric_from

__all__ = [
    "DENSE_MASS_MAX_DIM",
    "mala_adaptation",
    "preconditioned_curvature",
    "resolve_dense_mass",
    "ula_adaptation",
]

# A dense mass is estimated from the warm-up's draws; a Langevin chain's draws are strongly
# autocorrelated, so the estimate needs many more draws than a NUTS warm-up per dimension.
# Up to this many dimensions the default 1000-step warm-up's last window (500 draws) gives a
# dense estimate that beats the diagonal one on correlated targets; above it, diagonal.
DENSE_MASS_MAX_DIM = 50


def resolve_dense_mass(dense_mass: bool | None, size: int, inverse_mass_matrix=None) -> bool:
    """The mass-matrix form to adapt over ``size`` raveled dimensions: ``dense_mass`` when it
    is a bool; for ``None``, the form of ``inverse_mass_matrix`` when one is given, else
    dense when ``size <= DENSE_MASS_MAX_DIM`` and diagonal above."""
    if dense_mass is None and inverse_mass_matrix is not None:
        return jnp.ndim(inverse_mass_matrix) == 2
    if dense_mass is None:
        return size <= DENSE_MASS_MAX_DIM
    if not isinstance(dense_mass, bool):
        raise TypeError(
            "`dense_mass` must be True (dense), False (diagonal) or None (dense up to "
            f"{DENSE_MASS_MAX_DIM} dimensions, diagonal above), got {dense_mass!r}."
        )
    return dense_mass


def _initial_mass(inverse_mass_matrix, size: int, dense: bool):
    """The mass the warm-up starts from, in the form it adapts (identity when ``None``)."""
    if inverse_mass_matrix is None:
        return jnp.identity(size) if dense else jnp.ones(size)
    if dense and inverse_mass_matrix.ndim == 1:
        return jnp.diag(inverse_mass_matrix)
    if not dense and inverse_mass_matrix.ndim == 2:
        return jnp.diag(inverse_mass_matrix)
    return inverse_mass_matrix


class _BlackJAXView:
    """:mod:`robust_score.kernels.mala` as BlackJAX's window adaptation drives an algorithm:
    ``init(position, logdensity_fn)``, and a kernel taking ``(step_size,
    inverse_mass_matrix)`` on a state whose drift is called ``logdensity_grad``. The score
    (if any) is fixed here; the states are the same three arrays under BlackJAX's names."""

    def __init__(self, score_fn):
        self.score_fn = score_fn

    def init(self, position, logdensity_fn):
        return blackjax_mala.MALAState(*mala.init(position, logdensity_fn, self.score_fn))

    def build_kernel(self):
        kernel = mala.build_kernel()

        def step(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix):
            state = mala.MALAState(*state)
            new_state, info = kernel(
                rng_key, state, logdensity_fn, step_size, self.score_fn, inverse_mass_matrix
            )
            return blackjax_mala.MALAState(*new_state), info

        return step


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
    - ``adapt_mass_matrix=True``: BlackJAX's ``window_adaptation`` (Stan's schedule: a fast
      window for the step, slow windows of doubling length whose draws give Welford
      estimates of the covariance, regularized towards ``1e-3 I`` as Stan does, a final fast
      window), driving this package's MALA kernel. Needs ``num_steps >= 20`` to adapt the
      mass (fewer: the step only). ``dense_mass``: ``True`` dense, ``False`` diagonal,
      ``None`` dense up to :data:`DENSE_MASS_MAX_DIM` dimensions (raveled) and diagonal
      above. ``inverse_mass_matrix`` seeds the first window.

    The default target 0.574 is the optimal MALA acceptance rate (Roberts & Rosenthal 1998).
    """
    check_callable(logdensity_fn, "logdensity_fn")
    if score_fn is not None:
        check_callable(score_fn, "score_fn")
    check_positive_scalar(initial_step_size, "initial_step_size")
    check_fraction(target_acceptance_rate, "target_acceptance_rate")
    if not isinstance(adapt_mass_matrix, bool):
        raise TypeError(f"`adapt_mass_matrix` must be True or False, got {adapt_mass_matrix!r}.")
    resolve_dense_mass(dense_mass, 0)  # the type check; the size is known at `run`
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance_rate)
    kernel = mala.build_kernel()

    def run_step_size_only(rng_key, position, num_steps):
        state = mala.init(position, logdensity_fn, score_fn)
        dtype = jnp.result_type(state.logdensity)
        metric = metric_from(inverse_mass_matrix)

        def one_step(carry, key):
            state, da_state = carry
            step_size = jnp.exp(da_state.log_step_size).astype(dtype)
            state, info = kernel(key, state, logdensity_fn, step_size, score_fn, metric)
            da_state = da_update(da_state, info.acceptance_rate)
            return (state, da_state), AdaptationInfo(state, info, da_state)

        carry = (state, da_init(jnp.asarray(initial_step_size, dtype)))
        keys = jax.random.split(rng_key, num_steps)
        (state, da_state), history = jax.lax.scan(one_step, carry, keys)
        parameters = {"step_size": da_final(da_state).astype(dtype)}
        if inverse_mass_matrix is not None:
            parameters["inverse_mass_matrix"] = inverse_mass_matrix
        return AdaptationResults(state, parameters), history

    def run(rng_key, position, num_steps: int = 1000):
        check_count(num_steps, "num_steps")
        if inverse_mass_matrix is not None:
            check_mass_matches_position(inverse_mass_matrix, position)
        if not adapt_mass_matrix:
            return run_step_size_only(rng_key, position, num_steps)
        size = ravel_pytree(position)[0].size
        dense = resolve_dense_mass(dense_mass, size, inverse_mass_matrix)
        warmup = window_adaptation(
            _BlackJAXView(score_fn),
            logdensity_fn,
            is_mass_matrix_diagonal=not dense,
            initial_inverse_mass_matrix=None
            if inverse_mass_matrix is None
            else _initial_mass(inverse_mass_matrix, size, dense),
            initial_step_size=initial_step_size,
            target_acceptance_rate=target_acceptance_rate,
        )
        (state, parameters), history = warmup.run(rng_key, position, num_steps)
        return AdaptationResults(mala.MALAState(*state), parameters), history

    return AdaptationAlgorithm(run)


def preconditioned_curvature(
    score_fn: Callable, position, rng_key, metric=None, num_iterations: int = 20
) -> jax.Array:
    """The largest curvature the score shows at ``position`` under the mass: ``||L^T J L v||``
    for the dominant direction ``v`` found by power iteration, with ``J = -∂s/∂x`` (one
    Jacobian–vector product of the score per iteration, no log density) and ``L L^T = M⁻¹``
    (``metric``; ``None``: the identity). For a Gaussian target N(m, Σ) and the exact score it
    is the largest eigenvalue of ``M⁻¹ Σ⁻¹``: 1 when the mass is Σ, ``1 / (smallest
    variance)`` without a mass."""
    flat, unravel = ravel_pytree(position)

    def product(v):
        direction = unravel(v)
        if metric is not None:
            direction = metric.scale(position, direction, inv=True, trans=False)
        _, jvp = jax.jvp(score_fn, (position,), (direction,))
        if metric is not None:
            jvp = metric.scale(position, jvp, inv=True, trans=True)
        return -ravel_pytree(jvp)[0]

    def normalize(v):
        return v / jnp.linalg.norm(v)

    def one_iteration(v, _):
        return normalize(product(v)), None

    start = normalize(jax.random.normal(rng_key, flat.shape, flat.dtype))
    direction, _ = jax.lax.scan(one_iteration, start, None, length=num_iterations)
    return jnp.linalg.norm(product(direction))


def ula_adaptation(
    score_fn: Callable,
    *,
    step_fraction: float = 0.1,
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
    score, 21 per estimate). It is set at the start and again whenever the mass changes; where
    the estimate is not finite (a score with a kink there) the step is kept (at the start:
    ``step_fraction``). For
    a Gaussian target with the exact score ``λ = 1`` once the mass is the covariance, so the
    step is ``step_fraction`` in whitened units; without a mass ``λ`` is the inverse of the
    smallest variance, so the step is that fraction of the smallest scale squared. A score
    stiffer than the draws' spread (a network trained at low noise, a memorizing score) gives
    a larger ``λ`` and a smaller step.

    The mass is adapted as in :func:`mala_adaptation` (Stan's windows, Welford estimates of
    the draws' covariance regularized towards ``1e-3 I``, BlackJAX's pieces), ``dense_mass``
    as there; ``adapt_mass_matrix=False`` keeps ``inverse_mass_matrix`` (``None``: the
    identity) and sets the step only.

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
    if not isinstance(adapt_mass_matrix, bool):
        raise TypeError(f"`adapt_mass_matrix` must be True or False, got {adapt_mass_matrix!r}.")
    resolve_dense_mass(dense_mass, 0)
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    kernel = ula.build_kernel()

    def step_size_at(position, imm, rng_key, previous):
        curvature = preconditioned_curvature(score_fn, position, rng_key, metric_from(imm))
        # a score whose Jacobian is not finite there (the kink of a norm) gives no reading
        usable = jnp.isfinite(curvature) & (curvature > 0)
        return jnp.where(usable, step_fraction / curvature, previous).astype(previous.dtype)

    def run(rng_key, position, num_steps: int = 1000):
        check_count(num_steps, "num_steps")
        if inverse_mass_matrix is not None:
            check_mass_matches_position(inverse_mass_matrix, position)
        state = ula.init(position, score_fn)
        flat = ravel_pytree(position)[0]
        size, dtype = flat.size, flat.dtype
        dense = resolve_dense_mass(dense_mass, size, inverse_mass_matrix)
        mm_init, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=not dense)
        if adapt_mass_matrix:
            imm = _initial_mass(inverse_mass_matrix, size, dense).astype(dtype)
            schedule = jnp.asarray(build_schedule(num_steps), bool)
        else:
            imm = inverse_mass_matrix
            schedule = jnp.zeros((num_steps, 2), bool)
        key_start, key_run = jax.random.split(rng_key)
        step_size = step_size_at(position, imm, key_start, jnp.asarray(step_fraction, dtype))

        metric = metric_from(imm)  # for a fixed mass

        def one_step(carry, xs):
            state, step_size, mm_state = carry
            key, (is_slow, is_window_end) = xs
            if not adapt_mass_matrix:
                state, info = kernel(key, state, score_fn, step_size, metric)
                return (state, step_size, mm_state), AdaptationInfo(state, info, step_size)
            key_step, key_curvature = jax.random.split(key)
            imm = mm_state.inverse_mass_matrix
            state, info = kernel(key_step, state, score_fn, step_size, imm)
            mm_state = jax.lax.cond(
                is_slow, lambda m: mm_update(m, state.position), lambda m: m, mm_state
            )

            def new_window(mm_state):
                mm_state = mm_final(mm_state)
                imm = mm_state.inverse_mass_matrix
                return step_size_at(state.position, imm, key_curvature, step_size), mm_state

            step_size, mm_state = jax.lax.cond(
                is_slow & is_window_end, new_window, lambda m: (step_size, m), mm_state
            )
            return (state, step_size, mm_state), AdaptationInfo(state, info, step_size)

        mm_state = mm_init(size, imm) if adapt_mass_matrix else None
        keys = jax.random.split(key_run, num_steps)
        carry = (state, step_size, mm_state)
        (state, step_size, mm_state), history = jax.lax.scan(one_step, carry, (keys, schedule))
        parameters = {"step_size": step_size}
        if adapt_mass_matrix:
            parameters["inverse_mass_matrix"] = mm_state.inverse_mass_matrix
        elif inverse_mass_matrix is not None:
            parameters["inverse_mass_matrix"] = inverse_mass_matrix
        return AdaptationResults(state, parameters), history

    return AdaptationAlgorithm(run)
