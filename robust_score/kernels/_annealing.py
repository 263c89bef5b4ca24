"""The path driver shared by the samplers that anneal from noise (annealed Langevin, reverse
diffusion), and the settings base they extend.

Every such sampler works on the flat vector of a (possibly pytree) position, starts either
from the prior or from the current state renoised to ``t_start``, walks down a grid of times
in one ``lax.scan`` and may finish with one Tweedie denoising step: one kernel
(:func:`build_kernel`) does that for all of them. A sampler is a settings class
(:class:`AnnealingPath`) that says which levels it visits (``levels``) and how it moves
between them (``moves``), as a Diffrax solver is one step function under one loop.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.base import SamplingAlgorithm, build_sampling_algorithm
from blackjax.types import ArrayTree, PRNGKey
from jax.flatten_util import ravel_pytree

from robust_score._checks import (
    check_callable,
    check_choice,
    check_flag,
    check_time,
    check_time_score_output,
    default_float_dtype,
)
from robust_score.kernels.integrators import all_finite
from robust_score.schedules import SPACINGS, Schedule, check_schedule

__all__ = [
    "AnnealingPath",
    "Levels",
    "PathInfo",
    "PathState",
    "build_kernel",
    "init",
    "flat_time_score",
    "grid_levels",
    "levels_on",
    "snr_step_size",
    "starting_point",
    "trajectory_diverged",
    "tweedie_denoise",
]


class Levels(NamedTuple):
    """Schedule quantities at a set of times (arrays of one shape)."""

    t: jax.Array
    alpha: jax.Array
    sigma: jax.Array
    drift: jax.Array  # f(t): the forward SDE drift is f(t) x
    diffusion_squared: jax.Array  # g(t)^2


@dataclass(frozen=True)
class AnnealingPath:
    """What every sampler that anneals from noise needs: the ``schedule``, where a path
    starts (``t_start``; ``None`` means ``T``, a fresh prior draw per step), whether it ends
    with Tweedie's denoising step (``denoise``), and the grid ``spacing`` (``None``: the
    schedule's default). Checked once here; ``t_start`` and ``spacing`` are stored resolved,
    so two settings that mean the same compare (and hash) equal and share compiled code."""

    schedule: Schedule
    t_start: float | None = field(default=None, kw_only=True)
    denoise: bool = field(default=True, kw_only=True)
    spacing: str | None = field(default=None, kw_only=True)

    def __post_init__(self):
        check_schedule(self.schedule)
        if self.t_start is None:
            object.__setattr__(self, "t_start", float(self.schedule.T))
        else:
            check_time(self.schedule, self.t_start, "t_start")
            object.__setattr__(self, "t_start", float(self.t_start))
        check_flag(self.denoise, "denoise")
        if self.spacing is None:
            object.__setattr__(self, "spacing", self.schedule.default_spacing)
        check_choice(self.spacing, "spacing", SPACINGS)

    @property
    def num_score_evals(self) -> int:
        """Score evaluations per kernel step (per draw)."""
        raise NotImplementedError

    def levels(self, dtype) -> Levels:
        """The schedule on the sampler's grid of times (NumPy constants, cached)."""
        raise NotImplementedError

    def moves(self, score: Callable, levels: Levels) -> tuple[Callable, tuple]:
        """The sampler's move ``move(key, carry, *inputs) -> carry`` and its inputs, arrays
        with one leading entry per move (the path is one ``lax.scan`` over them). The carry
        is the flat position unless :meth:`start_carry` says otherwise."""
        raise NotImplementedError

    def start_carry(self, x):
        """What the moves carry along the path, from the starting point ``x``: ``x`` itself;
        a multistep method adds what it remembers of earlier steps."""
        return x

    def carry_position(self, carry):
        """The position in a carry of :meth:`start_carry`'s form."""
        return carry

    def sampling_algorithm(self, time_score_fn: Callable) -> SamplingAlgorithm:
        """The sampler with these settings as a ``blackjax.SamplingAlgorithm``."""
        check_callable(time_score_fn, "time_score_fn", "time_score_fn(x, t)")
        return build_sampling_algorithm(
            build_kernel(), init, time_score_fn, init_args=(self,), kernel_args=(self,)
        )

    def end_level(self, levels: Levels) -> Levels | None:
        """The level Tweedie's step denoises at (the last), or ``None`` without denoising."""
        return jax.tree.map(lambda a: a[-1], levels) if self.denoise else None


def flat_time_score(time_score_fn: Callable, unravel: Callable) -> Callable:
    """The time score on flat vectors, so a kernel's arithmetic never touches pytrees."""

    def score(flat, t):
        return ravel_pytree(time_score_fn(unravel(flat), t))[0]

    return score


def _evaluate_levels(schedule: Schedule, times) -> Levels:
    return Levels(
        t=times,
        alpha=schedule.alpha(times),
        sigma=schedule.sigma(times),
        drift=schedule.drift_coefficient(times),
        diffusion_squared=schedule.diffusion_squared(times),
    )


@lru_cache(maxsize=64)
def _levels_program(schedule: Schedule, shape, dtype):
    times = jax.ShapeDtypeStruct(shape, dtype)
    return jax.jit(_evaluate_levels, static_argnums=0).lower(schedule, times).compile()


def levels_on(schedule: Schedule, times, dtype) -> Levels:
    """Schedule quantities at concrete ``times`` as NumPy arrays of ``dtype``: constants of a
    kernel's compiled program, not recomputed per step.

    Evaluated by one small jitted program, not op by op while tracing: eagerly, each of the
    schedule's operations compiles anew for every new grid length (about a second per new
    ``num_steps``, against about a tenth for one program).
    """
    times = np.asarray(times, default_float_dtype())
    # compiled and run on its own, so the values are concrete even while a kernel is traced
    return _constants(_levels_program(schedule, times.shape, times.dtype)(times), dtype)


