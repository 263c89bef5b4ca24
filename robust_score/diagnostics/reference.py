"""Reference comparison: the user's draws against independent draws of the target. Its
:func:`judge_against` is the one path from a sample comparison to a result, shared with the
Langevin-vs-annealed check."""

import math
from typing import NamedTuple

import numpy as np

from robust_score.diagnostics.comparison import Apart, Comparison, chains_apart, compare
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.explain import sample_explanation, short_run
from robust_score.diagnostics.grading import Grade, grade, judge_sample, too_short
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.result import REFERENCE, CheckResult
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import numpy_rng

__all__ = ["SampleDetails", "check_reference", "judge_against"]


class SampleDetails(NamedTuple):
    """Details of a check that compares the user's draws with another sample."""

    comparison: Comparison
    grade: Grade
    apart: Apart


def check_reference(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    key, rng = numpy_rng(rng_key)
    return judge_against(
        REFERENCE, draws, inputs.reference, key, rng, settings, "the reference draws"
    )


def judge_against(
    name, draws: Draws, other, key, rng, settings: Settings, label: str, num_comparisons: int = 1
) -> CheckResult:
    """Compare the user's kept draws with ``other`` (``(n, dim)`` draws or chains of the
    target), grade the comparison and combine it with where each has mass and with the
    user's chains held apart (:func:`~robust_score.diagnostics.grading.judge_sample`)."""
    if too_short(draws, settings):
        return CheckResult(
            name,
            "unconverged",
            draws.kept.shape[1],
            settings.min_kept_draws,
            short_run(draws.kept.shape[1], settings) + ".",
            finding="too few draws",
        )
    comparison = compare(draws.kept, other, key, rng, settings, draws.slices, num_comparisons)
    if comparison is None:
        return CheckResult(
            name,
            "warn",
            math.nan,
            settings.energy_fail,
            f"every draw of {label} diverged.",
            finding="inconclusive",
        )
    measured = grade(comparison, settings)
    pooled = np.asarray(other).reshape(-1, draws.dim)
    apart = chains_apart(draws.kept, pooled[np.isfinite(pooled).all(axis=1)], settings)
    verdict = judge_sample(measured, comparison.coverage, apart, comparison.ess, settings)
    explanation = sample_explanation(
        verdict, measured, comparison, apart, draws.num_chains, label, settings
    )
    statistic, threshold = measured.effect, measured.threshold
    if verdict.finding == "too few draws":
        statistic, threshold = comparison.ess, settings.min_ess
    details = SampleDetails(comparison, measured, apart)
    return CheckResult(
        name, verdict.status, statistic, threshold, explanation + ".", details, verdict.finding
    )
