"""The memorizing estimator: the exact score of the noised training data, which denoising
score matching converges to on finite data (:mod:`robust_score.learn`)."""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_data_matrix
from robust_score.schedules import Schedule, check_schedule

__all__ = ["empirical_logdensity", "empirical_score"]


def empirical_score(train_data, schedule: Schedule) -> Callable:
    """The exact time score of the training data's empirical distribution noised under
    ``schedule``: the score of ``(1/n) sum_i N(alpha(t) x_i, sigma(t)^2 I)``,
    ``s(x, t) = sum_i w_i (alpha x_i - x) / sigma^2`` with
    ``w = softmax_i(-||x - alpha x_i||^2 / (2 sigma^2))`` computed by a log-sum-exp (stable at
    any ``sigma``). It is the minimizer of the DSM loss on ``train_data`` over all functions,
    hence what an unlimited network trained for ever converges to; reverse diffusion with it
    returns training points. ``train_data`` is ``(n, *event_shape)``; the score takes positions
    of ``event_shape`` (or any pytree with that many entries)."""
    return _build_empirical(train_data, schedule, want="score")


def empirical_logdensity(train_data, schedule: Schedule) -> Callable:
    """``(x, t) -> log (1/n) sum_i N(x; alpha(t) x_i, sigma(t)^2 I)``, normalized; its
    gradient in ``x`` is :func:`empirical_score`."""
    return _build_empirical(train_data, schedule, want="logdensity")


def _build_empirical(train_data, schedule, want: str) -> Callable:
    points = check_data_matrix(train_data, "train_data")
    check_schedule(schedule)
    points = np.asarray(points.reshape(points.shape[0], -1), np.float64)
    num_points, dim = points.shape

    def log_prob_and_score(x, t):
        flat, unravel = ravel_pytree(x)
        if flat.size != dim:
            raise ValueError(
                f"position has {flat.size} entries but `train_data` has dimension {dim}."
            )
        dtype = flat.dtype
        t = jnp.asarray(t, dtype)
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        # the difference, not ||x||^2 - 2 alpha x.x_i + ..., which cancels badly at low sigma
        residual = alpha * jnp.asarray(points, dtype) - flat  # (n, d)
        log_kernel = -0.5 * jnp.sum(residual**2, axis=-1) / sigma**2
        log_norm = jax.nn.logsumexp(log_kernel)
        weights = jnp.exp(log_kernel - log_norm)
        log_prob = log_norm - math.log(num_points) - dim * (0.5 * math.log(2 * math.pi))
        log_prob = log_prob - dim * jnp.log(sigma)
        return log_prob, unravel(weights @ residual / sigma**2)

    if want == "score":
        return lambda x, t: log_prob_and_score(x, t)[1]
    return lambda x, t: log_prob_and_score(x, t)[0]
