"""Memorization: do the draws sit on training points, and why?

Three measurements, all nearest-training-point distances (exact, :func:`nearest_distances`):

- **on training points**: the user's draws against a baseline (``holdout`` draws of the target,
  else leave-one-out train-to-train distances): the excess fraction of draws much closer to
  one training point than to any other (NN1/NN2 < 1/3);
- **held by training points** (the paper's Thm 7 wells): chains started at training points
  against chains started elsewhere: how far each kind ends from the training set, and how
  far each drifted from its start. When every user chain started at a training point, the
  user's sampler is run again from fresh starts (``holdout`` rows, else reverse-diffusion
  draws of ``time_score_fn``) for as many steps, so the contrast is measured, not assumed;
- **pulled towards the training set** (a memorizing score): the fresh-start chains' median
  distance against the baseline's. When fresh starts end as near the training set as the
  training starts do, and nearer than held-out data are, it is the score that pulls every
  sampler there, not the start.

:func:`memorization_verdict` turns the three into one result that names which of them holds.
"""

import math
from typing import NamedTuple

import jax
import numpy as np

from robust_score.diagnostics.annealed import diffusion_draws
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.grading import grade_above, grade_below
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.result import MEMORIZATION, CheckResult, worst_status
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import nearest_distances, numpy_rng, subsample

__all__ = [
    "MemorizationDetails",
    "Nearest",
    "StartContrast",
    "check_memorization",
    "on_training_points",
]

# a start within this distance of a training point, relative to its norm, is that point
# stored at another precision (float32 rounding is 6e-8 relative)
_SAME_POINT_RTOL = 1e-6


class Nearest(NamedTuple):
    """Nearest-training-point statistics of the draws against a baseline (held-out draws,
    else leave-one-out train-to-train); distances are medians over sqrt(d)."""

    fraction_on_points: float  # draws with NN1/NN2 < 1/3
    baseline_fraction: float
    median_distance: float
    baseline_median_distance: float
    distance_ratio: float
    baseline: str  # "holdout" or "train-to-train (leave one out)"
    excess_p_value: float  # one-sided, of the fraction on points exceeding the baseline's


class StartContrast(NamedTuple):
    """Chains started at training points against chains started elsewhere (the run's own,
    or the sampler run again from ``fresh_source``); ``nan`` where a kind is missing."""

    train_starts: int
    fresh_source: str | None
    fresh_distance_ratio: float  # fresh starts' distance to the training set over the baseline's
    held_ratio: float  # training starts' distance over fresh starts'
    drift_ratio: float  # training starts' drift over fresh starts'


class MemorizationDetails(NamedTuple):
    """The statistics and each of the three verdicts (``None`` where it does not apply):
    ``on_points`` (draws on training points), ``held`` (held there by their starts),
    ``pulled`` (the score pulls every sampler there)."""

    nearest: Nearest
    contrast: StartContrast | None
    on_points: str
    held: str | None
    pulled: str | None


