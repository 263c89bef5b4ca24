"""Time scores from the quantities diffusion models are trained to predict.

Every adapter assumes the forward process ``x_t = alpha(t) x_0 + sigma(t) eps`` of a
:mod:`robust_score.schedules` schedule and Tweedie's formula
``E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha``, i.e.

    score(x, t) = (alpha(t) x0_hat - x) / sigma(t)^2 = -eps_hat / sigma(t),

with ``x0_hat`` the model's estimate of ``E[x_0 | x_t = x]`` and ``eps_hat`` that of
``E[eps | x_t = x]``. Each returns ``score_fn(x, t)``; ``x`` may be a pytree (the model then
takes and returns that pytree) and the model receives ``t`` as a scalar array of ``x``'s dtype.
"""

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from robust_score._checks import check_callable, check_time
from robust_score.schedules import Schedule, check_schedule

__all__ = [
    "ScoreAtTime",
    "at_time",
    "from_denoiser",
    "from_eps_prediction",
    "from_v_prediction",
    "from_x0_prediction",
]


@dataclass(frozen=True)
class ScoreAtTime:
    """The data-space score ``x -> time_score_fn(x, time)`` of a time score frozen at one
    noise level, carrying that level: Langevin with it targets the noised law ``p_time``
    (``alpha(time) x_0 + sigma(time) eps``), not the data, and the trap report's
    Langevin-vs-annealed check reads ``time`` to draw its reference at the same level.
    Frozen and hashable, so samplers that cache on the score reuse their compiled program."""

    time_score_fn: Callable
    schedule: Schedule
    time: float

    def __call__(self, x):
        return self.time_score_fn(x, self.time)

    @property
    def sigma(self) -> float:
        """The noise level ``sigma(time)`` of the schedule."""
        return float(self.schedule.sigma(self.time))


def at_time(time_score_fn: Callable, schedule: Schedule, t: float) -> ScoreAtTime:
    """``time_score_fn`` at the fixed time ``t`` of ``schedule`` (in ``[t_min, T]``), for
    ULA/MALA: a :class:`ScoreAtTime`, which carries ``t``. Its Lipschitz scale is about
    ``1 / sigma(t)^2``: keep a Langevin step well below ``sigma(t)^2``."""
    check_callable(time_score_fn, "time_score_fn", "time_score_fn(x, t)")
    check_schedule(schedule)
    check_time(schedule, t, "t")
    return ScoreAtTime(time_score_fn, schedule, float(t))


def _time_and_coefficients(schedule: Schedule, x, t):
    t = jnp.asarray(t, jnp.result_type(jax.tree.leaves(x)[0]))
    return t, schedule.alpha(t), schedule.sigma(t)


def from_x0_prediction(x0_fn: Callable, schedule: Schedule) -> Callable:
    """``x0_fn(x, t) ~ E[x_0 | x_t = x]``: ``score = (alpha x0_hat - x) / sigma^2``."""
    check_callable(x0_fn, "x0_fn", "x0_fn(x, t)")
    check_schedule(schedule)

    def score(x, t):
        t, alpha, sigma = _time_and_coefficients(schedule, x, t)
        return jax.tree.map(lambda xi, x0: (alpha * x0 - xi) / sigma**2, x, x0_fn(x, t))

    return score


def from_eps_prediction(eps_fn: Callable, schedule: Schedule) -> Callable:
    """``eps_fn(x, t) ~ E[eps | x_t = x]`` (DDPM's parameterization):
    ``score = -eps_hat / sigma``."""
    check_callable(eps_fn, "eps_fn", "eps_fn(x, t)")
    check_schedule(schedule)

    def score(x, t):
        t, _, sigma = _time_and_coefficients(schedule, x, t)
        return jax.tree.map(lambda eps: -eps / sigma, eps_fn(x, t))

    return score


def from_v_prediction(v_fn: Callable, schedule: Schedule) -> Callable:
    """``v_fn(x, t) ~ E[v | x_t = x]`` with ``v = alpha eps - sigma x_0`` (Salimans & Ho 2022).

    From ``x = alpha x_0 + sigma eps`` and ``v``, ``eps = (sigma x + alpha v) / (alpha^2 +
    sigma^2)``, hence ``score = -(sigma x + alpha v_hat) / (sigma (alpha^2 + sigma^2))``. The
    denominator is 1 for variance-preserving schedules; keeping it makes the adapter right for
    any schedule.
    """
    check_callable(v_fn, "v_fn", "v_fn(x, t)")
    check_schedule(schedule)

    def score(x, t):
        t, alpha, sigma = _time_and_coefficients(schedule, x, t)
        scale = sigma * (alpha**2 + sigma**2)
        return jax.tree.map(lambda xi, v: -(sigma * xi + alpha * v) / scale, x, v_fn(x, t))

    return score


def from_denoiser(denoiser: Callable, schedule: Schedule) -> Callable:
    """``denoiser(x_hat, sigma_hat) ~ E[x_0 | x_0 + sigma_hat eps = x_hat]`` in EDM's convention
    (Karras et al. 2022: no scaling, noise level ``sigma_hat`` instead of a time).

    A schedule with scaling writes ``x_t / alpha = x_0 + (sigma / alpha) eps``, so the EDM
    denoiser is queried at ``x_hat = x / alpha`` and ``sigma_hat = sigma / alpha``:
    ``score = (alpha D(x / alpha, sigma / alpha) - x) / sigma^2``. For ``ve``/``edm``
    schedules ``alpha = 1`` and this is ``(D(x, sigma) - x) / sigma^2``.
    """
    check_callable(denoiser, "denoiser", "denoiser(x_hat, sigma_hat)")
    check_schedule(schedule)

    def score(x, t):
        t, alpha, sigma = _time_and_coefficients(schedule, x, t)
        x0 = denoiser(jax.tree.map(lambda xi: xi / alpha, x), sigma / alpha)
        return jax.tree.map(lambda xi, x0i: (alpha * x0i - xi) / sigma**2, x, x0)

    return score
