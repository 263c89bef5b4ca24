"""The metrics the paper's tables report, on arrays of draws ``(num_draws, dim)``."""

import math

import numpy as np

__all__ = [
    "kl_diagonal_fit",
    "metric_floor",
    "nearest_distance",
    "norm_per_sqrt_d",
    "sliced_w2",
]


def norm_per_sqrt_d(points) -> float:
    """Mean ``||x|| / sqrt(d)`` over the draws (any leading axes)."""
    points = np.asarray(points)
    return float(np.linalg.norm(points, axis=-1).mean()) / math.sqrt(points.shape[-1])


def kl_diagonal_fit(points, mean: float, variance: float) -> float:
    """``KL(N(m, diag v) || N(mean 1, variance I))`` with ``(m, v)`` fitted to ``points``: a
    diagonal fit, since 30 chains cannot fit a full covariance in d = 50."""
    m, v = points.mean(axis=0), points.var(axis=0, ddof=1)
    return float(
        0.5 * np.sum(v / variance + (m - mean) ** 2 / variance - 1.0 - np.log(v / variance))
    )


def sliced_w2(points, reference, num_directions: int = 64, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance: the 1-D W2 (quantile matching against ``reference``)
    along ``num_directions`` random directions, root-mean-squared. Not the exact W2."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(num_directions, points.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    levels = (np.arange(len(points)) + 0.5) / len(points)
    total = 0.0
    for direction in directions:
        projected = np.sort(points @ direction)
        target = np.quantile(reference @ direction, levels)
        total += np.mean((projected - target) ** 2)
    return float(math.sqrt(total / num_directions))


def metric_floor(sample, metric, reference, num_draws: int, key, repeats: int = 200):
    """Mean and standard deviation of ``metric(draws, reference)`` over ``repeats`` sets of
    ``num_draws`` exact draws ``sample(key, n)``: what the metric reads for a perfect sampler
    at this number of draws."""
    draws = np.asarray(sample(key, repeats * num_draws))
    values = [metric(chunk, reference) for chunk in draws.reshape(repeats, num_draws, -1)]
    return float(np.mean(values)), float(np.std(values, ddof=1))


def nearest_distance(points, train) -> np.ndarray:
    """Distance of each of ``points`` to its nearest row of ``train``: the diagnostics'
    exact nearest-neighbour search, so the paper's numbers and the memorization check read
    the same distances."""
    from robust_score.diagnostics.statistics import nearest_distances

    return nearest_distances(np.asarray(points), np.asarray(train), k=1)[:, 0]