def check_memorization(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    train = inputs.train_data
    distinct = len(np.unique(train, axis=0))
    if distinct < 2:
        # nearest-neighbor ratios and the baseline are undefined on one repeated point
        raise ValueError(
            f"`train_data` needs at least 2 distinct points, got {len(train)} point(s) of "
            f"which {distinct} distinct."
        )
    rng_key, rng = numpy_rng(rng_key)
    nearest = _nearest(draws.points, train, inputs.holdout, rng, settings.memorization_points)
    contrast = None
    if inputs.starts is not None and not draws.independent:
        if len(inputs.starts) != draws.num_chains:
            raise ValueError(
                f"`starts` has {len(inputs.starts)} rows but the draws have "
                f"{draws.num_chains} chains."
            )
        contrast = _start_contrast(rng_key, draws, inputs, nearest)
    return memorization_verdict(nearest, contrast, settings)


def on_training_points(points, train) -> np.ndarray:
    """Which rows of ``points`` are training points (exactly, up to a change of precision)."""
    distance = nearest_distances(points, train, k=1)[:, 0]
    return distance <= _SAME_POINT_RTOL * (1 + np.linalg.norm(points, axis=-1))


def _below_third(distances) -> float:
    """The fraction of rows with NN1/NN2 < 1/3 (a point on one training point)."""
    return float(np.mean(distances[:, 0] / np.maximum(distances[:, 1], 1e-300) < 1 / 3))


def _nearest(points, train, holdout, rng, max_points: int) -> Nearest:
    near = nearest_distances(subsample(points, max_points, rng), train, k=2)
    if holdout is not None:
        baseline = nearest_distances(subsample(holdout, max_points, rng), train, k=2)
        name = "holdout"
    else:
        rows = subsample(np.arange(len(train)), max_points, rng)
        baseline = nearest_distances(train[rows], train, k=2, exclude=rows)
        name = "train-to-train (leave one out)"
    median, baseline_median = np.median(near[:, 0]), np.median(baseline[:, 0])
    sqrt_d = math.sqrt(train.shape[1])
    fraction, baseline_fraction = _below_third(near), _below_third(baseline)
    return Nearest(
        fraction,
        baseline_fraction,
        float(median / sqrt_d),
        float(baseline_median / sqrt_d),
        float(median / max(baseline_median, 1e-300)),
        name,
        _excess_p_value(fraction, len(near), baseline_fraction, len(baseline)),
    )


def _excess_p_value(fraction, num, baseline_fraction, num_baseline) -> float:
    """One-sided p-value of ``fraction`` of ``num`` draws exceeding ``baseline_fraction`` of
    ``num_baseline`` (two-proportion z-test; draws counted as independent)."""
    pooled = (fraction * num + baseline_fraction * num_baseline) / (num + num_baseline)
    error = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / num + 1 / num_baseline))
    return 0.5 * math.erfc((fraction - baseline_fraction) / error / math.sqrt(2))


def _fresh_chains(rng_key, draws: Draws, inputs: Inputs, num_chains: int):
    """``(chains, starts, source)``: the user's sampler run again from ``num_chains`` fresh
    starts for as many steps as the user's run: ``holdout`` rows when given, else
    reverse-diffusion draws of the time score; ``None`` without a sampler or fresh starts."""
    if inputs.runner is None:
        return None
    start_key, run_key = jax.random.split(rng_key)
    if inputs.holdout is not None:
        rows = np.resize(np.arange(len(inputs.holdout)), num_chains)  # each once, cycled
        starts, source = inputs.holdout[rows], f"{num_chains} held-out points"
    elif inputs.has("time_score_fn", "schedule"):
        starts = diffusion_draws(
            inputs.time_score_fn, inputs.schedule, inputs.score_time, start_key, draws, num_chains
        )
        source = f"{num_chains} reverse-diffusion draws"
    else:
        return None
    num_steps = draws.flat.shape[1] * draws.thin
    chains = inputs.runner.run(run_key, np.asarray(starts), num_steps, draws.thin)
    return np.asarray(chains), np.asarray(starts), f"{source}, {num_steps} steps of your sampler"


