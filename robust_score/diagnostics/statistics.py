"""The statistics the checks are built from: a two-sample energy test, a two-sample
Kolmogorov-Smirnov test with effective sample sizes, the effective sample size of MCMC draws
and thinning to it, principal directions, the kernel Stein discrepancy with the IMQ kernel,
and nearest-neighbor distances. All on ``(n, dim)`` float arrays (chains: ``(chain, draw,
dim)``)."""

import math
from functools import partial

import numpyro  # isort: skip  # noqa: F401  (before ArviZ: see robust_score/__init__.py)
import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np

from robust_score._checks import check_key

__all__ = [
    "match_length",
    "numpy_rng",
    "per_variable_rhat",
    "rhat_1d",
    "effective_sample_size",
    "energy_statistics",
    "energy_test",
    "kernel_stein_discrepancy",
    "ks_test",
    "nearest_distances",
    "principal_directions",
    "subsample",
    "thin_to",
]


def subsample(points: np.ndarray, max_points: int, rng: np.random.Generator, *others):
    """At most ``max_points`` rows, evenly spread (keeps quadratic statistics affordable);
    with ``others`` (arrays of the same length), the same rows of each too, as a tuple."""
    if len(points) > max_points:
        index = np.sort(rng.choice(len(points), size=max_points, replace=False))
        points, others = points[index], tuple(other[index] for other in others)
    return (points, *others) if others else points


def _pairwise_distances(a, b):
    squared = jnp.sum(a**2, 1)[:, None] - 2 * a @ b.T + jnp.sum(b**2, 1)[None, :]
    return jnp.sqrt(jnp.maximum(squared, 0.0))


@partial(jax.jit, static_argnames=("num_permutations",))
def _energy_test(pooled, labels, groups, key, num_permutations):
    # labels: 1 for the first sample, 0 for the second, -1 for padding (at the end), so that
    # samples of many sizes share a few compiled programs. Pairs of points from one group
    # (one chain) are left out of every mean: only pairs of independent points count.
    valid = labels >= 0
    mask = valid.astype(pooled.dtype)
    counted = (groups[:, None] != groups[None, :]).astype(pooled.dtype)
    counted = counted * mask[:, None] * mask[None, :]
    distances = _pairwise_distances(pooled, pooled) * counted
    total_distance, total_count = distances @ mask, counted @ mask

    def statistic(first):
        # with b = mask - a and symmetric matrices, a.M.b and b.M.b follow from M.a and
        # M.mask: one product per matrix and relabeling
        a = first * mask
        distance_a, count_a = distances @ a, counted @ a
        within_a = (a @ distance_a) / (a @ count_a)
        cross = (a @ total_distance - a @ distance_a) / (a @ total_count - a @ count_a)
        distance_bb = mask @ total_distance - 2 * a @ total_distance + a @ distance_a
        count_bb = mask @ total_count - 2 * a @ total_count + a @ count_a
        energy = 2 * cross - within_a - distance_bb / count_bb
        return energy, energy / (2 * cross)

    first = (labels == 1).astype(pooled.dtype)
    energy, coefficient = statistic(first)

    def permuted(k):
        # a uniformly random relabeling of the valid points; padding stays at the end
        order = jnp.argsort(jnp.where(valid, jax.random.uniform(k, labels.shape), 2.0))
        return statistic(first[order])[0]

    permuted = jax.vmap(permuted)(jax.random.split(key, num_permutations))
    p_value = (1 + jnp.sum(permuted >= energy)) / (1 + num_permutations)
    return energy, coefficient, p_value


def _padded_size(n: int) -> int:
    """The next power of two (at least 32): at most a few compiled sizes."""
    return max(32, 1 << (n - 1).bit_length())


