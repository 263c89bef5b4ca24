"""Warm-up for the Langevin kernels, returning BlackJAX's adaptation types.

- :func:`mala_adaptation`: the step size by dual averaging (Hoffman & Gelman 2014) to a
  target acceptance rate and, with ``adapt_mass_matrix=True``, the inverse mass matrix in
  Stan's windows, from Welford moments of the draws and of their scores
  (:func:`score_matched_mass`) — BlackJAX's schedule, Welford and dual-averaging pieces.
- :func:`ula_adaptation`: a score-only warm-up for ULA (no log density, so no acceptance
  rate): the mass matrix in the same windows, and the step size set from the score's
  curvature under that mass (:func:`preconditioned_curvature`).

Whether an adapted mass is dense or diagonal is :func:`resolve_dense_mass`'s rule, shared
with :class:`robust_score.numpyro.ScoreLangevin`.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from blackjax.adaptation.base import AdaptationInfo, AdaptationResults
from blackjax.adaptation.mass_matrix import welford_algorithm
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.adaptation.window_adaptation import build_schedule
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
from robust_score.kernels.integrators import DenseMass, factor_mass, metric_from

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

# Up to this many raveled dimensions an adapted mass is dense by default, above it diagonal.
# Langevin moves are local, so a step across correlated coordinates is held to the narrowest
# direction unless the mass is dense (a d = 31 logistic regression with collinear features:
# MALA with a dense mass, 62 ESS per 1000 gradients; NUTS, 22). A dense mass costs O(d²) per
# move and O(d³) per window, and its estimate needs a longer warm-up as d grows: on a
# randomly rotated Gaussian with d = 100 and condition number 1000, MALA's min ESS over the
# identity's was 83x after a 1000-step warm-up (M⁻¹Σ⁻¹ still of condition number 4.7) and
# 237x after 2000 steps (1.08; benchmarks/ill_conditioned.py). Above the threshold, ask for
# it (dense_mass=True) and give the warm-up the steps.
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


# The diagonal a window's dense estimate is shrunk towards counts as this fraction of d draws
# (see shrink_to_diagonal).
SHRINKAGE_DRAWS_PER_DIM = 0.1


def shrink_to_diagonal(inverse_mass_matrix, num_draws):
    """A window's dense estimate shrunk towards its own diagonal, with weight
    ``k / (n + k)``, ``k = SHRINKAGE_DRAWS_PER_DIM · d`` (0.1 d), for ``n`` draws in ``d``
    dimensions: the diagonal counts as ``k`` draws (a diagonal estimate passes unchanged).

    Why shrink at all: with fewer draws than dimensions the estimate is singular. Stan's
    regularization, which BlackJAX's and NumPyro's estimates carry, shrinks towards
    ``1e-3 I``: from fewer draws than dimensions (Stan's first slow window has 25) the estimate
    is then ~1e-4 along the directions the draws did not span. A Langevin chain moves one
    short step per gradient, so along those directions it stops, the next window's draws do
    not span them either, and the collapse persists to the end of warm-up (measured on a
    d = 31 logistic regression: inverse mass times precision down to 1e-4, R-hat 1.8). NUTS
    recovers by taking many steps per draw. The diagonal is full rank whenever every
    coordinate moved.

    Why so light: :func:`score_matched_mass` shrinks in coordinates whitened by the previous
    window's mass, so the diagonal is that mass, and whatever weight it gets is error carried
    into the next window. With ``k = d`` (the diagonal worth d draws) a 1000-step warm-up on
    a randomly rotated Gaussian (d = 100, condition number 1000) ended with ``M⁻¹ Σ⁻¹`` of
    condition number 44; with ``k = 0.1 d``, 4.5 (1.0 would be exact). On the d = 31 logistic
    regression and eight schools MALA's ESS per gradient was the same for both within the
    runs' noise.
    """
    if jnp.ndim(inverse_mass_matrix) == 1:
        return inverse_mass_matrix
    prior_draws = SHRINKAGE_DRAWS_PER_DIM * inverse_mass_matrix.shape[-1]
    weight = prior_draws / (num_draws + prior_draws)
    diagonal = jnp.diag(jnp.diag(inverse_mass_matrix))
    return (1 - weight) * inverse_mass_matrix + weight * diagonal


def _symmetric_power(matrix, power):
    values, vectors = jnp.linalg.eigh((matrix + matrix.T) / 2)
    # eigenvalues below rounding of the largest are noise: floor them there, not at zero
    floor = jnp.finfo(values.dtype).eps * jnp.max(jnp.abs(values))
    values = jnp.maximum(values, jnp.maximum(floor, jnp.finfo(values.dtype).tiny))
    return (vectors * values**power) @ vectors.T


def score_matched_mass(position_covariance, score_covariance, num_draws, inverse_mass_matrix=None):
    """The inverse mass ``M⁻¹`` with ``M⁻¹ Cov(s) M⁻¹ = Cov(x)`` from the draws ``x`` and the
    scores ``s`` at them: the geometric mean of ``Cov(x)`` and ``Cov(s)⁻¹`` (the estimator
    of nutpie and of BlackJAX's ``fisher_diag``, here dense too). 1-D (diagonal):
    ``sqrt(var x / var s)``; 2-D: ``A^{1/2} (A^{1/2} S A^{1/2})^{-1/2} A^{1/2}`` with
    ``A = Cov(x)``, ``S = Cov(s)`` taken in the coordinates ``y = L⁻¹ x`` whitened by the
    mass the draws were made with (``inverse_mass_matrix`` ``= L Lᵀ``, its Cholesky factor;
    ``None``: the identity), each first shrunk there towards its diagonal
    (:func:`shrink_to_diagonal`, ``num_draws`` draws).

    Why not the draws' covariance alone: for a Gaussian target ``s = -Σ⁻¹(x - μ)``, so
    ``Cov(s) = Σ⁻¹ Cov(x) Σ⁻¹`` and the geometric mean is exactly Σ whatever ``Cov(x)`` is —
    also when the draws of a window have not yet spread over the target, which is the rule
    for a Langevin chain in the early windows (one short step per gradient). The draws'
    covariance then underestimates the wide directions, and each window starts from that.
    Measured with ``ScoreLangevin(adjust=True)``'s default warm-up on a d = 31 logistic
    regression (1000 warm-up steps): the draws' covariance alone (Stan's estimate) left
    inverse mass times precision with eigenvalues down to 1e-4 and MALA at 0.5 ESS per 1000
    gradients; this estimate gave eigenvalues in [0.3, 1.7].

    Why whitened by the current mass: the geometric mean is exact in any coordinates, but
    the shrinkage is not — it pulls towards the diagonal of the coordinates it is done in,
    which for a correlated target is far from the truth. In the original coordinates the
    windows' shrinkage left a dense mass on a randomly rotated Gaussian (d = 100, condition
    number 1000, 1000 warm-up steps) with ``M⁻¹ Σ⁻¹`` of condition number 190; whitened by
    the previous window's mass, the diagonal each window shrinks towards is that mass, so
    the shrinkage only slows each window's correction and the error contracts from one
    window to the next (4.2 to 4.7 over three seeds, with :func:`shrink_to_diagonal`'s
    weight). In those coordinates the matrices are also near the identity, so their square
    roots lose little to float32 rounding.
    """
    if jnp.ndim(position_covariance) == 1:
        return jnp.sqrt(position_covariance / score_covariance)
    if inverse_mass_matrix is None:
        lower = None
        a, s = position_covariance, score_covariance
    else:
        lower = jnp.linalg.cholesky(inverse_mass_matrix)
        solve = functools.partial(jax.scipy.linalg.solve_triangular, lower=True)
        a = solve(lower, solve(lower, position_covariance).T)  # L⁻¹ A L⁻ᵀ
        s = lower.T @ score_covariance @ lower
    a = shrink_to_diagonal((a + a.T) / 2, num_draws)
    s = shrink_to_diagonal((s + s.T) / 2, num_draws)
    # Rescaled by the diagonal estimate, a and s share their diagonal: the same geometric
    # mean, without the spread of scales that float32 square roots cannot resolve (an
    # axis-aligned Gaussian with variances 1 to 1000 puts 1e6 between the ends of s).
    scale = (jnp.diag(a) / jnp.diag(s)) ** 0.25
    outer = jnp.outer(scale, scale)
    a, s = a / outer, s * outer
    a_sqrt = _symmetric_power(a, 0.5)
    mass = a_sqrt @ _symmetric_power(a_sqrt @ s @ a_sqrt, -0.5) @ a_sqrt * outer
    if lower is not None:
        mass = lower @ mass @ lower.T
    mass = (mass + mass.T) / 2
    # a window whose moments are not finite (a divergent draw) leaves the mass as it was
    previous = jnp.identity(len(mass), mass.dtype) if lower is None else inverse_mass_matrix
    return jnp.where(jnp.all(jnp.isfinite(mass)), mass, previous)


def _initial_mass(inverse_mass_matrix, size: int, dense: bool):
    """The mass the warm-up starts from, in the form it adapts (identity when ``None``)."""
    if inverse_mass_matrix is None:
        return jnp.identity(size) if dense else jnp.ones(size)
    if dense and inverse_mass_matrix.ndim == 1:
        return jnp.diag(inverse_mass_matrix)
    if not dense and inverse_mass_matrix.ndim == 2:
        return jnp.diag(inverse_mass_matrix)
    return inverse_mass_matrix


def _matrix(mass):
    """The inverse mass matrix of a mass as the moves take it (:func:`factor_mass`)."""
    return mass.inverse_mass_matrix if isinstance(mass, DenseMass) else mass


class _MassWindows:
    """The mass-matrix half of a windowed warm-up, with BlackJAX's pieces: Stan's schedule
    (:func:`blackjax.adaptation.window_adaptation.build_schedule`), Welford moments
    (:func:`blackjax.adaptation.mass_matrix.welford_algorithm`) of the draws and of the
    scores at them in each slow window, and :func:`score_matched_mass` at each slow window's
    end."""

    def __init__(self, size: int, dense: bool):
        self.size = size
        self.moments_init, self.moments_update, self.moments_final = welford_algorithm(not dense)

    def init(self):
        return (self.moments_init(self.size), self.moments_init(self.size))

    def update(self, moments, is_slow, position, score):
        flat = (ravel_pytree(position)[0], ravel_pytree(score)[0])
        new = tuple(self.moments_update(m, v) for m, v in zip(moments, flat, strict=True))
        return jax.tree.map(lambda a, b: jnp.where(is_slow, a, b), new, moments)

    def final(self, moments, inverse_mass_matrix):
        """The next mass from the window's moments, the draws having been made with
        ``inverse_mass_matrix``, and fresh moments."""
        (position_cov, num_draws, _), (score_cov, _, _) = map(self.moments_final, moments)
        imm = score_matched_mass(position_cov, score_cov, num_draws, inverse_mass_matrix)
        return imm, self.init()


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
    check_flag(adapt_mass_matrix, "adapt_mass_matrix")
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
        flat = ravel_pytree(position)[0]
        size, dtype = flat.size, flat.dtype
        dense = resolve_dense_mass(dense_mass, size, inverse_mass_matrix)
        windows = _MassWindows(size, dense)
        # a dense mass is carried with its factors, refactorized when a window changes it
        mass = factor_mass(_initial_mass(inverse_mass_matrix, size, dense).astype(dtype))
        schedule = jnp.asarray(build_schedule(num_steps), bool)
        state = mala.init(position, logdensity_fn, score_fn)

        def one_step(carry, xs):
            state, da_state, mass, moments = carry
            key, (is_slow, is_window_end) = xs
            step_size = jnp.exp(da_state.log_step_size).astype(dtype)
            state, info = kernel(key, state, logdensity_fn, step_size, score_fn, mass)
            da_state = da_update(da_state, info.acceptance_rate)
            moments = windows.update(moments, is_slow, state.position, state.score)

            def new_window(carry):
                da_state, mass, moments = carry
                imm, moments = windows.final(moments, _matrix(mass))
                # as Stan: dual averaging restarts from the window's averaged step
                return da_init(da_final(da_state)), factor_mass(imm.astype(dtype)), moments

            da_state, mass, moments = jax.lax.cond(
                is_slow & is_window_end, new_window, lambda c: c, (da_state, mass, moments)
            )
            return (state, da_state, mass, moments), AdaptationInfo(state, info, da_state)

        carry = (state, da_init(jnp.asarray(initial_step_size, dtype)), mass, windows.init())
        keys = jax.random.split(rng_key, num_steps)
        (state, da_state, mass, _), history = jax.lax.scan(one_step, carry, (keys, schedule))
        parameters = {
            "step_size": da_final(da_state).astype(dtype),
            "inverse_mass_matrix": _matrix(mass),
        }
        return AdaptationResults(state, parameters), history

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
    check_flag(adapt_mass_matrix, "adapt_mass_matrix")
    resolve_dense_mass(dense_mass, 0)
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
    kernel = ula.build_kernel()

    def step_size_at(position, mass, rng_key, previous):
        curvature = preconditioned_curvature(score_fn, position, rng_key, metric_from(mass))
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
        windows = _MassWindows(size, dense)
        if adapt_mass_matrix:
            imm = _initial_mass(inverse_mass_matrix, size, dense).astype(dtype)
            schedule = jnp.asarray(build_schedule(num_steps), bool)
        else:
            imm = inverse_mass_matrix
            schedule = jnp.zeros((num_steps, 2), bool)
        # a dense mass is carried with its factors, refactorized when a window changes it
        mass = factor_mass(imm)
        key_start, key_run = jax.random.split(rng_key)
        step_size = step_size_at(position, mass, key_start, jnp.asarray(step_fraction, dtype))

        def one_step(carry, xs):
            state, step_size, mass, moments = carry
            key, (is_slow, is_window_end) = xs
            if not adapt_mass_matrix:
                state, info = kernel(key, state, score_fn, step_size, mass)
                return (state, step_size, mass, moments), AdaptationInfo(state, info, step_size)
            key_step, key_curvature = jax.random.split(key)
            moments = windows.update(moments, is_slow, state.position, state.score)
            state, info = kernel(key_step, state, score_fn, step_size, mass)

            def new_window(carry):
                _, mass, moments = carry
                imm, moments = windows.final(moments, _matrix(mass))
                mass = factor_mass(imm.astype(dtype))
                return step_size_at(state.position, mass, key_curvature, step_size), mass, moments

            step_size, mass, moments = jax.lax.cond(
                is_slow & is_window_end, new_window, lambda c: c, (step_size, mass, moments)
            )
            return (state, step_size, mass, moments), AdaptationInfo(state, info, step_size)

        keys = jax.random.split(key_run, num_steps)
        carry = (state, step_size, mass, windows.init())
        (state, step_size, mass, _), history = jax.lax.scan(one_step, carry, (keys, schedule))
        parameters = {"step_size": step_size}
        if mass is not None:
            parameters["inverse_mass_matrix"] = _matrix(mass)
        return AdaptationResults(state, parameters), history

    return AdaptationAlgorithm(run)
