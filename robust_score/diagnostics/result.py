"""What every check returns: a :class:`CheckResult` under one of the check names below, and
how results combine (:func:`worst_status`)."""

import math
from dataclasses import dataclass, field

__all__ = [
    "ANNEALED",
    "CHECK_NAMES",
    "CheckResult",
    "MEMORIZATION",
    "REFERENCE",
    "RESTART",
    "SCORE_ERROR",
    "STEP_SIZE",
    "STATUSES",
    "skip_if_missing",
    "worst_status",
]

#: Name of :func:`~robust_score.diagnostics.restart_sensitivity`'s result (a report's key).
RESTART = "restart sensitivity"
#: Name of :func:`~robust_score.diagnostics.reference_comparison`'s result.
REFERENCE = "reference comparison"
#: Name of :func:`~robust_score.diagnostics.annealed_cross_check`'s result.
ANNEALED = "Langevin vs annealed"
#: Name of :func:`~robust_score.diagnostics.score_error_along_chain`'s result.
SCORE_ERROR = "score error along the chain"
#: Name of :func:`~robust_score.diagnostics.memorization_report`'s result.
MEMORIZATION = "memorization"
#: Name of :func:`~robust_score.diagnostics.step_size_sensitivity`'s result.
STEP_SIZE = "step-size sensitivity"
#: Every check, in the order a trap report runs and lists them.
CHECK_NAMES = (RESTART, REFERENCE, ANNEALED, SCORE_ERROR, MEMORIZATION, STEP_SIZE)

#: A check's possible statuses; a report's status is the worst of its checks'.
#: ``unconverged``: the draws hold too few effective draws (ESS) to judge; it ranks above
#: ``ok`` (the run cannot be trusted yet) and below ``warn`` (it is no sign of a trap).
STATUSES = ("ok", "unconverged", "warn", "fail", "skipped")
_SEVERITY = {"ok": 0, "unconverged": 1, "warn": 2, "fail": 3}

# What each check needs that the caller may leave out: the reason a skipped result gives.
_NEEDS = {
    RESTART: "needs `sampler=` (the run's SamplingAlgorithm or NumPyro kernel).",
    REFERENCE: "needs `reference=` draws of the target.",
    ANNEALED: "needs `time_score_fn=` and `schedule=`.",
    SCORE_ERROR: "needs `score_fn=` and a trusted `logdensity_fn=`.",
    MEMORIZATION: "needs `train_data=`.",
    STEP_SIZE: "needs `step_size=` and `sampler_at=` (the sampler at another step size).",
}


@dataclass
class CheckResult:
    """One check's verdict: ``status`` is ``ok``, ``unconverged``, ``warn``, ``fail`` or
    ``skipped``; ``name`` is one of :data:`~robust_score.diagnostics.result.CHECK_NAMES`;
    ``statistic`` is compared with ``threshold``; ``details`` holds the numbers behind the
    verdict."""

    name: str
    status: str
    statistic: float
    threshold: float
    explanation: str
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def skipped(cls, name: str, why: str) -> "CheckResult":
        return cls(name, "skipped", math.nan, math.nan, why)


def skip_if_missing(name: str, *inputs) -> CheckResult | None:
    """The skipped result of check ``name`` when any of its optional ``inputs`` is ``None``
    (the one place a check is skipped), else ``None``."""
    if any(value is None for value in inputs):
        return CheckResult.skipped(name, _NEEDS[name])
    return None


def worst_status(statuses) -> str:
    """The most severe of ``statuses`` (``fail`` > ``warn`` > ``unconverged`` > ``ok``),
    ignoring skipped ones; ``"skipped"`` when none ran."""
    ran = [status for status in statuses if status in _SEVERITY]
    return max(ran, key=_SEVERITY.get) if ran else "skipped"
