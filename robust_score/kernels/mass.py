"""The estimates a Langevin warm-up adapts from, without a log density: the score-matched
inverse mass matrix of a window's draws and their scores (:func:`score_matched_mass`), the
score's largest curvature under a mass (:func:`preconditioned_curvature`), and the rule that
picks a dense or diagonal mass (:func:`resolve_dense_mass`)."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
    "DENSE_MASS_MAX_DIM",
    "SHRINKAGE_DRAWS_PER_DIM",
    "preconditioned_curvature",
    "resolve_dense_mass",
    "score_matched_mass",
    "shrink_to_diagonal",
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
