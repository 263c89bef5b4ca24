"""Langevin vs annealed: draw from the same score by reverse diffusion, which starts from
noise, and compare with the user's chains."""

import math

import jax
import jax.numpy as jnp

from robust_score._checks import check_count
from robust_score.diagnostics._data import as_datatree, posterior_draws
from robust_score.diagnostics._shared import (
    compare,
    energy_result,
    flatten_draws,
    kept_points,
    numpy_rng,
    pooled,
    run_quietly,
)
from robust_score.diagnostics.result import ANNEALED, CheckResult, skip_if_missing
from robust_score.diagnostics.thresholds import ENERGY_FAIL

__all__ = ["annealed_cross_check"]

_EXPLANATIONS = {
    "ok": "reverse diffusion with the same score agrees with your chains",
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
    num_samples: int = 500,
    num_steps: int = 200,
    method: str = "sde",
    max_points: int = 500,
) -> CheckResult:
    """Draw from the same (time) score with reverse diffusion, which starts from noise and
    so is robust to a score that is wrong only off the target, and compare with the chains."""
    skipped = skip_if_missing(ANNEALED, time_score_fn, schedule)
    if skipped is not None:
        return skipped
    for value, name in ((num_samples, "num_samples"), (max_points, "max_points")):
        check_count(value, name, minimum=2)
    from robust_score.kernels.reverse_diffusion import as_top_level_api as reverse_diffusion

    draws = posterior_draws(as_datatree(data))
    rng_key, rng = numpy_rng(rng_key)
    rng_key, run_key = jax.random.split(rng_key)
    sampler = reverse_diffusion(time_score_fn, schedule, num_steps, method=method)
    annealed = _one_draw_per_chain(sampler, run_key, draws, num_samples)
    comparison = compare(kept_points(draws), annealed, rng_key, rng, max_points, draws.slices)
    if comparison is None:
        return CheckResult(
            ANNEALED, "warn", math.nan, ENERGY_FAIL, "every reverse-diffusion draw diverged."
        )
    return energy_result(ANNEALED, comparison, _EXPLANATIONS)


def _one_draw_per_chain(sampler, run_key, draws, num_samples: int):
    """``(num_samples, dim)`` draws of a diffusion ``sampler``: ``num_samples`` chains of one
    step each, started at zero (a diffusion sampler starts each step from noise)."""
    template = draws.unravel(jnp.zeros(draws.dim, jnp.result_type(float)))
    starts = jax.tree.map(
        lambda leaf: jnp.zeros((num_samples, *jnp.shape(leaf)), leaf.dtype), template
    )
    return pooled(flatten_draws(run_quietly(sampler, run_key, starts, 1)))
