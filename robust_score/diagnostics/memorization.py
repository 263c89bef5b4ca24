"""Memorization: do the draws sit on training points? Three steps: the draws' and a
baseline's nearest-training-point distances (:func:`nearest_neighbor_statistics`), the drift
of chains started at training points (:func:`start_drift`), and :func:`memorization_verdict`."""

import math

import numpy as np

from robust_score._checks import check_count
from robust_score.diagnostics._data import as_datatree, as_sample_matrix, posterior_draws
from robust_score.diagnostics._shared import check_dim, numpy_rng, pooled
from robust_score.diagnostics.result import (
    MEMORIZATION,
    CheckResult,
    skip_if_missing,
    worst_status,
)
from robust_score.diagnostics.statistics import nearest_distances, subsample
from robust_score.diagnostics.thresholds import (
    MEMO_DISTANCE_FAIL,
    MEMO_DISTANCE_WARN,
    MEMO_DRIFT_FAIL,
    MEMO_DRIFT_WARN,
    MEMO_FAIL,
    MEMO_WARN,
)

__all__ = [
    "memorization_report",
    "memorization_verdict",
    "nearest_neighbor_statistics",
    "start_drift",
]


def memorization_report(
    samples,
    train_data,
    holdout=None,
    starts=None,
    *,
    max_points: int = 2000,
    rng_key=None,
) -> CheckResult:
    """Do the draws sit on training points?

    Compares each draw's nearest-training-point distance NN1 with a baseline (``holdout``
    draws of the target when given, else leave-one-out train-to-train distances), and the
    fraction of draws with NN1/NN2 < 1/3 (a draw much closer to one training point than to
    any other) with the baseline's fraction, which is not zero in low dimension. With
    ``starts`` (one initial position per chain) and chain-structured ``samples``, compares how
    far chains started at training points drifted with how far fresh-start chains did.
    """
    skipped = skip_if_missing(MEMORIZATION, train_data)
    if skipped is not None:
        return skipped
    check_count(max_points, "max_points")
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
    _, rng = numpy_rng(rng_key)
    details = nearest_neighbor_statistics(points, train, holdout, rng, max_points)
    drift_status = "ok"
    if starts is not None and chains is not None:
        drift_status = start_drift(chains, starts, train, details)
    return memorization_verdict(details, drift_status)


def _sample_points(samples):
    """``(chains or None, (n, dim) points)``: a run's kept draws (second halves, chains
    pooled) with its ``(chain, draw, dim)`` draws, or plain points without chains."""
    if hasattr(samples, "children") or type(samples).__name__ == "MCMC":
        chains = posterior_draws(as_datatree(samples)).flat
        return chains, pooled(chains[:, chains.shape[1] // 2 :])
    return None, as_sample_matrix(samples, "samples")


def _below_third(distances) -> float:
    """The fraction of rows with NN1/NN2 < 1/3 (a point on one training point)."""
    return float(np.mean(distances[:, 0] / np.maximum(distances[:, 1], 1e-300) < 1 / 3))


def nearest_neighbor_statistics(points, train, holdout, rng, max_points: int) -> dict:
    """The draws' nearest-training-point statistics against the baseline's: ``holdout``
    draws when given, else leave-one-out train-to-train distances."""
    near = nearest_distances(subsample(points, max_points, rng), train, k=2)
    if holdout is not None:
        baseline_points = check_dim(as_sample_matrix(holdout, "holdout"), train.shape[1], "holdout")
        baseline = nearest_distances(subsample(baseline_points, max_points, rng), train, k=2)
        baseline_name = "holdout"
    else:
        baseline = nearest_distances(
            subsample(train, max_points, rng), train, k=2, exclude_self=True
        )
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


def start_drift(chains, starts, train, details: dict) -> str:
    """How far chains started at training points moved, against fresh-start chains: adds
    the drifts to ``details``, returns the drift's status (``ok`` without both kinds)."""
    sqrt_d = math.sqrt(train.shape[1])
    start_points = check_dim(as_sample_matrix(starts, "starts"), train.shape[1], "starts")
    if len(start_points) != chains.shape[0]:
        raise ValueError(
            f"`starts` has {len(start_points)} rows but the samples have {chains.shape[0]} chains."
        )
    from_train = nearest_distances(start_points, train, k=1)[:, 0] <= 1e-6 * (1 + sqrt_d)
    drift = np.linalg.norm(chains[:, -1] - start_points, axis=-1) / sqrt_d
    details["drift_train_starts"] = float(drift[from_train].mean()) if from_train.any() else None
    details["drift_fresh_starts"] = (
        float(drift[~from_train].mean()) if (~from_train).any() else None
    )
    if not (from_train.any() and (~from_train).any()):
        return "ok"
    ratio = details["drift_train_starts"] / max(details["drift_fresh_starts"], 1e-300)
    details["drift_ratio"] = ratio
    return _grade_below(ratio, MEMO_DRIFT_FAIL, MEMO_DRIFT_WARN)


def _grade_above(value, fail, warn) -> str:
    """``fail`` above ``fail``, ``warn`` above ``warn``, else ``ok``."""
    return "fail" if value > fail else "warn" if value > warn else "ok"


def _grade_below(value, fail, warn) -> str:
    """``fail`` below ``fail``, ``warn`` below ``warn``, else ``ok``."""
    return "fail" if value < fail else "warn" if value < warn else "ok"


def memorization_verdict(details: dict, drift_status: str = "ok") -> CheckResult:
    """The check's result from :func:`nearest_neighbor_statistics`' ``details`` and the
    drift's status: the statistic is the excess fraction of draws on a training point."""
    fraction = details["fraction_nn_ratio_below_third"]
    baseline_fraction = details["baseline_fraction"]
    excess, distance_ratio = fraction - baseline_fraction, details["distance_ratio"]
    grades = (
        _grade_above(excess, MEMO_FAIL, MEMO_WARN),
        _grade_below(distance_ratio, MEMO_DISTANCE_FAIL, MEMO_DISTANCE_WARN),
        drift_status,
    )
    status = worst_status(grades)
    explanation = {
        "ok": "draws are no closer to training points than fresh draws of the target are",
        "warn": "draws sit somewhat closer to training points than fresh draws do",
        "fail": f"{fraction:.0%} of draws sit on a training point (NN1/NN2 < 1/3, baseline "
        f"{baseline_fraction:.0%}); median NN distance {distance_ratio:.2f}x the baseline: "
        "memorized. Start chains from fresh samples not used for training",
    }[status]
    return CheckResult(MEMORIZATION, status, excess, MEMO_FAIL, explanation + ".", details)
