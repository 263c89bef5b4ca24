"""Annealed Langevin dynamics (NCSN, Song & Ermon 2019) driven by a (possibly wrong) time score.

Langevin runs ``steps_per_level`` moves at each of ``num_levels`` noise levels
``t_1 = t_start > ... > t_L = t_min`` taken from the schedule's time grid, each move with the
score of that level, ``x' = x + h s(x, t_i) + sqrt(2 h) z`` (the project's one Langevin
integrator, :func:`robust_score.kernels.integrators.langevin_step`). Early levels see a
heavily smoothed target whose modes are connected, so the chain finds every mode with the
right mass before the later levels sharpen it; a chain at a level only ever visits where
``p_{t_i}`` has mass, which is where an L2-accurate score is accurate.

Step rules (exactly one):

- ``step_size=eps``: NCSN's ``h_i = eps sigma_i^2 / sigma_L^2`` (``sigma_L = sigma(t_min)``),
  so ``eps`` is the step at the last level and ``h_i / sigma_i^2`` is the same at every level;
- ``snr=r``: Song et al. (2021)'s corrector rule ``h = 2 (r ||z|| / ||s||)^2`` at its
  noise-dominated value ``h_i = 2 r^2 sigma_i^2``, the same for every chain (a step that
  depended on the chain's own ``||s||`` would bias it; see
  :func:`robust_score.kernels._annealing.snr_step_size`).

Both rules keep ``h_i / sigma_i^2`` fixed, and ``-Hess log p_t <= I / sigma^2`` makes any
``h_i < 2 sigma_i^2`` stable whatever the data.

Like :mod:`robust_score.kernels.reverse_diffusion`, a step starts from the prior
(``t_start = T``) or renoises the current state to ``t_start``, and ``denoise=True`` ends with
Tweedie's ``E[x_0 | x_{t_min}]``. Cost: ``num_levels * steps_per_level`` score evaluations,
plus one for denoising.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.base import SamplingAlgorithm
from blackjax.types import ArrayTree, PRNGKey
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_positive_scalar
from robust_score.kernels._annealing import (
    Levels,
    check_count,
    check_schedule,
    check_time_score,
    check_time_score_output,
    flat_time_score,
    grid_levels,
    resolve_t_start,
    snr_step_size,
    walk_down,
)
from robust_score.kernels.integrators import langevin_step
from robust_score.schedules import Schedule

__all__ = [
    "AnnealedLangevinState",
    "AnnealedLangevinInfo",
    "init",
    "build_kernel",
    "as_top_level_api",
    "count_score_evals",
    "noise_levels",
]


class AnnealedLangevinState(NamedTuple):
    """The latest sample. With ``t_start = T`` it only fixes the position's structure."""

    position: ArrayTree


class AnnealedLangevinInfo(NamedTuple):
    """``is_divergent``: a non-finite position or score anywhere along the annealing path or
    at its end (the state is returned as computed, flagged, never silently);
    ``num_score_evals``: score evaluations this step spent."""

    is_divergent: jax.Array
    num_score_evals: jax.Array


def count_score_evals(num_levels: int, steps_per_level: int, *, denoise: bool = True) -> int:
    return num_levels * steps_per_level + int(denoise)


def noise_levels(schedule: Schedule, num_levels: int, *, t_start=None, spacing=None):
    """The ``num_levels`` annealing times, ``t_start`` (default ``T``) down to ``t_min``
    inclusive; a single level is ``t_min`` alone (plain Langevin after the start)."""
    check_count(num_levels, "num_levels")
    t_start = resolve_t_start(schedule, t_start)
    dtype = jnp.zeros(()).dtype
    return annealing_levels(schedule, num_levels, t_start, schedule.check_spacing(spacing), dtype).t


def annealing_levels(schedule: Schedule, num_levels: int, t_start: float, spacing, dtype):
    """The schedule's :class:`~robust_score.kernels._annealing.Levels` at
    :func:`noise_levels`, as NumPy constants (cached per setting)."""
    levels = grid_levels(schedule, max(num_levels - 1, 1), t_start, spacing, dtype)
    if num_levels == 1:
        return Levels(*(a[-1:] for a in levels))
    return levels


def init(
    position: ArrayTree,
    time_score_fn: Callable,
    schedule: Schedule,
    rng_key: PRNGKey | None = None,
) -> AnnealedLangevinState:
    del rng_key  # accepted for blackjax.util.run_inference_algorithm
    check_schedule(schedule)
    check_time_score_output(time_score_fn, position, schedule)
    return AnnealedLangevinState(position)


