"""The statistics the checks are built from: a two-sample energy test, the kernel Stein
discrepancy with the IMQ kernel, and nearest-neighbor distances. All in JAX, all on
``(n, dim)`` float arrays."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["energy_test", "kernel_stein_discrepancy", "nearest_distances", "subsample"]


def subsample(points: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_points`` rows, evenly spread (keeps quadratic statistics affordable)."""
    if len(points) <= max_points:
        return points
    index = np.sort(rng.choice(len(points), size=max_points, replace=False))
    return points[index]


def _pairwise_distances(a, b):
    squared = jnp.sum(a**2, 1)[:, None] - 2 * a @ b.T + jnp.sum(b**2, 1)[None, :]
    return jnp.sqrt(jnp.maximum(squared, 0.0))


@partial(jax.jit, static_argnames=("num_permutations",))
def _energy_test(pooled, is_first, key, num_permutations):
    distances = _pairwise_distances(pooled, pooled)

    def statistic(first):
        a = first.astype(distances.dtype)
        b = 1.0 - a
        n, m = a.sum(), b.sum()
        cross = a @ distances @ b / (n * m)
        within_a = a @ distances @ a / (n * (n - 1))
        within_b = b @ distances @ b / (m * (m - 1))
        energy = 2 * cross - within_a - within_b
        return energy, energy / (2 * cross)

    energy, coefficient = statistic(is_first)
    keys = jax.random.split(key, num_permutations)
    permuted = jax.vmap(lambda k: statistic(jax.random.permutation(k, is_first))[0])(keys)
    p_value = (1 + jnp.sum(permuted >= energy)) / (1 + num_permutations)
    return energy, coefficient, p_value


def energy_test(x, y, *, rng_key, num_permutations: int = 200):
    """Energy distance between samples ``x`` (n, d) and ``y`` (m, d) (Szekely & Rizzo).

    Coordinates are standardized by the pooled standard deviation first. Returns
    ``(energy, coefficient, p_value)``: ``coefficient = E / (2 E|X - Y|)`` lies in [0, 1]
    (0: same law) and is the effect size; the permutation p-value assumes independent draws,
    so with autocorrelated MCMC draws trust the coefficient more than the p-value.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    pooled = np.concatenate([x, y])
    scale = pooled.std(axis=0)
    pooled = (pooled - pooled.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    is_first = np.arange(len(pooled)) < len(x)
    result = _energy_test(jnp.asarray(pooled), jnp.asarray(is_first), rng_key, num_permutations)
    return tuple(float(v) for v in result)


@jax.jit
def _ksd_imq(points, scores):
    c2, beta = 1.0, -0.5
    diff = points[:, None, :] - points[None, :, :]
    r2 = jnp.sum(diff**2, axis=-1)
    base = c2 + r2
    kernel = base**beta
    grad_factor = 2 * beta * base ** (beta - 1)  # grad_x k = grad_factor * (x - y)
    dim = points.shape[1]
    score_dot = scores @ scores.T
    sx_diff = jnp.einsum("id,ijd->ij", scores, diff)  # s(x_i) . (x_i - x_j)
    sy_diff = jnp.einsum("jd,ijd->ij", scores, diff)  # s(x_j) . (x_i - x_j)
    trace = -2 * beta * (dim * base ** (beta - 1) + 2 * (beta - 1) * base ** (beta - 2) * r2)
    u = score_dot * kernel - grad_factor * sx_diff + grad_factor * sy_diff + trace
    n = points.shape[0]
    return (jnp.sum(u) - jnp.trace(u)) / (n * (n - 1))


def kernel_stein_discrepancy(points, scores) -> float:
    """Squared KSD (U-statistic) of ``points`` against the law whose score at each point is
    ``scores``, with the IMQ kernel ``(1 + ||x - y||^2)^(-1/2)`` (Gorham & Mackey 2017).
    Near 0 when the points follow the law; grows when they sit where the score says they
    should not."""
    points, scores = jnp.asarray(points), jnp.asarray(scores)
    if len(points) < 2:
        raise ValueError("the kernel Stein discrepancy needs at least two points.")
    return float(_ksd_imq(points, scores))


def nearest_distances(points, data, *, k: int = 2, exclude_self: bool = False, block=2048):
    """Distances from each row of ``points`` to its ``k`` nearest rows of ``data``, sorted
    ascending, ``(n, k)``. ``exclude_self`` drops exact zero-distance self matches (for
    leave-one-out within one set)."""
    points, data = jnp.asarray(points), jnp.asarray(data)
    data_norms = jnp.sum(data**2, axis=1)

    @jax.jit
    def chunk(p):
        squared = jnp.sum(p**2, 1)[:, None] - 2 * p @ data.T + data_norms[None, :]
        squared = jnp.maximum(squared, 0.0)
        if exclude_self:
            squared = jnp.where(squared <= 1e-12 * (1 + data_norms[None, :]), jnp.inf, squared)
        return jnp.sqrt(-jax.lax.top_k(-squared, k)[0])

    return np.concatenate(
        [np.asarray(chunk(points[i : i + block])) for i in range(0, len(points), block)]
    )