def _start_contrast(rng_key, draws: Draws, inputs: Inputs, nearest: Nearest) -> StartContrast:
    """Training-start chains against fresh-start chains: each kind's median distance from
    the training set over its second halves, and its drift from its start."""
    train, chains, starts = inputs.train_data, draws.flat, inputs.starts
    from_train = on_training_points(starts, train)
    fresh = None
    if from_train.all():
        fresh = _fresh_chains(rng_key, draws, inputs, len(starts))
    if fresh is None:
        fresh_chains, fresh_starts, source = chains[~from_train], starts[~from_train], None
    else:
        fresh_chains, fresh_starts, source = fresh
    held_chains, held_starts = chains[from_train], starts[from_train]

    def distance(kind):
        kept = kind[:, kind.shape[1] // 2 :].reshape(-1, kind.shape[-1])
        return float(np.median(nearest_distances(kept, train, k=1)))

    def drift(kind, kind_starts):
        return float(np.mean(np.linalg.norm(kind[:, -1] - kind_starts, axis=-1)))

    baseline = nearest.baseline_median_distance * math.sqrt(train.shape[1])
    nan = math.nan
    fresh_ratio = distance(fresh_chains) / max(baseline, 1e-300) if len(fresh_chains) else nan
    held, drift_ratio = nan, nan
    if len(fresh_chains) and len(held_chains):
        held = distance(held_chains) / max(distance(fresh_chains), 1e-300)
        drift_ratio = drift(held_chains, held_starts) / max(
            drift(fresh_chains, fresh_starts), 1e-300
        )
    return StartContrast(int(from_train.sum()), source, fresh_ratio, held, drift_ratio)


class _Row(NamedTuple):
    status: str
    statistic: float
    threshold: float
    sentence: str


def memorization_verdict(nearest: Nearest, contrast, settings: Settings) -> CheckResult:
    """The result: the worst of three verdicts, each named with its statistic and remedy."""
    excess = nearest.fraction_on_points - nearest.baseline_fraction
    # an excess within the two fractions' sampling error is no evidence, however large
    significant = nearest.excess_p_value < settings.p_fail
    on_points = _Row(
        grade_above(excess, settings.memorization_fail, settings.memorization_warn)
        if significant
        else "ok",
        excess,
        settings.memorization_fail,
        f"{nearest.fraction_on_points:.0%} of draws sit on a training point (NN1/NN2 < 1/3; "
        f"baseline {nearest.baseline_fraction:.0%})",
    )
    held = _held_row(contrast, settings)
    pulled, is_pull = _pulled_row(nearest, contrast, settings)
    rows = [row for row in (on_points, held, pulled) if row is not None]
    details = MemorizationDetails(
        nearest,
        contrast,
        on_points.status,
        None if held is None else held.status,
        pulled.status if is_pull else None,
    )
    status = worst_status(row.status for row in rows)
    if status == "ok":
        explanation = "draws are no closer to training points than fresh draws of the target are."
        return CheckResult(
            MEMORIZATION, "ok", excess, settings.memorization_fail, explanation, details
        )
    flagged = [row for row in rows if row.status == status]
    explanation = "; ".join(row.sentence for row in flagged) + "."
    return CheckResult(
        MEMORIZATION,
        status,
        flagged[0].statistic,
        flagged[0].threshold,
        explanation,
        details,
        "memorizing",
    )


def _held_row(contrast, settings: Settings):
    """Held by training points: graded on where chains end, not on how far they drift
    (under a score that pulls every chain to the training set, training starts drift less
    only because they start where fresh starts are pulled to)."""
    if contrast is None or not math.isfinite(contrast.held_ratio):
        return None
    ratio = contrast.held_ratio
    fail, warn = settings.memorization_distance_fail, settings.memorization_distance_warn
    return _Row(
        grade_below(ratio, fail, warn),
        ratio,
        fail,
        f"held by training points: chains started at training points end {ratio:.2f}x as "
        f"far from the training set as fresh starts do (and drift {contrast.drift_ratio:.2f}x "
        "as far). Start chains from fresh samples not used for training (held-out data or "
        "diffusion draws)",
    )


def _pulled_row(nearest: Nearest, contrast, settings: Settings) -> tuple[_Row, bool]:
    """Pulled towards the training set, read on fresh starts when there are any: on
    training starts alone it cannot be told from being held (then the row says only how
    near the draws end, and the flag is ``False``)."""
    fail, warn = settings.memorization_distance_fail, settings.memorization_distance_warn
    fresh = contrast is not None and math.isfinite(contrast.fresh_distance_ratio)
    is_pull = fresh or contrast is None or not contrast.train_starts
    if is_pull:
        ratio = contrast.fresh_distance_ratio if fresh else nearest.distance_ratio
        who = "fresh-start chains" if fresh else "the draws"
        sentence = (
            f"the score pulls every sampler towards the training set: {who} end {ratio:.2f}x "
            f"as far from it as {nearest.baseline} points are. The score has memorized its "
            "training data and any sampler with it reproduces them: train on more data, with "
            "a smaller network or fewer steps, and compare its DSM loss on held-out data"
        )
    else:  # training starts only, nothing to contrast them with
        ratio = nearest.distance_ratio
        sentence = (
            f"the draws end {ratio:.2f}x as far from the training set as {nearest.baseline} "
            "points are, and every chain started at a training point: give `sampler=` (and "
            "`holdout=`) to tell whether the starts or the score hold them there"
        )
    return _Row(grade_below(ratio, fail, warn), ratio, fail, sentence), is_pull