def energy_statistics(
    x, y, *, rng_key, num_permutations: int = 200, x_groups=None, y_groups=None
) -> dict:
    """:func:`energy_test` as a dict (``energy``, ``coefficient``, ``p_value``, ``n``: the
    sample sizes; ``nan`` coefficient and p-value 1 when a sample has fewer than two points).

    ``x_groups``, ``y_groups``: integer labels of the chain each point comes from; pairs of
    points of one chain are left out of every mean distance, so that what is left of
    their autocorrelation after thinning cannot make a chain look tighter than the other
    sample (in high dimension distances magnify even a small correlation). Default: every
    point independent."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        nan = math.nan
        return {"energy": nan, "coefficient": nan, "p_value": 1.0, "n": (len(x), len(y))}
    # one chain alone leaves no independent pair: treat its (thinned) draws as independent
    if x_groups is None or len(np.unique(x_groups)) < 2:
        x_groups = np.arange(len(x))
    if y_groups is None or len(np.unique(y_groups)) < 2:
        y_groups = np.arange(len(y))
    pooled = np.concatenate([x, y])
    scale = pooled.std(axis=0)
    pooled = (pooled - pooled.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    size = _padded_size(len(pooled))
    labels = np.full(size, -1, np.int32)
    labels[: len(x)], labels[len(x) : len(pooled)] = 1, 0
    groups = np.arange(size, dtype=np.int32) + size  # padding: groups of its own
    _, groups[: len(pooled)] = np.unique(
        np.concatenate([x_groups * 2, y_groups * 2 + 1]), return_inverse=True
    )
    padded = np.zeros((size, pooled.shape[1]))
    padded[: len(pooled)] = pooled
    result = _energy_test(
        jnp.asarray(padded), jnp.asarray(labels), jnp.asarray(groups), rng_key, num_permutations
    )
    energy, coefficient, p_value = (float(v) for v in result)
    return {"energy": energy, "coefficient": coefficient, "p_value": p_value, "n": (len(x), len(y))}


def energy_test(x, y, *, rng_key, num_permutations: int = 200):
    """Energy distance between samples ``x`` (n, d) and ``y`` (m, d) (Szekely & Rizzo).

    Coordinates are standardized by the pooled standard deviation first. Returns
    ``(energy, coefficient, p_value)``: ``coefficient = E / (2 E|X - Y|)`` lies in [0, 1]
    (0: same law) and is the effect size. The permutation p-value assumes independent draws:
    thin MCMC draws to their effective sample size first (:func:`thin_to`).
    """
    result = energy_statistics(x, y, rng_key=rng_key, num_permutations=num_permutations)
    return result["energy"], result["coefficient"], result["p_value"]


def effective_sample_size(values):
    """Pooled bulk effective sample size (rank-normalized, across chains: Vehtari et al.
    2021, through ``arviz_stats.ess``) of scalar draws ``values`` ``(chain, draw)``, or of
    each column of ``(chain, draw, k)``, capped at their number. Chains that disagree with
    each other lower it, as in R-hat. One draw per chain means independent draws: their
    number; a quantity that never moved has one effective draw; ``nan`` with two or three
    draws per chain."""
    values = np.asarray(values, np.float64)
    scalar = values.ndim == 2
    values = values[..., None] if scalar else values
    chains, draws, columns = values.shape
    if draws == 1:
        sizes = np.full(columns, float(chains))
    elif draws < 4:
        sizes = np.full(columns, math.nan)
    else:
        sizes = np.asarray(arviz_stats.ess(values, chain_axis=0, draw_axis=1), np.float64)
        sizes = np.minimum(np.where(np.isfinite(sizes), sizes, 1.0), chains * draws)
        sizes = np.where(np.ptp(values, axis=(0, 1)) > 0, sizes, 1.0)
    return float(sizes[0]) if scalar else sizes


def thin_to(chains: np.ndarray, effective_size: float):
    """Every ``k``-th draw of each chain ``(chain, draw, dim)``, counted back from its last,
    with ``k`` such that about ``effective_size`` draws remain (at least one per chain):
    nearly independent draws, for tests that assume them. Returns the draws pooled,
    ``(n, dim)``, and the chain of each, ``(n,)``."""
    num_chains, num_draws = chains.shape[:2]
    keep = max(1.0, effective_size) if math.isfinite(effective_size) else 1.0
    step = int(min(num_draws, max(1, math.ceil(num_chains * num_draws / keep))))
    thinned = chains[:, ::-1][:, ::step][:, ::-1]
    ids = np.repeat(np.arange(num_chains), thinned.shape[1])
    return thinned.reshape(-1, chains.shape[-1]), ids


def _kolmogorov_sf(statistic: float) -> float:
    """``P(K > statistic)`` for the Kolmogorov distribution (the limit of scaled KS)."""
    if statistic < 0.3:
        return 1.0
    k = np.arange(1, 101)
    tail = 2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * (k * statistic) ** 2))
    return float(np.clip(tail, 0.0, 1.0))


def ks_test(x, y, *, n_x=None, n_y=None) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test of 1-D samples: ``(distance, p_value)``.

    ``distance`` is the largest gap between the empirical CDFs (the largest difference of
    probability mass on one side of any point, in [0, 1]). ``n_x``, ``n_y``: the effective
    sizes of autocorrelated samples (default: their lengths); the p-value uses the asymptotic
    Kolmogorov law with Stephens' correction at those sizes."""
    x, y = np.sort(np.asarray(x, np.float64)), np.sort(np.asarray(y, np.float64))
    grid = np.concatenate([x, y])
    gap = np.searchsorted(x, grid, side="right") / len(x)
    gap -= np.searchsorted(y, grid, side="right") / len(y)
    distance = float(np.max(np.abs(gap)))
    n_x = len(x) if n_x is None else max(1.0, min(float(n_x), len(x)))
    n_y = len(y) if n_y is None else max(1.0, min(float(n_y), len(y)))
    root = math.sqrt(n_x * n_y / (n_x + n_y))
    return distance, _kolmogorov_sf((root + 0.12 + 0.11 / root) * distance)


