"""The one Langevin integrator, shared by ULA, MALA and every Langevin corrector.

Euler–Maruyama for ``dx = M⁻¹ s(x) dt + sqrt(2) M^{-1/2} dW``:
``x' = x + h M⁻¹ s(x) + sqrt(2 h) M^{-1/2} z``, the same convention as
``blackjax.mcmc.diffusions`` for ``M = I``. A mass ``M`` is given by its inverse, a diagonal
vector or a dense matrix over the raveled position, as for BlackJAX's HMC, and turned into a
BlackJAX :class:`~blackjax.mcmc.metrics.Metric` by :func:`metric_from`; ``None`` is the
identity and keeps the unpreconditioned arithmetic, so those draws stay bitwise as they were.
With ``L L^T = M⁻¹`` (``metric.scale(..., inv=True)`` applies ``L``) the preconditioned move
is plain Langevin on ``y = L⁻¹ x``.
"""

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy as jscipy
from blackjax.mcmc.metrics import default_metric
from blackjax.util import generate_gaussian_noise, linear_map
from jax.flatten_util import ravel_pytree

__all__ = [
    "BlockMass",
    "DenseMass",
    "all_finite",
    "squared_norms",
    "factor_mass",
    "langevin_log_proposal",
    "langevin_step",
    "metric_from",
]


class DenseMass(NamedTuple):
    """A dense inverse mass matrix ``M⁻¹`` with its factors: ``lower`` ``L`` (``L Lᵀ = M⁻¹``)
    and ``inverse_lower_t`` ``L⁻ᵀ``. Unlike a BlackJAX ``Metric`` (closures) it is a pytree of
    arrays, so a warm-up can carry it through its loop and refactorize only when the mass
    changes, where building a ``Metric`` from the matrix at every move costs a Cholesky
    factorization and a triangular inverse, O(d³), per move. ``scale`` is BlackJAX's
    ``Metric.scale``."""

    inverse_mass_matrix: jax.Array
    lower: jax.Array
    inverse_lower_t: jax.Array

    def scale(self, position, element, *, inv: bool, trans: bool):
        """``L`` (``inv=True``) or ``L⁻ᵀ`` (``inv=False``) times ``element``, transposed with
        ``trans=True``, over the raveled ``element``."""
        del position
        flat, unravel = ravel_pytree(element)
        matrix = self.lower if inv else self.inverse_lower_t
        return unravel(linear_map(matrix.T if trans else matrix, flat))


class BlockMass(NamedTuple):
    """NumPyro's structured mass over a dict position: blocks keyed by tuples of site names,
    each dense or diagonal over its sites raveled in the tuple's order, held as NumPyro's
    factors (``mass_matrix_sqrt_inv`` is ``Uᵀ`` with ``U Uᵀ = M⁻¹``, or ``sqrt(M⁻¹)`` for a
    diagonal block; ``mass_matrix_sqrt`` its inverse). ``scale`` is BlackJAX's
    ``Metric.scale``, block by block, with ``L = U``."""

    mass_matrix_sqrt: dict
    mass_matrix_sqrt_inv: dict

    def scale(self, position, element, *, inv: bool, trans: bool):
        del position
        scaled = {}
        for sites, sqrt_inv in self.mass_matrix_sqrt_inv.items():
            flat, unravel = ravel_pytree(tuple(element[name] for name in sites))
            factor = sqrt_inv if inv else self.mass_matrix_sqrt[sites]
            if jnp.ndim(factor) == 1:
                flat = factor * flat
            else:
                # L = U = (sqrt_inv)ᵀ and L⁻ᵀ = sqrt
                matrix = factor.T if inv else factor
                flat = linear_map(matrix.T if trans else matrix, flat)
            scaled.update(zip(sites, unravel(flat), strict=True))
        return scaled


def factor_mass(inverse_mass_matrix):
    """``inverse_mass_matrix`` ready for the moves: a 2-D matrix becomes a :class:`DenseMass`,
    factorized as BlackJAX's Euclidean metric factorizes it (so the moves are the same); a 1-D
    vector, ``None`` (the identity) and a :class:`DenseMass` pass unchanged."""
    if inverse_mass_matrix is None or isinstance(inverse_mass_matrix, DenseMass):
        return inverse_mass_matrix
    if jnp.ndim(inverse_mass_matrix) == 1:
        return inverse_mass_matrix
    lower = jscipy.linalg.cholesky(inverse_mass_matrix, lower=True)
    identity = jnp.identity(inverse_mass_matrix.shape[0])
    inverse_lower_t = jscipy.linalg.solve_triangular(lower, identity, lower=True, trans=True)
    return DenseMass(inverse_mass_matrix, lower, inverse_lower_t)


