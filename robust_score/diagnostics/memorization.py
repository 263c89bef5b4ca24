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

from robust_score._checks import check_count
from robust_score.diagnostics._data import as_datatree, as_sample_matrix, posterior_draws
from robust_score.diagnostics._shared import check_dim, numpy_rng, pooled
from robust_score.diagnostics.annealed import diffusion_draws
from robust_score.diagnostics.result import (
    MEMORIZATION,
    CheckResult,
    skip_if_missing,
    worst_status,
)
from robust_score.diagnostics.runners import as_runner
from robust_score.diagnostics.statistics import nearest_distances, subsample
from robust_score.diagnostics.thresholds import (
    MEMO_DISTANCE_FAIL,
    MEMO_DISTANCE_WARN,
    MEMO_FAIL,
    MEMO_HELD_FAIL,
    MEMO_HELD_WARN,
    MEMO_WARN,
)

__all__ = [
    "fresh_start_chains",
    "memorization_report",
    "memorization_verdict",
    "nearest_neighbor_statistics",
    "on_training_points",
    "start_contrast",
]

# a start within this distance of a training point, relative to its norm, is that point
# stored at another precision (float32 rounding is 6e-8 relative)
_SAME_POINT_RTOL = 1e-6


def memorization_report(
    samples,
    train_data,
    holdout=None,
    starts=None,
    *,
    sampler=None,
    time_score_fn=None,
    schedule=None,
    score_time=None,
    num_steps: int | None = None,
    model_args=None,
    model_kwargs=None,
    max_points: int = 2000,
    rng_key=None,
) -> CheckResult:
    """Do the draws sit on training points, and is it the start or the score?

    Compares each draw's nearest-training-point distance NN1 with a baseline (``holdout``
    draws of the target when given, else leave-one-out train-to-train distances), and the
    fraction of draws with NN1/NN2 < 1/3 (a draw much closer to one training point than to
    any other) with the baseline's fraction, which is not zero in low dimension.

    With ``starts`` (one initial position per chain) and chain-structured ``samples``, it
    contrasts chains started at training points with chains started elsewhere: the user's
    own when the run has both, else, when every chain started at a training point and
    ``sampler`` is given (as for ``trap_report``), the sampler run again for ``num_steps``
    (default: as many as the run kept) from ``holdout`` rows or, without them, from
    reverse-diffusion draws of ``time_score_fn`` under ``schedule`` (at ``score_time`` when
    the chains' score is at a noise level). ``model_args``/``model_kwargs`` as for
    ``trap_report``.
    """
    skipped = skip_if_missing(MEMORIZATION, train_data)
    if skipped is not None:
        return skipped
    check_count(max_points, "max_points")
    if num_steps is not None:
        check_count(num_steps, "num_steps")
    train = as_sample_matrix(train_data, "train_data")
    chains, points = _sample_points(samples)
    check_dim(points, train.shape[1], "samples", other="train_data")
    distinct = len(np.unique(train, axis=0))
    if distinct < 2:
        # nearest-neighbor ratios and the baseline are undefined on one repeated point
        raise ValueError(
            f"`train_data` needs at least 2 distinct points, got {len(train)} point(s) of "
            f"which {distinct} distinct."
        )
    rng_key, rng = numpy_rng(rng_key)
    baseline = (
        None
        if holdout is None
        else check_dim(as_sample_matrix(holdout, "holdout"), train.shape[1], "holdout")
    )
    details = nearest_neighbor_statistics(points, train, baseline, rng, max_points)
    if starts is not None and chains is not None:
        start_points = check_dim(as_sample_matrix(starts, "starts"), train.shape[1], "starts")
        if len(start_points) != chains.shape[0]:
            raise ValueError(
                f"`starts` has {len(start_points)} rows but the samples have "
                f"{chains.shape[0]} chains."
            )
        from_train = on_training_points(start_points, train)
        details["train_starts"] = int(from_train.sum())
        fresh = None
        if from_train.all() and sampler is not None:
            fresh = fresh_start_chains(
                rng_key,
                samples,
                chains,
                sampler,
                len(start_points),
                baseline,
                time_score_fn=time_score_fn,
                schedule=schedule,
                score_time=score_time,
                num_steps=num_steps,
                model_args=model_args,
                model_kwargs=model_kwargs,
            )
            details["fresh_starts"] = None if fresh is None else fresh.source
        start_contrast(chains, start_points, from_train, fresh, train, details)
    return memorization_verdict(details)


def on_training_points(points, train) -> np.ndarray:
    """Which rows of ``points`` are training points (exactly, up to a change of precision)."""
    distance = nearest_distances(points, train, k=1)[:, 0]
    return distance <= _SAME_POINT_RTOL * (1 + np.linalg.norm(points, axis=-1))


