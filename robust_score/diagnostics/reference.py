"""Reference comparison: the user's draws against independent draws of the target."""

from robust_score._checks import check_count
from robust_score.diagnostics._data import as_datatree, as_sample_matrix, posterior_draws
from robust_score.diagnostics._shared import (
    check_dim,
    compare,
    energy_result,
    numpy_rng,
    second_half,
)
from robust_score.diagnostics.result import REFERENCE, CheckResult, skip_if_missing

__all__ = ["reference_comparison"]

_EXPLANATIONS = {
    "ok": "no statistic tells your draws from the reference draws",
    "warn": "your draws differ somewhat from the reference draws",
    "fail": "your draws do not follow the reference distribution",
}


def reference_comparison(data, reference, *, rng_key=None, max_points: int = 500) -> CheckResult:
    """Compare the user's kept draws with independent ``reference`` draws of the target
    (joint and radial energy tests and a mode-mass test, at the draws' effective sample
    size: see :func:`~robust_score.diagnostics._shared.compare`)."""
    skipped = skip_if_missing(REFERENCE, reference)
    if skipped is not None:
        return skipped
    check_count(max_points, "max_points", minimum=2)
    draws = posterior_draws(as_datatree(data))
    reference = check_dim(as_sample_matrix(reference, "reference"), draws.dim, "reference")
    rng_key, rng = numpy_rng(rng_key)
    comparison = compare(second_half(draws), reference, rng_key, rng, max_points, draws.slices)
    return energy_result(REFERENCE, comparison, _EXPLANATIONS)
