"""What every check returns: a :class:`CheckResult` under one of the check names below, with
its status from the one severity order (:data:`SEVERITY`), what it found in words that fit
(:data:`FINDINGS`), and its typed details."""

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANNEALED",
    "CHECK_NAMES",
    "CheckResult",
    "FINDINGS",
    "MEMORIZATION",
    "REFERENCE",
    "RESTART",
    "SCORE_ERROR",
    "SEVERITY",
    "STATUSES",
    "STEP_SIZE",
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
#: Name of :func:`~robust_score.diagnostics.step_size_sensitivity`'s result (for
#: independent draws: the same sampler at twice the steps).
STEP_SIZE = "step-size sensitivity"
#: Every check, in the order a trap report runs and lists them.
CHECK_NAMES = (RESTART, REFERENCE, ANNEALED, SCORE_ERROR, MEMORIZATION, STEP_SIZE)

#: The one severity order: a report's status is the most severe of its checks'.
#: ``unconverged`` (the draws cannot be judged yet, or their weights come from where the
#: chains started) ranks above ``ok`` and below ``warn``; ``skipped`` checks do not count.
SEVERITY = {"ok": 0, "unconverged": 1, "warn": 2, "fail": 3}
STATUSES = (*SEVERITY, "skipped")

#: What a check can find, each a headline in its own words; the remedy goes in the
#: explanation.
FINDINGS = {
    "none": "no sign of a trap",
    "trapped": "TRAPPED: the chains are held where the target is not (a well of the score, "
    "or where they started)",
    "missed mass": "part of the target is missed: no chain visits it",
    "memorizing": "MEMORIZING: the draws reproduce the training data",
    "differs": "the draws differ from another sample of the target",
    "inherited weights": "weights inherited from the starts: the chains never cross between "
    "the regions they sit in",
    "discretization": "discretization bias: the draws move with the step",
    "too few draws": "not converged: too few effective draws to judge",
    "inconclusive": "inconclusive: look at the flagged checks",
    "skipped": "nothing to judge",
}


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict.

    ``status``: ``ok``, ``unconverged``, ``warn``, ``fail`` or ``skipped``; ``finding``: a
    key of :data:`FINDINGS` (``"none"`` when nothing was found); ``statistic`` is compared
    with ``threshold``; ``details``: the numbers behind the verdict, a NamedTuple of the
    check's own type (``None`` when skipped).
    """

    name: str
    status: str
    statistic: float
    threshold: float
    explanation: str
    details: Any = None
    finding: str = "none"

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.finding not in FINDINGS:
            raise ValueError(f"finding must be one of {tuple(FINDINGS)}, got {self.finding!r}")

    @classmethod
    def skipped(cls, name: str, why: str) -> "CheckResult":
        return cls(name, "skipped", math.nan, math.nan, why, finding="skipped")

    @property
    def ran(self) -> bool:
        return self.status != "skipped"

    @property
    def flagged(self) -> bool:
        return self.status in ("warn", "fail")


def worst_status(statuses) -> str:
    """The most severe of ``statuses`` by :data:`SEVERITY`, ignoring skipped ones;
    ``"skipped"`` when none ran."""
    ran = [status for status in statuses if status in SEVERITY]
    return max(ran, key=SEVERITY.get) if ran else "skipped"
