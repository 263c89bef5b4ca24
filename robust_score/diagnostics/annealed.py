"""Langevin vs annealed: draw from the same score by reverse diffusion, which starts from
noise, and compare with the user's chains."""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from robust_score.diagnostics.comparison import compare
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.explain import LABELS, describe
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.reference import SampleDetails, judge_against
from robust_score.diagnostics.restart_groups import DRAWS_PER_RESTART
from robust_score.diagnostics.result import ANNEALED, CheckResult
from robust_score.diagnostics.runners import flatten_draws, run_quietly
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import numpy_rng

__all__ = ["AnnealedDetails", "check_annealed", "diffusion_draws"]


class AnnealedDetails(NamedTuple):
    """The comparison with reverse diffusion, where it was made, and, when held-out data
    were compared with both sides, the deciding statistic's effect for each."""

    sample: SampleDetails | None
    compared_at: str
    score_time: float | None
    holdout_effects: dict | None = None  # {"chains": effect, "reverse diffusion": effect}


def check_annealed(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    rng_key, rng = numpy_rng(rng_key)
    run_key, compare_key, side_key = jax.random.split(rng_key, 3)
    if inputs.reference_path is not None:
        return _check_against_path(draws, inputs, settings, run_key, compare_key, rng)
    annealed, compared_at = _draws_and_level(
        inputs.time_score_fn,
        inputs.schedule,
        inputs.score_time,
        run_key,
        draws,
        settings.annealed_draws,
        settings.annealed_steps,
        "sde",
    )
    result = judge_against(
        ANNEALED,
        draws,
        annealed,
        compare_key,
        rng,
        settings,
        "reverse diffusion with the same score",
    )
    details = AnnealedDetails(result.details, compared_at, inputs.score_time)
    result = dataclasses.replace(
        result,
        explanation=f"{result.explanation[:-1]} (compared at {compared_at}).",
        details=details,
    )
    if inputs.holdout is None or not result.flagged or result.details.sample is None:
        return result
    return _side_with_holdout(result, draws.kept, annealed, inputs, side_key, rng, settings)


def _check_against_path(draws: Draws, inputs: Inputs, settings: Settings, run_key, key, rng):
    """A ``ScorePrior`` model's run against its annealed posterior (``inputs.reference_path``
    on the posterior time score): the user's kernel, when there is one, is restarted from
    those draws and run as long as a restart group, so that its own step bias cancels and
    only where the chains settle is compared. Annealing puts the starts where the
    posterior has mass, never in a trap of the score, which has none."""
    path = inputs.reference_path
    sampler = path.sampling_algorithm(inputs.time_score_fn)
    label = (
        f"annealed Langevin on the prior's time score and the likelihood "
        f"({path.num_levels} levels x {path.steps_per_level} moves)"
    )
    if inputs.runner is None:
        annealed = _one_draw_per_chain(sampler, run_key, draws, settings.annealed_draws)
    else:
        start_key, run_key = jax.random.split(run_key)
        starts = _one_draw_per_chain(sampler, start_key, draws, settings.restart_chains)
        num_steps = settings.restart_steps or max(
            DRAWS_PER_RESTART, draws.flat.shape[1] * draws.thin
        )
        annealed = inputs.runner.run(run_key, starts, num_steps, draws.thin)
        label = f"your sampler restarted from draws of {label}"
    result = judge_against(ANNEALED, draws, annealed, key, rng, settings, label)
    compared_at = "the data level"
    details = AnnealedDetails(result.details, compared_at, None)
    return dataclasses.replace(
        result,
        explanation=f"{result.explanation[:-1]} (compared at {compared_at}).",
        details=details,
    )


def _side_with_holdout(result, user, annealed, inputs: Inputs, rng_key, rng, settings):
    """Compare the chains and the reverse-diffusion draws each with the held-out data at
    the chains' level, on the statistic that separated them: the side nearer by more than
    ``holdout_side_margin`` is the right one; a fail stands only when that is reverse
    diffusion."""
    holdout, level = inputs.holdout, inputs.score_time
    if level is not None:  # held-out data at the level: alpha x + sigma eps
        alpha, sigma = float(inputs.schedule.alpha(level)), float(inputs.schedule.sigma(level))
        holdout = alpha * holdout + sigma * rng.standard_normal(holdout.shape)
    sample = result.details.sample
    statistic = sample.grade.decided_by
    # independent draws as chains of min_kept_draws, so the comparison reads them as such
    per_chain = settings.min_kept_draws
    usable = len(annealed) - len(annealed) % per_chain
    annealed_chains = annealed[:usable].reshape(-1, per_chain, annealed.shape[-1])
    effects = {}
    for side, chains, key in zip(
        ("chains", "reverse diffusion"),
        (user, annealed_chains),
        jax.random.split(rng_key),
        strict=True,
    ):
        comparison = compare(chains, holdout, key, rng, settings)
        if comparison is None:
            return result  # nothing finite to compare: no side taken
        effects[side] = float(comparison.statistics[statistic].effect)
    details = result.details._replace(holdout_effects=effects)
    numbers = (
        f"{LABELS[statistic]} to held-out data {effects['chains']:.2g} for your chains, "
        f"{effects['reverse diffusion']:.2g} for reverse diffusion"
    )
    disagreement = (
        "reverse diffusion with the same score lands elsewhere "
        f"({describe(sample.grade, sample.comparison, settings)}; compared at "
        f"{result.details.compared_at})"
    )
    margin = settings.holdout_side_margin
    if effects["chains"] > margin * effects["reverse diffusion"]:
        explanation = (
            f"{disagreement}, and held-out data side with reverse diffusion ({numbers}): "
            "Langevin is likely trapped where the score is wrong."
        )
        return dataclasses.replace(result, explanation=explanation, details=details)
    if margin * effects["chains"] < effects["reverse diffusion"]:
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
    return dataclasses.replace(
        result, status="warn", finding="inconclusive", explanation=explanation, details=details
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
    draws = flatten_draws(run_quietly(sampler, run_key, starts, 1))
    return draws.reshape(-1, draws.shape[-1])
