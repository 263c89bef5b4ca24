"""Langevin vs annealed: draw from the same score by reverse diffusion, which starts from
noise, and compare with the user's chains."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from robust_score._checks import check_count, check_time
from robust_score.diagnostics._data import as_datatree, posterior_draws
from robust_score.diagnostics._shared import (
    compare,
    energy_result,
    flatten_draws,
    numpy_rng,
    pooled,
    run_quietly,
    second_half,
    too_short,
)
from robust_score.diagnostics.result import ANNEALED, CheckResult, skip_if_missing
from robust_score.diagnostics.thresholds import ENERGY_FAIL

__all__ = ["annealed_cross_check", "diffusion_draws"]

_EXPLANATIONS = {
    "ok": "no statistic tells your chains from reverse diffusion with the same score",
    "warn": "reverse diffusion with the same score differs somewhat from your chains",
    "fail": "reverse diffusion with the same score lands elsewhere: Langevin is likely "
    "trapped where the score is wrong",
}


def annealed_cross_check(
    data,
    time_score_fn,
    schedule,
    *,
    rng_key=None,
    score_time: float | None = None,
    num_samples: int = 500,
    num_steps: int = 200,
    method: str = "sde",
    max_points: int = 500,
) -> CheckResult:
    """Draw from the same (time) score with reverse diffusion, which starts from noise and
    so is robust to a score that is wrong only off the target, and compare with the chains.

    ``score_time``: the time of ``schedule`` whose score the chains ran with (a Langevin
    chain with ``time_score_fn(., t)`` targets the noised law ``p_t``). The reverse diffusion
    then stops at ``t`` without denoising, so both sides target the same law; ``None``
    means the chains target the data (``t -> 0``) and the reference is denoised at
    ``t_min``. ``details["compared_at"]`` says which.
    """
    skipped = skip_if_missing(ANNEALED, time_score_fn, schedule)
    if skipped is not None:
        return skipped
    for value, name in ((num_samples, "num_samples"), (max_points, "max_points")):
        check_count(value, name, minimum=2)
    if score_time is not None:
        check_time(schedule, score_time, "score_time")
    draws = posterior_draws(as_datatree(data))
    user = second_half(draws)
    reason = too_short(user.shape[1])
    if reason is not None:
        return CheckResult.skipped(ANNEALED, reason)
    rng_key, rng = numpy_rng(rng_key)
    rng_key, run_key = jax.random.split(rng_key)
    annealed, compared_at = _draws_and_level(
        time_score_fn, schedule, score_time, run_key, draws, num_samples, num_steps, method
    )
    comparison = compare(user, annealed, rng_key, rng, max_points, draws.slices)
    if comparison is None:
        return CheckResult(
            ANNEALED, "warn", math.nan, ENERGY_FAIL, "every reverse-diffusion draw diverged."
        )
    result = energy_result(ANNEALED, comparison, _EXPLANATIONS)
    if result.status == "skipped":
        return result
    return dataclasses.replace(
        result,
        explanation=f"{result.explanation[:-1]} (compared at {compared_at}).",
        details={**result.details, "compared_at": compared_at, "score_time": score_time},
    )


def diffusion_draws(
    time_score_fn,
    schedule,
    score_time,
    rng_key,
    draws,
    num_samples: int,
    num_steps=200,
    method="sde",
):
    """``(num_samples, dim)`` reverse-diffusion draws of ``time_score_fn`` in the flat space
    of ``draws`` (a :class:`Draws`): at the level ``score_time`` without denoising, or
    denoised at ``t_min`` when it is ``None``."""
    return _draws_and_level(
        time_score_fn, schedule, score_time, rng_key, draws, num_samples, num_steps, method
    )[0]


def _draws_and_level(
    time_score_fn, schedule, score_time, rng_key, draws, num_samples, num_steps, method
):
    if score_time is None:
        sampler = _reverse_diffusion(time_score_fn, schedule, num_steps, method, True)
        compared_at = f"the data (denoised at t_min = {schedule.t_min:.3g})"
    else:
        # the grid ends at the user's level, where nothing is denoised
        stop_there = dataclasses.replace(schedule, t_min=float(score_time))
        sampler = _reverse_diffusion(time_score_fn, stop_there, num_steps, method, False)
        sigma = float(schedule.sigma(score_time))
        compared_at = f"the score's level t = {score_time:.3g} (sigma = {sigma:.3g}), not denoised"
    return _one_draw_per_chain(sampler, rng_key, draws, num_samples), compared_at


def _reverse_diffusion(time_score_fn, schedule, num_steps: int, method: str, denoise: bool):
    """The reverse-diffusion sampler, one object per settings and score (so that repeated
    checks of the same score reuse its compiled program)."""
    try:
        return _cached_reverse_diffusion(time_score_fn, schedule, num_steps, method, denoise)
    except TypeError:  # an unhashable score or schedule: build it afresh
        return _build_reverse_diffusion(time_score_fn, schedule, num_steps, method, denoise)


def _build_reverse_diffusion(time_score_fn, schedule, num_steps: int, method: str, denoise):
    from robust_score.kernels.reverse_diffusion import as_top_level_api

    return as_top_level_api(time_score_fn, schedule, num_steps, method=method, denoise=denoise)


_cached_reverse_diffusion = functools.lru_cache(maxsize=8)(_build_reverse_diffusion)


def _one_draw_per_chain(sampler, run_key, draws, num_samples: int):
    """``(num_samples, dim)`` draws of a diffusion ``sampler``: ``num_samples`` chains of one
    step each, started at zero (a diffusion sampler starts each step from noise)."""
    template = draws.unravel(jnp.zeros(draws.dim, jnp.result_type(float)))
    starts = jax.tree.map(
        lambda leaf: jnp.zeros((num_samples, *jnp.shape(leaf)), leaf.dtype), template
    )
    return pooled(flatten_draws(run_quietly(sampler, run_key, starts, 1)))