def metric_from(inverse_mass_matrix):
    """What the moves scale by: BlackJAX's Euclidean metric of ``inverse_mass_matrix`` (a 1-D
    or 2-D array; a ``Metric`` already built passes through), or a :class:`DenseMass` itself;
    ``None`` (the identity) stays ``None``. A 2-D array is factorized here: build it once,
    outside a loop, where it is fixed, or carry a :class:`DenseMass` (:func:`factor_mass`)."""
    if inverse_mass_matrix is None or isinstance(inverse_mass_matrix, DenseMass | BlockMass):
        return inverse_mass_matrix
    return default_metric(inverse_mass_matrix)


def langevin_step(rng_key, position, drift, step_size, metric=None):
    """One Euler–Maruyama step from ``position`` with the drift (score) evaluated there,
    preconditioned by ``metric`` (from :func:`metric_from`; ``None``: the identity)."""
    noise = generate_gaussian_noise(rng_key, position)
    scale = jnp.sqrt(2.0 * step_size)
    if metric is not None:
        # M⁻¹ s = L (L^T s) and M^{-1/2} z = L z
        drift = metric.scale(position, drift, inv=True, trans=True)
        drift = metric.scale(position, drift, inv=True, trans=False)
        noise = metric.scale(position, noise, inv=True, trans=False)
    return jax.tree.map(lambda x, g, z: x + step_size * g + scale * z, position, drift, noise)


def langevin_log_proposal(to_position, from_position, from_drift, step_size, metric=None):
    """``log q(to | from)`` up to a constant that cancels in MH ratios:
    ``-||to - from - h M⁻¹ s(from)||²_M / (4 h)``, with ``M = I`` when ``metric`` is ``None``."""
    if metric is None:
        residuals = jax.tree.map(
            lambda y, x, g: jnp.sum((y - x - step_size * g) ** 2),
            to_position,
            from_position,
            from_drift,
        )
        return -sum(jax.tree.leaves(residuals)) / (4.0 * step_size)
    # in whitened coordinates the residual is L⁻¹ (to - from) - h L^T s(from); ||.||² there
    # is the M-norm of the residual, with no inverse of M⁻¹ formed
    delta = jax.tree.map(operator.sub, to_position, from_position)
    whitened = metric.scale(from_position, delta, inv=False, trans=True)
    drift = metric.scale(from_position, from_drift, inv=True, trans=True)
    residuals = jax.tree.map(lambda w, g: jnp.sum((w - step_size * g) ** 2), whitened, drift)
    return -sum(jax.tree.leaves(residuals)) / (4.0 * step_size)


def all_finite(*trees):
    """Scalar bool: every entry of every leaf is finite.

    A boolean reduction per leaf, combined with ``&`` (no stacking). Kernels call it on as
    little as they can: ULA on the new position only, the diffusion samplers once at the end
    of a path, MALA not at all (its log ratio is non-finite whenever this would fail). The
    cheaper-looking ``isfinite(sum(leaf))`` is not: on XLA's CPU backend a float sum is
    handed to a multi-threaded reduction that used 1.6x the CPU time of the plain ULA loop at
    d = 100 x 100 chains and 1.3x its wall time on a busy machine (``docs/benchmarks.md``).
    """
    flags = [jnp.all(jnp.isfinite(leaf)) for tree in trees for leaf in jax.tree.leaves(tree)]
    return functools.reduce(operator.and_, flags)


def squared_norms(first, second):
    """``(sum(first²), sum(second²))`` over every leaf of two pytrees of the same structure,
    from one pass over both.

    One variadic reduction per leaf: XLA's CPU backend fuses it into the loop that computes
    its operands, where two ``jnp.sum`` calls become library reductions that each re-read
    materialized operands (on the ULA loop at d = 100 x 256 chains the two sums cost 1.2-1.3x
    the whole scan; the variadic one, nothing measurable).
    """

    def reduce_leaf(a, b):
        return jax.lax.reduce(
            (a * a, b * b),
            (jnp.zeros((), a.dtype), jnp.zeros((), b.dtype)),
            lambda x, y: (x[0] + y[0], x[1] + y[1]),
            tuple(range(jnp.ndim(a))),
        )

    leaves = zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True)
    sums = [reduce_leaf(a, b) for a, b in leaves]
    return sum(a for a, _ in sums), sum(b for _, b in sums)