def principal_directions(points, num: int, *, iterations: int = 8) -> np.ndarray:
    """The ``num`` leading principal directions ``(num, dim)`` of ``points`` ``(n, dim)``,
    unit vectors, largest variance first (fewer when ``n - 1`` or ``dim`` is smaller), by
    randomized subspace iteration with a fixed seed (Halko, Martinsson & Tropp 2011): only
    products with ``num + 8`` vectors, where an SVD at d = 1000 costs seconds."""
    centered = np.asarray(points, np.float64)
    centered = centered - centered.mean(axis=0)
    num = max(0, min(num, len(centered) - 1, centered.shape[1]))
    width = min(num + 8, *centered.shape)
    basis = np.random.default_rng(0).normal(size=(centered.shape[1], width))
    for _ in range(iterations):
        basis, _ = np.linalg.qr(centered.T @ (centered @ basis))
    _, _, rows = np.linalg.svd(centered @ basis, full_matrices=False)
    return (rows @ basis.T)[:num]


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


def nearest_distances(
    points, data, *, k: int = 2, exclude=None, return_indices: bool = False, block_bytes=2**26
):
    """Distances from each row of ``points`` to its ``k`` nearest rows of ``data``, sorted
    ascending, ``(n, k)``, exact to float64 rounding of the differences whatever the inputs'
    precision: a point's distance to its own copy in ``data`` is 0.

    ``exclude`` (one row index of ``data`` per point, or -1 for none) leaves that row out of
    the point's neighbours: leave-one-out within one set is
    ``nearest_distances(data[rows], data, exclude=rows)``. Self-matches are recognised by
    index, never by a small distance, so a duplicate training point still counts as a
    neighbour. ``return_indices=True`` also returns the neighbours' row indices.
    """
    points = np.asarray(points, np.float64)
    data = np.asarray(data, np.float64)
    if points.ndim != 2 or data.ndim != 2 or points.shape[1] != data.shape[1]:
        raise ValueError(
            "`points` and `data` must be (n, dim) and (m, dim) arrays of one dim, got shapes "
            f"{points.shape} and {data.shape}."
        )
    if exclude is not None:
        exclude = np.asarray(exclude)
        if exclude.shape != (len(points),) or not np.issubdtype(exclude.dtype, np.integer):
            raise ValueError(
                f"`exclude` must be {len(points)} integer row indices of `data` (one per point, "
                f"-1 for none), got {exclude.dtype} of shape {exclude.shape}."
            )
    available = len(data) - (exclude is not None)
    if not 1 <= k <= available:
        raise ValueError(f"`k` must be in 1..{available} (rows of `data` to choose from), got {k}.")
    # candidates by the expansion |p|^2 - 2 p.x + |x|^2, which cancels; then each candidate's
    # distance from its differences, which does not. A few spare candidates cover the ranks
    # that rounding of the expansion (relative 1e-16 in float64) could swap.
    if len(points) == 0:
        return (np.zeros((0, k)), np.zeros((0, k), int)) if return_indices else np.zeros((0, k))
    num_candidates = min(k + 4, available)
    data_norms = np.einsum("ij,ij->i", data, data)
    block = max(1, block_bytes // (8 * len(data)))
    distances, indices = [], []
    for start in range(0, len(points), block):
        p = points[start : start + block]
        squared = np.einsum("ij,ij->i", p, p)[:, None] - 2 * p @ data.T + data_norms[None, :]
        if exclude is not None:
            rows = np.nonzero(exclude[start : start + block] >= 0)[0]
            squared[rows, exclude[start : start + block][rows]] = np.inf
        candidates = np.argpartition(squared, num_candidates - 1, axis=1)[:, :num_candidates]
        exact = np.linalg.norm(p[:, None, :] - data[candidates], axis=-1)
        if exclude is not None:
            exact[candidates == exclude[start : start + block, None]] = np.inf
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        distances.append(np.take_along_axis(exact, order, axis=1))
        indices.append(np.take_along_axis(candidates, order, axis=1))
    distances, indices = np.concatenate(distances), np.concatenate(indices)
    return (distances, indices) if return_indices else distances


def numpy_rng(rng_key):
    """``(rng_key, numpy Generator)``: the key (``None``: ``jax.random.key(0)``) and a NumPy
    stream seeded from it, for subsampling."""
    rng_key = jax.random.key(0) if rng_key is None else check_key(rng_key)
    seed = int(jax.random.randint(rng_key, (), 0, 2**31 - 1))
    return rng_key, np.random.default_rng(seed)


def match_length(chains: np.ndarray, length: int) -> np.ndarray:
    """Resample each chain's draws to ``length`` evenly spaced ones (for a joint R-hat)."""
    if chains.shape[1] == length or len(chains) == 0:
        return chains
    index = np.linspace(0, chains.shape[1] - 1, length).round().astype(int)
    return chains[:, index]


def rhat_1d(values: np.ndarray) -> float:
    """Rank-normalized split R-hat of a ``(chain, draw)`` scalar."""
    if values.shape[0] < 2 or values.shape[1] < 4:
        return math.nan
    return float(arviz_stats.rhat(values, chain_axis=0, draw_axis=1))


def per_variable_rhat(chains: np.ndarray, rng, max_coordinates: int = 64) -> float:
    """Max rank-normalized split R-hat over (at most ``max_coordinates`` randomly chosen)
    coordinates of ``(chain, draw, dim)``: rank normalization costs O(draws log draws) per
    coordinate, too much to spend on all of d = 1000 for an informational number."""
    if chains.shape[0] < 2 or chains.shape[1] < 4:
        return math.nan
    if chains.shape[-1] > max_coordinates:
        chains = chains[..., np.sort(rng.choice(chains.shape[-1], max_coordinates, replace=False))]
    values = np.asarray(arviz_stats.rhat(chains, chain_axis=0, draw_axis=1))
    return float(np.nanmax(values))