def _check_step_rule(step_size, snr) -> None:
    if (step_size is None) == (snr is None):
        raise ValueError(
            "give exactly one of `step_size` (NCSN rule eps * sigma_i^2 / sigma_min^2) or "
            f"`snr` (signal-to-noise rule), got step_size={step_size!r}, snr={snr!r}."
        )
    if step_size is not None:
        check_positive_scalar(step_size, "step_size")
    else:
        check_positive_scalar(snr, "snr")


def build_kernel():
    """Annealed Langevin kernel: ``kernel(rng_key, state, time_score_fn, schedule,
    num_levels, steps_per_level, step_size=None, snr=None, *, t_start=None, denoise=True,
    spacing=None) -> (state, info)``."""

    def kernel(
        rng_key: PRNGKey,
        state: AnnealedLangevinState,
        time_score_fn: Callable,
        schedule: Schedule,
        num_levels: int,
        steps_per_level: int,
        step_size: float | None = None,
        snr: float | None = None,
        *,
        t_start: float | None = None,
        denoise: bool = True,
        spacing: str | None = None,
    ) -> tuple[AnnealedLangevinState, AnnealedLangevinInfo]:
        check_schedule(schedule)
        check_count(steps_per_level, "steps_per_level")
        _check_step_rule(step_size, snr)
        t_start = resolve_t_start(schedule, t_start)
        flat, unravel = ravel_pytree(state.position)
        score = flat_time_score(time_score_fn, unravel)
        levels = annealing_levels(schedule, num_levels, t_start, spacing, flat.dtype)
        if step_size is not None:
            step_sizes = step_size * (levels.sigma / levels.sigma[-1]) ** 2
        else:
            step_sizes = snr_step_size(snr, levels.sigma)
        # one entry per Langevin move, so the whole path is a single flat scan
        per_move = [np.repeat(a, steps_per_level) for a in (levels.t, step_sizes)]

        def move(key, x, t, h):
            return langevin_step(key, x, score(x, t), h)

        end = jax.tree.map(lambda a: a[-1], levels) if denoise else None
        x, is_divergent = walk_down(rng_key, flat, score, schedule, t_start, move, per_move, end)
        evals = count_score_evals(num_levels, steps_per_level, denoise=denoise)
        info = AnnealedLangevinInfo(is_divergent, jnp.asarray(evals))
        return AnnealedLangevinState(unravel(x)), info

    return kernel


def as_top_level_api(
    time_score_fn: Callable,
    schedule: Schedule,
    num_levels: int,
    steps_per_level: int,
    step_size: float | None = None,
    snr: float | None = None,
    *,
    t_start: float | None = None,
    denoise: bool = True,
    spacing: str | None = None,
) -> SamplingAlgorithm:
    """Annealed Langevin dynamics as a ``blackjax.SamplingAlgorithm``.

    .. code::

        sampler = rs.annealed_langevin(time_score_fn, rs.schedules.ve(), num_levels=100,
                                       steps_per_level=10, step_size=2e-5)
        state = sampler.init(jnp.zeros(dim))    # a template: shape, dtype, pytree structure
        state, info = jax.jit(sampler.step)(rng_key, state)   # state.position ~ p

    Give exactly one of ``step_size`` (NCSN rule; Song & Ermon use ``eps = 2e-5`` with
    ``sigma_min = 0.01``, i.e. ``h_i = 0.2 sigma_i^2``) or ``snr`` (``0.16`` in Song et al.
    2021). See the module docstring for the levels, the rules and the cost per step.
    """
    check_time_score(time_score_fn)
    check_schedule(schedule)
    check_count(num_levels, "num_levels")
    check_count(steps_per_level, "steps_per_level")
    _check_step_rule(step_size, snr)
    t_start = resolve_t_start(schedule, t_start)
    schedule.check_spacing(spacing)
    kernel = build_kernel()

    def init_fn(position, rng_key=None):
        return init(position, time_score_fn, schedule, rng_key)

    def step_fn(rng_key, state):
        return kernel(
            rng_key,
            state,
            time_score_fn,
            schedule,
            num_levels,
            steps_per_level,
            step_size,
            snr,
            t_start=t_start,
            denoise=denoise,
            spacing=spacing,
        )

    return SamplingAlgorithm(init_fn, step_fn)