@lru_cache(maxsize=256)
def grid_levels(schedule: Schedule, num_steps: int, t_start: float, spacing: str, dtype) -> Levels:
    """:func:`levels_on` the grid ``schedule.time_grid(num_steps, t_start=t_start,
    spacing=spacing)``, computed once per setting."""

    def on_grid():
        times = schedule.time_grid(num_steps, t_start=t_start, spacing=spacing)
        return _evaluate_levels(schedule, times)

    return _constants(jax.jit(on_grid).lower().compile()(), dtype)


def _constants(levels: Levels, dtype) -> Levels:
    constants = Levels(*(np.array(value, dtype) for value in levels))
    for value in constants:
        value.flags.writeable = False  # grid_levels shares them between kernels
    return constants


class PathState(NamedTuple):
    """The latest sample. With ``t_start = T`` it only fixes the position's structure."""

    position: ArrayTree


class PathInfo(NamedTuple):
    """``is_divergent``: a non-finite position or score anywhere along the path or at its end
    (the state is returned as computed, flagged, never silently); ``num_score_evals``: score
    evaluations this step spent (fixed by the settings)."""

    is_divergent: jax.Array
    num_score_evals: jax.Array


def init(
    position: ArrayTree,
    time_score_fn: Callable,
    settings: AnnealingPath,
    rng_key: PRNGKey | None = None,
) -> PathState:
    del rng_key  # accepted for blackjax.util.run_inference_algorithm
    check_time_score_output(time_score_fn, position, settings.schedule)
    return PathState(position)


def build_kernel():
    """The kernel of every sampler that anneals from noise: ``kernel(rng_key, state,
    time_score_fn, settings) -> (state, info)``. It starts at ``settings.t_start``
    (:func:`starting_point`), runs ``settings.moves`` in one ``lax.scan`` on the flat
    position, then, if ``settings.denoise``, takes Tweedie's step at the last level."""

    def kernel(
        rng_key: PRNGKey, state: PathState, time_score_fn: Callable, settings: AnnealingPath
    ) -> tuple[PathState, PathInfo]:
        flat, unravel = ravel_pytree(state.position)
        score = flat_time_score(time_score_fn, unravel)
        levels = settings.levels(flat.dtype)
        move, move_inputs = settings.moves(score, levels)
        key_start, key_path = jax.random.split(rng_key)
        x = starting_point(key_start, flat, settings.schedule, settings.t_start)
        keys = jax.random.split(key_path, len(jax.tree.leaves(move_inputs)[0]))

        def one_move(carry, inputs):
            key, inputs = inputs
            return move(key, carry, *inputs), None

        carry, _ = jax.lax.scan(one_move, settings.start_carry(x), (keys, move_inputs))
        x = settings.carry_position(carry)
        end = settings.end_level(levels)
        if end is not None:
            x = tweedie_denoise(x, score(x, end.t), end)
        info = PathInfo(trajectory_diverged(x), jnp.asarray(settings.num_score_evals))
        return PathState(unravel(x)), info

    return kernel


def trajectory_diverged(x) -> jax.Array:
    """Whether a trajectory's end point is non-finite, which is whether it went non-finite
    anywhere: every move (Euler–Maruyama, Heun, Langevin, Tweedie) adds to ``x`` with
    coefficient one, so a NaN or infinity in ``x`` or in a score that entered it stays. One
    check at the end therefore flags the whole path, at none of the per-move cost."""
    return ~all_finite(x)


def starting_point(rng_key, flat, schedule: Schedule, t_start: float):
    """A fresh draw from the prior ``N(0, prior_std^2 I)`` when ``t_start = T`` (the kernel is
    then an independence sampler); otherwise the current state renoised by the forward
    process, ``alpha(t_start) x + sigma(t_start) eps`` (a renoise-denoise Markov kernel)."""
    noise = jax.random.normal(rng_key, flat.shape, flat.dtype)
    if t_start >= schedule.T:
        return _prior_std(schedule) * noise
    start = levels_on(schedule, t_start, flat.dtype)
    return start.alpha * flat + start.sigma * noise


@lru_cache(maxsize=64)
def _prior_std(schedule: Schedule) -> float:
    # once per schedule: evaluated while tracing, its scalar ops would compile again for
    # every new batch shape
    with jax.ensure_compile_time_eval():
        return schedule.prior_std()


def tweedie_denoise(flat, score, level: Levels):
    """``E[x_0 | x_t] = (x_t + sigma^2 grad log p_t(x_t)) / alpha`` (Tweedie's formula)."""
    return (flat + level.sigma**2 * score) / level.alpha


def snr_step_size(snr, sigma):
    """Song et al. (2021)'s corrector step ``2 (snr ||z|| / ||s||)^2`` at its noise-dominated
    value ``2 snr^2 sigma(t)^2``.

    Song et al. average ``||z||`` and ``||s||`` over the whole batch, so their step is the same
    for every sample. A per-chain kernel has only its own ``||s(x)||``, and a step that depends
    on the position biases Langevin: the stationary law of ``x' = x + h(x) s + sqrt(2 h(x)) z``
    is ``p / h``, here ``p ||s||^2`` (on N(0, I_3) the variance came out 37 % too large). We
    therefore use the batch rule's value with ``||z||^2 = d`` and ``||s||^2 = d / sigma^2``: the
    exact limit when the noise dominates the data, and otherwise the largest ``E||s||^2`` can
    be (``p_t`` is a law convolved with ``N(0, sigma^2 I)``, so ``-Hess log p_t <= I/sigma^2``),
    i.e. the most conservative step the batch rule would choose, which is always stable.
    """
    return 2.0 * snr**2 * sigma**2
