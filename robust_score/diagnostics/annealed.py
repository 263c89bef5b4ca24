"""Langevin vs annealed: draw from the same score by reverse diffusion, which starts from
noise, and compare with the user's chains."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from robust_score._checks import check_count, check_time
from robust_score.diagnostics._data import as_datatree, as_sample_matrix, posterior_draws
from robust_score.diagnostics._shared import (
    check_dim,
    compare,
    describe,
    energy_result,
    flatten_draws,
    numpy_rng,
    pooled,
    run_quietly,
    second_half,
    statistic_label,
    too_short,
)
from robust_score.diagnostics.result import ANNEALED, CheckResult, skip_if_missing
from robust_score.diagnostics.thresholds import ENERGY_FAIL, HOLDOUT_SIDE_MARGIN, MIN_KEPT_DRAWS

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
    holdout=None,
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

    ``holdout`` (draws of the data the score was learned from, not used to train it): when
    the two samples differ, both are compared with the holdout, noised to the same level,
    to say which side it takes. With a learned score the reference can be the wrong one:
    reverse diffusion passes through every noise level, where the network may be worse than
    at the chains' level. When the holdout sides with the chains, the result is a ``warn``
    that says so, not a ``fail``.
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
    result = dataclasses.replace(
        result,
        explanation=f"{result.explanation[:-1]} (compared at {compared_at}).",
        details={**result.details, "compared_at": compared_at, "score_time": score_time},
    )
    if holdout is None or result.status not in ("warn", "fail"):
        return result
    held = check_dim(as_sample_matrix(holdout, "holdout"), draws.dim, "holdout")
    return _side_with_holdout(result, user, annealed, held, schedule, score_time, rng_key, rng)


def _side_with_holdout(result, user, annealed, holdout, schedule, score_time, rng_key, rng):
    """Compare the chains and the reverse-diffusion draws each with the held-out data at
    the chains' level, on the statistic that separated them: the side nearer by more than
    ``HOLDOUT_SIDE_MARGIN`` is the right one; a fail stands only when that is reverse
    diffusion."""
    if score_time is not None:  # held-out data at the level: alpha x + sigma eps
        alpha, sigma = float(schedule.alpha(score_time)), float(schedule.sigma(score_time))
        holdout = alpha * holdout + sigma * rng.standard_normal(holdout.shape)
    statistic = result.details["decided_by"]
    # independent draws as chains of MIN_KEPT_DRAWS, so the comparison reads them as such
    usable = len(annealed) - len(annealed) % MIN_KEPT_DRAWS
    annealed_chains = annealed[:usable].reshape(-1, MIN_KEPT_DRAWS, annealed.shape[-1])
    user_key, annealed_key = jax.random.split(rng_key)
    effects = {}
    for side, sample, key in (
        ("chains", user, user_key),
        ("reverse diffusion", annealed_chains, annealed_key),
    ):
        comparison = compare(sample, holdout, key, rng, 500)
        if comparison is None or "statistics" not in comparison:
            return result  # nothing finite or too short to compare: no side taken
        effects[side] = float(comparison["statistics"][statistic]["effect"])
    details = {**result.details, "holdout_effects": effects}
    label = statistic_label(statistic)
    numbers = (
        f"{label} to held-out data {effects['chains']:.2g} for your chains, "
        f"{effects['reverse diffusion']:.2g} for reverse diffusion"
    )
    disagreement = (
        f"reverse diffusion with the same score lands elsewhere ({describe(result.details)}; "
        f"compared at {result.details['compared_at']})"
    )
    if effects["chains"] > HOLDOUT_SIDE_MARGIN * effects["reverse diffusion"]:
        explanation = (
            f"{disagreement}, and held-out data side with reverse diffusion ({numbers}): "
            "Langevin is likely trapped where the score is wrong."
        )
        return dataclasses.replace(result, explanation=explanation, details=details)
    if HOLDOUT_SIDE_MARGIN * effects["chains"] < effects["reverse diffusion"]:
        verdict = (
            "held-out data side with your chains: the score is worse at the noise levels "
            "reverse diffusion passes through than where your chains go, which is no trap"
        )
    else:
        verdict = (
            "held-out data differ from both about as much: the score is off on both paths, "
            "which is no evidence of a trap"
        )
    explanation = f"{disagreement}, but {verdict} ({numbers})."
    return dataclasses.replace(result, status="warn", explanation=explanation, details=details)


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