def _sample_points(samples):
    """``(chains or None, (n, dim) points)``: a run's kept draws (second halves, chains
    pooled) with its ``(chain, draw, dim)`` draws, or plain points without chains."""
    if hasattr(samples, "children") or type(samples).__name__ == "MCMC":
        chains = posterior_draws(as_datatree(samples)).flat
        return chains, pooled(_second_halves(chains))
    return None, as_sample_matrix(samples, "samples")


def _second_halves(chains: np.ndarray) -> np.ndarray:
    return chains[:, chains.shape[1] // 2 :]


def _below_third(distances) -> float:
    """The fraction of rows with NN1/NN2 < 1/3 (a point on one training point)."""
    return float(np.mean(distances[:, 0] / np.maximum(distances[:, 1], 1e-300) < 1 / 3))


def nearest_neighbor_statistics(points, train, holdout, rng, max_points: int) -> dict:
    """The draws' nearest-training-point statistics against the baseline's: ``holdout``
    draws when given, else leave-one-out train-to-train distances (the training point
    itself left out by index)."""
    near = nearest_distances(subsample(points, max_points, rng), train, k=2)
    if holdout is not None:
        baseline = nearest_distances(subsample(holdout, max_points, rng), train, k=2)
        baseline_name = "holdout"
    else:
        rows = subsample(np.arange(len(train)), max_points, rng)
        baseline = nearest_distances(train[rows], train, k=2, exclude=rows)
        baseline_name = "train-to-train (leave one out)"
    median, baseline_median = np.median(near[:, 0]), np.median(baseline[:, 0])
    sqrt_d = math.sqrt(train.shape[1])
    return {
        "fraction_nn_ratio_below_third": _below_third(near),
        "baseline_fraction": _below_third(baseline),
        "median_nn_distance": float(median / sqrt_d),
        "baseline_median_nn_distance": float(baseline_median / sqrt_d),
        "distance_ratio": float(median / max(baseline_median, 1e-300)),
        "baseline": baseline_name,
        "max_points": max_points,
    }


class FreshStarts(NamedTuple):
    """Chains of the user's sampler from starts that are not training points."""

    chains: np.ndarray  # (chain, draw, dim)
    starts: np.ndarray  # (chain, dim)
    source: str


def fresh_start_chains(
    rng_key,
    samples,
    chains,
    sampler,
    num_chains: int,
    holdout,
    *,
    time_score_fn=None,
    schedule=None,
    score_time=None,
    num_steps=None,
    model_args=None,
    model_kwargs=None,
) -> FreshStarts | None:
    """The user's ``sampler`` run again from ``num_chains`` fresh starts for as many steps as
    the user's run kept: ``holdout`` rows when given, else reverse-diffusion draws of
    ``time_score_fn``. ``None`` when neither is given, or when the sampler moves in another
    space than the draws ``chains`` (a NumPyro model with constrained sites moves in its
    unconstrained space, where training points in the constrained one do not apply)."""
    runner = as_runner(samples, sampler, model_args=model_args, model_kwargs=model_kwargs)
    draws = runner.draws
    if draws.flat.shape != chains.shape or not np.allclose(draws.flat, chains):
        return None
    start_key, run_key = jax.random.split(rng_key)
    if holdout is not None:
        rows = np.resize(np.arange(len(holdout)), num_chains)  # each row once, cycled if short
        starts, source = holdout[rows], f"{num_chains} held-out points"
    elif time_score_fn is not None and schedule is not None:
        starts = diffusion_draws(time_score_fn, schedule, score_time, start_key, draws, num_chains)
        source = f"{num_chains} reverse-diffusion draws"
    else:
        return None
    if num_steps is None:
        thin = int(runner.tree["posterior"].attrs.get("thin", 1))
        num_steps = draws.flat.shape[1] * thin
    thin = max(1, num_steps // draws.flat.shape[1])
    chains = np.asarray(runner.run(run_key, np.asarray(starts), num_steps, thin))
    return FreshStarts(chains, np.asarray(starts), f"{source}, {num_steps} steps of your sampler")


def start_contrast(chains, start_points, from_train, fresh, train, details: dict) -> None:
    """Chains started at training points against fresh-start chains (the run's own, or
    ``fresh`` when every chain started at a training point): each kind's median distance
    from the training set over its second halves, their ratio (``held_ratio``), each kind's
    drift from its start and their ratio (``drift_ratio``), and the fresh starts' distance
    against the baseline's (``fresh_distance_ratio``). Adds to ``details``."""
    sqrt_d = math.sqrt(train.shape[1])
    if fresh is None:
        fresh_chains, fresh_starts = chains[~from_train], start_points[~from_train]
    else:
        fresh_chains, fresh_starts = fresh.chains, fresh.starts
    held_chains, held_starts = chains[from_train], start_points[from_train]

    def median_distance(kind):
        return float(np.median(nearest_distances(pooled(_second_halves(kind)), train, k=1)))

    def mean_drift(kind, kind_starts):
        return float(np.mean(np.linalg.norm(kind[:, -1] - kind_starts, axis=-1)) / sqrt_d)

    if len(fresh_chains):
        fresh_distance = median_distance(fresh_chains)
        details["fresh_median_nn_distance"] = fresh_distance / sqrt_d
        baseline = details["baseline_median_nn_distance"] * sqrt_d
        details["fresh_distance_ratio"] = fresh_distance / max(baseline, 1e-300)
        details["drift_fresh_starts"] = mean_drift(fresh_chains, fresh_starts)
    if len(held_chains):
        details["train_start_median_nn_distance"] = median_distance(held_chains) / sqrt_d
        details["drift_train_starts"] = mean_drift(held_chains, held_starts)
    if len(fresh_chains) and len(held_chains):
        details["held_ratio"] = details["train_start_median_nn_distance"] / max(
            details["fresh_median_nn_distance"], 1e-300
        )
        details["drift_ratio"] = details["drift_train_starts"] / max(
            details["drift_fresh_starts"], 1e-300
        )


def _grade_above(value, fail, warn) -> str:
    """``fail`` above ``fail``, ``warn`` above ``warn``, else ``ok``."""
    return "fail" if value > fail else "warn" if value > warn else "ok"


def _grade_below(value, fail, warn) -> str:
    """``fail`` below ``fail``, ``warn`` below ``warn``, else ``ok``."""
    return "fail" if value < fail else "warn" if value < warn else "ok"


def memorization_verdict(details: dict) -> CheckResult:
    """The check's result from the statistics in ``details``
    (:func:`nearest_neighbor_statistics`, :func:`start_contrast`): the worst of three
    verdicts, each named in the explanation with its statistic and what to do."""
    fraction = details["fraction_nn_ratio_below_third"]
    excess = fraction - details["baseline_fraction"]
    verdicts = {}  # name: (status, statistic, fail threshold, sentence)
    verdicts["on training points"] = (
        _grade_above(excess, MEMO_FAIL, MEMO_WARN),
        excess,
        MEMO_FAIL,
        f"{fraction:.0%} of draws sit on a training point (NN1/NN2 < 1/3; baseline "
        f"{details['baseline_fraction']:.0%})",
    )
    if "held_ratio" in details:
        # graded on where chains end, not on how far they drift: under a score that pulls
        # every chain to the training set, training starts drift less only because they
        # start where fresh starts are pulled to
        held, drift = details["held_ratio"], details["drift_ratio"]
        verdicts["held by training points"] = (
            _grade_below(held, MEMO_HELD_FAIL, MEMO_HELD_WARN),
            held,
            MEMO_HELD_FAIL,
            f"held by training points: chains started at training points end {held:.2f}x as "
            f"far from the training set as fresh starts do (and drift {drift:.2f}x as far). "
            "Start chains from fresh samples not used for training (held-out data or "
            "diffusion draws)",
        )
    # the pull is read on fresh starts when there are any: on training starts alone it
    # cannot be told from being held
    if "fresh_distance_ratio" in details or not details.get("train_starts"):
        ratio = details.get("fresh_distance_ratio", details["distance_ratio"])
        who = "fresh-start chains" if "fresh_distance_ratio" in details else "the draws"
        name, sentence = (
            "pulled towards the training set",
            f"the score pulls every sampler towards the training set: {who} end {ratio:.2f}x "
            f"as far from it as {details['baseline']} points are. The score has memorized "
            "its training data and any sampler with it reproduces them: train on more data, "
            "with a smaller network or fewer steps, and compare its DSM loss on held-out data",
        )
    else:  # training starts only, nothing to contrast them with
        ratio = details["distance_ratio"]
        name, sentence = (
            "nearer the training set",
            f"the draws end {ratio:.2f}x as far from the training set as "
            f"{details['baseline']} points are, and every chain started at a training point: "
            "give `sampler=` (and `holdout=`) to tell whether the starts or the score hold "
            "them there",
        )
    verdicts[name] = (
        _grade_below(ratio, MEMO_DISTANCE_FAIL, MEMO_DISTANCE_WARN),
        ratio,
        MEMO_DISTANCE_FAIL,
        sentence,
    )
    details["verdicts"] = {name: v[0] for name, v in verdicts.items()}
    status = worst_status([v[0] for v in verdicts.values()])
    if status == "ok":
        return CheckResult(
            MEMORIZATION,
            "ok",
            excess,
            MEMO_FAIL,
            "draws are no closer to training points than fresh draws of the target are.",
            details,
        )
    flagged = [v for v in verdicts.values() if v[0] == status]
    explanation = "; ".join(v[3] for v in flagged)
    return CheckResult(
        MEMORIZATION, status, flagged[0][1], flagged[0][2], explanation + ".", details
    )
