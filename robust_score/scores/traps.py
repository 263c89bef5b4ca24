"""The paper's wrong-but-accurate scores (Cao, Chen, Sridharan & Wu, ICML 2026).

Both constructions change a base score only on a region the target almost never visits, so
the relative L2 error under the target is exponentially small in the dimension, yet a Langevin
chain that starts inside the region never leaves it.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from robust_score._checks import (
    check_callable,
    check_data_matrix,
    check_positive_scalar,
)
from robust_score.schedules import Schedule, check_schedule

__all__ = [
    "center_trap",
    "center_trap_time",
    "memorization_trap",
    "memorization_trap_time",
    "blend_weight",
]


def blend_weight(distance, inner: float, outer: float):
    """1 inside ``inner``, 0 outside ``outer``, linear (so Lipschitz) in between."""
    return jnp.clip((outer - distance) / (outer - inner), 0.0, 1.0)


def _norm(offset):
    """``||offset||`` with a finite derivative at zero: ``jnp.linalg.norm``'s is NaN there,
    which made the trap's Jacobian NaN at its own center (a curvature reading of a chain
    started there failed)."""
    squared = jnp.sum(offset**2)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def _scale(value, dim: int, default_per_sqrt_d: float):
    return default_per_sqrt_d * math.sqrt(dim) if value is None else value


def _check_radii(r_in, r_out, names=("r_in", "r_out")):
    if not (math.isfinite(r_in) and r_in > 0):
        raise ValueError(f"`{names[0]}` must be a positive finite number, got {r_in}.")
    if not (math.isfinite(r_out) and r_out > r_in):
        raise ValueError(f"`{names[1]}` must be finite and > `{names[0]}` ({r_in}), got {r_out}.")


def center_trap(
    base_score: Callable,
    center=None,
    *,
    r_in: float | None = None,
    r_out: float | None = None,
    stiffness: float = 1.0,
) -> Callable:
    """Thm 1: a wrong attractor ``-stiffness (x - center)`` inside ``||x - center|| <= r_in``,
    ``base_score`` outside ``r_out``, a Lipschitz blend in the shell between.

    ``stiffness`` is the strength of the wrong pull (the paper's ``alpha``, renamed so as not
    to be confused with a schedule's ``alpha(t)``). Defaults reproduce Thm 1: ``center = 0``,
    ``r_in = 4 sqrt(d)``, ``r_out = 5 sqrt(d)`` (``d`` the number of entries of the
    position), ``stiffness = 1``. With the target ``N(mu, I)``, ``||mu|| = 7 sqrt(d)``, a
    chain started near the center stays at ``||x|| ~ sqrt(d / stiffness)``, while the target
    sits at ``||x|| ~ sqrt(50 d)``.
    """
    check_callable(base_score, "base_score")
    field = _center_trap_field(center, r_in, r_out, stiffness)

    def score(x):
        return _apply(field, x, 1.0, base_score(x))

    return score


def memorization_trap(
    base_score: Callable,
    train_data,
    radius: float | None = None,
    stiffness: float = 100.0,
    *,
    blend: float = 0.25,
) -> Callable:
    """Thm 7: an attractor ``-stiffness (x - x_i)`` towards the nearest training point ``x_i``
    within ``radius`` of it, ``base_score`` beyond ``(1 + blend) radius``, linear blend between.

    ``train_data`` is ``(n, *event_shape)``. Defaults: ``radius = 0.16 sqrt(d)`` (the paper's),
    ``stiffness = 100`` (the paper's ``alpha``) so the well's own spread
    ``sqrt(d / stiffness) = 0.1 sqrt(d)`` sits inside the radius (use ULA steps well below
    ``2 / stiffness``). The paper assumes training points in general position (pairwise
    distances >= 0.4 sqrt(d)), which keeps the wells disjoint.
    """
    check_callable(base_score, "base_score")
    field = _memorization_field(train_data, radius, stiffness, blend)

    def score(x):
        return _apply(field, x, 1.0, base_score(x))

    return score


def _apply(field, x, scaling, base):
    """Evaluate a trap ``field`` on the flat position and unflatten: pytree-aware wrapper."""
    flat, unravel = ravel_pytree(x)
    return unravel(field(flat, scaling, ravel_pytree(base)[0]))


def _center_trap_field(center, r_in, r_out, stiffness):
    """The center trap on a flat vector, carried by the forward scaling ``alpha(t)``
    (``scaling = 1`` in data space): attractor inside ``scaling * r_in`` around
    ``scaling * center``, the base score outside ``scaling * r_out``."""
    check_positive_scalar(stiffness, "stiffness")
    if r_in is not None and r_out is not None:
        _check_radii(r_in, r_out)
    center_flat = None if center is None else np.asarray(ravel_pytree(center)[0])

    def field(flat, scaling, base):
        dim = flat.size
        inner, outer = _scale(r_in, dim, 4.0), _scale(r_out, dim, 5.0)
        _check_radii(inner, outer)
        c = jnp.zeros_like(flat) if center_flat is None else jnp.asarray(center_flat, flat.dtype)
        if c.shape != flat.shape:
            raise ValueError(f"`center` has {c.size} entries but the position has {dim}.")
        offset = flat - scaling * c
        weight = blend_weight(_norm(offset), scaling * inner, scaling * outer)
        return weight * (-stiffness * offset) + (1.0 - weight) * base

    return field


def _memorization_field(train_data, radius, stiffness, blend):
    """The memorization trap on a flat vector: wells at ``scaling * x_i``."""
    check_data_matrix(train_data, "train_data")
    # the values as given, in float64 (the check's copy is in the default float dtype)
    data = np.asarray(train_data, dtype=np.float64)
    data = data.reshape(data.shape[0], -1)
    dim = data.shape[1]
    radius = _scale(radius, dim, 0.16)
    _check_radii(radius, radius * (1 + blend), names=("radius", "(1 + blend) * radius"))
    check_positive_scalar(stiffness, "stiffness")
    squared_norms = np.sum(data**2, axis=1)

    def field(flat, scaling, base):
        if flat.size != dim:
            raise ValueError(f"position has {flat.size} entries but `train_data` has {dim}.")
        points = jnp.asarray(data, flat.dtype)
        # nearest of the scaled points scaling * x_i, without forming them
        squared = scaling**2 * jnp.asarray(squared_norms, flat.dtype) - 2 * scaling * (
            points @ flat
        )
        offset = flat - scaling * points[jnp.argmin(squared)]
        inner = scaling * radius
        weight = blend_weight(jnp.linalg.norm(offset), inner, inner * (1 + blend))
        return weight * (-stiffness * offset) + (1.0 - weight) * base

    return field


def center_trap_time(
    base_time_score: Callable,
    schedule: Schedule,
    center=None,
    *,
    r_in: float | None = None,
    r_out: float | None = None,
    stiffness: float = 1.0,
) -> Callable:
    """:func:`center_trap` at every noise level: a time score ``(x, t) -> ...`` that is wrong
    only where ``p_t`` has (exponentially) no mass, at every ``t``.

    At time ``t`` the trap is the data-space trap carried by the forward scaling
    ``x -> alpha(t) x``: the attractor ``-stiffness (x - alpha(t) center)`` inside
    ``||x - alpha(t) center|| <= alpha(t) r_in``, ``base_time_score(x, t)`` outside
    ``alpha(t) r_out``, the same Lipschitz blend in between (defaults as in
    :func:`center_trap`: ``r_in = 4 sqrt(d)``, ``r_out = 5 sqrt(d)``, ``center = 0``).

    Why the L2 error stays small under every ``p_t``: with ``x_t = alpha x_0 + sigma eps``
    and ``R = ||x_0 - c||``, ``||x_t - alpha c||^2 = alpha^2 R^2 + sigma^2 ||eps||^2 +
    2 alpha sigma R Z`` with ``Z ~ N(0, 1)`` given ``x_0``. Bounding the cross term by
    ``delta alpha^2 R^2 + sigma^2 Z^2 / delta`` gives ``||x_t - alpha c||^2 >= (1 - delta)
    alpha^2 R^2`` unless ``Z^2 > delta ||eps||^2 ~ delta d``, which has probability
    ``~ exp(-delta d / 2)``: noise does not bring a draw closer to the scaled center. So ``p_t``
    puts no more mass in the scaled trap than ``p`` puts in the data-space ball of radius
    ``r_out / sqrt(1 - delta)``, plus ``exp(-delta d / 2)``. For the paper's target
    ``N(mu, I)``, ``||mu|| = 7 sqrt(d)``, ``R ~ 7.07 sqrt(d)`` exceeds
    ``r_out / sqrt(1 - delta) = 5.8 sqrt(d)`` at ``delta = 1/4``: the mass is exponentially
    small in ``d`` at every ``t``. Shrinking the trap with ``alpha`` is what makes this hold
    under VP schedules: a fixed ball around ``0`` would contain all of ``p_T ~ N(0, I)``. The
    ``stiffness`` is kept fixed, so the score's Lipschitz constant does not blow up as
    ``alpha(t) -> 0``.

    At ``t_min`` (``alpha ~ 1``) this is :func:`center_trap` of the base score: Langevin with
    that score started at the center is trapped, while samplers that anneal from noise never
    enter the trap.
    """
    field = _center_trap_field(center, r_in, r_out, stiffness)
    return _through_noise_levels(field, base_time_score, schedule)


def memorization_trap_time(
    base_time_score: Callable,
    schedule: Schedule,
    train_data,
    radius: float | None = None,
    stiffness: float = 100.0,
    *,
    blend: float = 0.25,
) -> Callable:
    """:func:`memorization_trap` at every noise level: at time ``t`` the wells sit at
    ``alpha(t) x_i`` with radius ``alpha(t) radius`` (blend out to ``(1 + blend)`` times that),
    slope ``-stiffness (x - alpha(t) x_i)``, and ``base_time_score(x, t)`` elsewhere.

    The argument of :func:`center_trap_time` applies well by well: noise does not bring a draw
    closer to a scaled training point, so ``p_t`` gives each scaled well no more mass than
    ``p`` gives a slightly enlarged data-space well (plus an exponentially small term), which
    is exponentially small when a fresh draw from ``p`` is far from every training point
    (``~ sqrt(2 d)`` for standardized data, against a radius of ``0.16 sqrt(d)``). Scaling
    keeps the wells disjoint at every ``t``, since pairwise distances and radii shrink
    together. At ``t_min`` this is :func:`memorization_trap` of the base score.
    """
    field = _memorization_field(train_data, radius, stiffness, blend)
    return _through_noise_levels(field, base_time_score, schedule)


def _through_noise_levels(field, base_time_score: Callable, schedule: Schedule) -> Callable:
    """The trap ``field`` scaled by ``alpha(t)`` at time ``t``, over ``base_time_score``."""
    check_callable(base_time_score, "base_time_score", "base_time_score(x, t)")
    check_schedule(schedule)

    def score(x, t):
        scaling = schedule.alpha(jnp.asarray(t, jnp.result_type(*jax.tree.leaves(x))))
        return _apply(field, x, scaling, base_time_score(x, t))

    return score
