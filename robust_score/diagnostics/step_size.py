"""Step-size sensitivity: tell the discretization bias of an unadjusted sampler from a trap.

ULA with the exact score is biased by O(h): on N(0, s^2) its stationary variance is
``s^2 / (1 - h / (2 s^2))``. Such draws differ from independent ones (a reverse-diffusion
cross-check sees it) although nothing is trapped, and the remedy is a smaller step or a
Metropolis correction, not other starts. This check continues the user's chains at ``h``,
``h / 2`` and ``h / 4`` and fits the draws' spread against the step: a first-order bias moves it in
proportion to the step.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robust_score._checks import check_callable, check_count, check_positive_scalar
from robust_score.diagnostics._data import Draws, as_datatree, posterior_draws
from robust_score.diagnostics._shared import flatten_draws, run_quietly
from robust_score.diagnostics.result import STEP_SIZE, CheckResult, skip_if_missing
from robust_score.diagnostics.thresholds import (
    BIAS_Z,
    LINEARITY_CHI2,
    MIN_CHAINS_FOR_STEP_CHECK,
)

__all__ = ["step_size_sensitivity"]

# continued runs keep about this many draws per chain
_DRAWS_PER_RUN = 200


class SpreadEstimate(NamedTuple):
    """The draws' spread, ``mean_j log var_j`` over coordinates, with its standard error
    from the spread between chains (each chain one batch: autocorrelation is accounted for)."""

    value: float
    standard_error: float


def step_size_sensitivity(
    data,
    sampler_at,
    step_size,
    *,
    rng_key=None,
    num_chains: int = 8,
    num_steps: int | None = None,
) -> CheckResult:
    """Continue the run at ``step_size``, ``step_size / 2`` and ``step_size / 4`` and ask
    whether the draws move in proportion to the step: the signature of an unadjusted
    sampler's O(h) bias.

    ``sampler_at(h)`` builds the user's sampler at step ``h`` (e.g.
    ``lambda h: rs.ula(score_fn, h)``); ``step_size`` is the step the run used. ``num_steps``
    (default: the run's own length, at least 200) is multiplied by 2 and 4 at the smaller
    steps, so every run covers the same time span.

    Statuses: ``ok`` when halving the step does not move the spread beyond its Monte-Carlo
    error; ``warn`` when it does (the details say whether the move shrinks like O(h) —
    a discretization bias, remedied by a smaller step or MALA — or not).
    """
    skipped = skip_if_missing(STEP_SIZE, sampler_at, step_size)
    if skipped is not None:
        return skipped
    check_callable(sampler_at, "sampler_at", "sampler_at(step_size)")
    check_positive_scalar(step_size, "step_size")
    check_count(num_chains, "num_chains", minimum=MIN_CHAINS_FOR_STEP_CHECK)
    tree = as_datatree(data)
    draws = posterior_draws(tree)
    if draws.flat.shape[0] < MIN_CHAINS_FOR_STEP_CHECK or draws.flat.shape[1] < 20:
        return CheckResult.skipped(
            STEP_SIZE,
            f"needs at least {MIN_CHAINS_FOR_STEP_CHECK} chains of 20 draws; the run has "
            f"{draws.flat.shape[0]} chains of {draws.flat.shape[1]}.",
        )
    if num_steps is None:
        thin = int(tree["posterior"].attrs.get("thin", 1))
        num_steps = max(_DRAWS_PER_RUN, draws.flat.shape[1] * thin)
    check_count(num_steps, "num_steps")
    rng_key = jax.random.key(0) if rng_key is None else rng_key
    # all three runs, the run's own step included, are continued alike (same time span,
    # kept draws and spacing): the spread estimator's small-sample bias then cancels
    spreads = []
    for factor in (1, 2, 4):
        rng_key, run_key = jax.random.split(rng_key)
        sampler = sampler_at(float(step_size) / factor)
        spreads.append(_spread(_continue(sampler, run_key, draws, num_chains, num_steps * factor)))
    return _verdict(float(step_size), spreads)


def _continue(sampler, run_key, draws: Draws, num_chains: int, num_steps: int) -> np.ndarray:
    """Second halves of ``num_chains`` chains continued from the run's last draws."""
    last = draws.flat[:, -1]
    starts = last[np.arange(num_chains) % len(last)]
    template = jax.tree.leaves(draws.unravel(jnp.zeros(draws.dim)))
    positions = jax.vmap(draws.unravel)(jnp.asarray(starts, jnp.result_type(*template)))
    thin = max(1, num_steps // _DRAWS_PER_RUN)
    chains = flatten_draws(run_quietly(sampler, run_key, positions, num_steps, thin))
    return chains[:, chains.shape[1] // 2 :]


def _spread(chains: np.ndarray) -> SpreadEstimate:
    """:class:`SpreadEstimate` of ``(chain, draw, dim)`` draws (non-finite chains dropped)."""
    finite = chains[np.isfinite(chains).all(axis=(1, 2))]
    if len(finite) < 2:
        return SpreadEstimate(math.nan, math.nan)
    per_chain = np.log(np.maximum(finite.var(axis=1), 1e-300)).mean(axis=-1)
    return SpreadEstimate(
        float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(len(per_chain)))
    )


def _verdict(step_size: float, spreads: list[SpreadEstimate]) -> CheckResult:
    """Fit ``spread = a + b h`` to the three runs (weighted by their standard errors): a
    slope ``b`` beyond ``BIAS_Z`` standard errors means the draws move with the step, and a
    fit within ``LINEARITY_CHI2`` means they move in proportion to it (O(h) bias)."""
    steps = step_size / np.array([1.0, 2.0, 4.0])
    values = np.array([s.value for s in spreads])
    errors = np.array([s.standard_error for s in spreads])
    details = {
        "step_size": step_size,
        "log_spread": values.tolist(),
        "standard_errors": errors.tolist(),
    }
    if not (np.isfinite(values).all() and np.isfinite(errors).all() and (errors > 0).all()):
        return CheckResult(
            STEP_SIZE, "warn", math.nan, BIAS_Z, "the continued runs diverged.", details
        )
    weights = 1.0 / errors**2
    mean_step = np.sum(weights * steps) / weights.sum()
    spread_of_steps = np.sum(weights * (steps - mean_step) ** 2)
    slope = np.sum(weights * (steps - mean_step) * values) / spread_of_steps
    intercept = np.sum(weights * (values - slope * steps)) / weights.sum()
    z = abs(slope) * math.sqrt(spread_of_steps)
    chi2 = float(np.sum(weights * (values - intercept - slope * steps) ** 2))
    # with spread(h) = spread(0) + b h, the run's own bias is b h (Richardson extrapolation)
    details.update(
        slope=float(slope), z=z, linearity_chi2=chi2, extrapolated_bias=float(slope * step_size)
    )
    if z < BIAS_Z:
        details["bias"] = False
        explanation = "halving the step does not move your draws beyond Monte-Carlo error"
        return CheckResult(STEP_SIZE, "ok", z, BIAS_Z, explanation + ".", details)
    details["bias"] = chi2 <= LINEARITY_CHI2
    percent = 100 * (math.exp(details["extrapolated_bias"]) - 1)
    if details["bias"]:
        explanation = (
            f"discretization bias: your draws' variance is about {percent:+.0f} % off, a "
            "gap that shrinks in proportion to the step (O(h)); reduce the step size or use "
            "a Metropolis-adjusted sampler (MALA). This is not a trap"
        )
    else:
        explanation = (
            "halving the step moves your draws, but not in proportion to the step "
            f"(linearity chi-square {chi2:.1f}): not a plain discretization bias; the runs "
            "may not have converged"
        )
    return CheckResult(STEP_SIZE, "warn", z, BIAS_Z, explanation + ".", details)
