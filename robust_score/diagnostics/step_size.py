"""Step-size sensitivity: tell the discretization bias of an unadjusted sampler from a trap.

ULA with the exact score is biased by O(h): on N(0, s^2) its stationary variance is
``s^2 / (1 - h / (2 s^2))``. Such draws differ from independent ones (a reverse-diffusion
cross-check sees it) although nothing is trapped, and the remedy is a smaller step or a
Metropolis correction, not other starts. This check continues the user's chains at ``h``,
``h / 2`` and ``h / 4`` and fits the draws' spread against the step: a first-order bias moves it in
proportion to the step.
"""

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from robust_score.diagnostics.comparison import Comparison, compare
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.explain import describe
from robust_score.diagnostics.grading import Grade, grade
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.result import STEP_SIZE, CheckResult
from robust_score.diagnostics.runners import flatten_draws, run_quietly
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import numpy_rng

__all__ = ["DoubledStepsDetails", "StepSizeDetails", "check_step_size"]

# continued runs keep about this many draws per chain
_DRAWS_PER_RUN = 200
_MIN_CHAINS = 4


class SpreadEstimate(NamedTuple):
    """The draws' spread, ``mean_j log var_j`` over coordinates, with its standard error
    from the spread between chains (each chain one batch: autocorrelation is accounted for)."""

    value: float
    standard_error: float


class StepSizeDetails(NamedTuple):
    """The spread at ``h``, ``h/2`` and ``h/4``, the fitted slope against the step, its
    z-score and linearity chi-square, and the run's own bias by extrapolation (in log
    variance); ``bias``: the move is an O(h) discretization bias."""

    step_size: float
    spreads: tuple
    slope: float = math.nan
    z: float = math.nan
    linearity_chi2: float = math.nan
    extrapolated_bias: float = math.nan
    bias: bool = False


class DoubledStepsDetails(NamedTuple):
    """Independent draws against as many drawn by the same settings at twice the steps."""

    num_steps: int
    comparison: Comparison
    grade: Grade


def check_step_size(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    if draws.independent:
        return _doubled_steps(draws, inputs, settings, rng_key)
    if draws.num_chains < _MIN_CHAINS or draws.flat.shape[1] < 20:
        return CheckResult(
            STEP_SIZE,
            "unconverged",
            draws.flat.shape[1],
            20,
            f"needs at least {_MIN_CHAINS} chains of 20 draws; the run has "
            f"{draws.num_chains} chains of {draws.flat.shape[1]}.",
            finding="too few draws",
        )
    num_steps = max(_DRAWS_PER_RUN, draws.flat.shape[1] * draws.thin)
    rng_key = jax.random.key(0) if rng_key is None else rng_key
    # all three runs, the run's own step included, are continued alike (same time span,
    # kept draws and spacing): the spread estimator's small-sample bias then cancels
    spreads = []
    for factor in (1, 2, 4):
        rng_key, run_key = jax.random.split(rng_key)
        sampler = inputs.sampler_at(float(inputs.step_size) / factor)
        chains = _continue(sampler, run_key, draws, settings.step_chains, num_steps * factor)
        spreads.append(_spread(chains))
    return _verdict(float(inputs.step_size), spreads, settings)


def _doubled_steps(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    """Independent draws against as many from the same settings at twice the steps: a
    sampler that has converged in its number of steps draws the same law at twice them."""
    from robust_score.batch import sample_batch

    path = inputs.path
    doubled = dataclasses.replace(path, num_steps=2 * path.num_steps)
    rng_key, rng = numpy_rng(rng_key)
    draw_key, compare_key = jax.random.split(rng_key)
    template = draws.unravel(jnp.zeros(draws.dim))
    if not isinstance(template, jax.Array):
        return CheckResult.skipped(
            STEP_SIZE,
            "the check at twice the steps draws with rs.sample_batch, which takes arrays: "
            "pass the draws as one array (num_draws, ...), not a pytree.",
        )
    finer = sample_batch(
        draw_key,
        inputs.time_score_fn,
        doubled,
        draws.num_chains,
        jnp.shape(template),
        dtype=jnp.result_type(template),
    )
    finer = np.asarray(finer, np.float64).reshape(draws.num_chains, -1)
    comparison = compare(draws.kept, finer, compare_key, rng, settings)
    measured = grade(comparison, settings)
    details = DoubledStepsDetails(doubled.num_steps, comparison, measured)
    numbers = describe(measured, comparison, settings)
    if measured.status in ("ok", "unconverged"):
        explanation = (
            f"draws at twice the steps ({doubled.num_steps}) follow the same law ({numbers})"
        )
        return CheckResult(
            STEP_SIZE, "ok", measured.effect, measured.threshold, explanation + ".", details
        )
    explanation = (
        f"draws at twice the steps ({doubled.num_steps}) differ from yours ({numbers}): your "
        "sampler has not converged in its number of steps; use more steps or another method"
    )
    return CheckResult(
        STEP_SIZE,
        "warn",
        measured.effect,
        measured.threshold,
        explanation + ".",
        details,
        "discretization",
    )


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


def _verdict(step_size: float, spreads: list[SpreadEstimate], settings: Settings) -> CheckResult:
    """Fit ``spread = a + b h`` to the three runs (weighted by their standard errors): a
    slope beyond ``bias_z`` standard errors means the draws move with the step, and a fit
    within ``linearity_chi2`` means they move in proportion to it (O(h) bias)."""
    steps = step_size / np.array([1.0, 2.0, 4.0])
    values = np.array([s.value for s in spreads])
    errors = np.array([s.standard_error for s in spreads])
    details = StepSizeDetails(step_size, tuple(spreads))
    if not (np.isfinite(values).all() and np.isfinite(errors).all() and (errors > 0).all()):
        return CheckResult(
            STEP_SIZE,
            "warn",
            math.nan,
            settings.bias_z,
            "the continued runs diverged.",
            details,
            "inconclusive",
        )
    weights = 1.0 / errors**2
    mean_step = np.sum(weights * steps) / weights.sum()
    spread_of_steps = np.sum(weights * (steps - mean_step) ** 2)
    slope = np.sum(weights * (steps - mean_step) * values) / spread_of_steps
    intercept = np.sum(weights * (values - slope * steps)) / weights.sum()
    z = float(abs(slope) * math.sqrt(spread_of_steps))
    chi2 = float(np.sum(weights * (values - intercept - slope * steps) ** 2))
    # with spread(h) = spread(0) + b h, the run's own bias is b h (Richardson extrapolation)
    details = details._replace(
        slope=float(slope), z=z, linearity_chi2=chi2, extrapolated_bias=float(slope * step_size)
    )
    if z < settings.bias_z:
        explanation = "halving the step does not move your draws beyond Monte-Carlo error"
        return CheckResult(STEP_SIZE, "ok", z, settings.bias_z, explanation + ".", details)
    details = details._replace(bias=chi2 <= settings.linearity_chi2)
    percent = 100 * (math.exp(details.extrapolated_bias) - 1)
    if details.bias:
        explanation = (
            f"discretization bias: your draws' variance is about {percent:+.0f} % off, a "
            "gap that shrinks in proportion to the step (O(h)); reduce the step size or use "
            "a Metropolis-adjusted sampler (MALA). This is not a trap"
        )
        finding = "discretization"
    else:
        explanation = (
            "halving the step moves your draws, but not in proportion to the step "
            f"(linearity chi-square {chi2:.1f}): not a plain discretization bias; the runs "
            "may not have converged"
        )
        finding = "inconclusive"
    return CheckResult(STEP_SIZE, "warn", z, settings.bias_z, explanation + ".", details, finding)
