"""Diagnostics that tell when a score-driven run is trapped or memorizing — which R-hat,
ESS and ArviZ's usual checks cannot see when the chains share a start.

.. code::

    report = rs.diagnostics.trap_report(tree, sampler=algorithm)
    report.status            # "ok" | "warn" | "fail"
    print(report)            # one line per check, with the reason
    report[rs.diagnostics.RESTART].details   # one check's numbers, by its name

Thresholds live in :mod:`robust_score.diagnostics.thresholds`.
"""

from robust_score.diagnostics.annealed import annealed_cross_check
from robust_score.diagnostics.memorization import memorization_report
from robust_score.diagnostics.reference import reference_comparison
from robust_score.diagnostics.report import TrapReport, trap_report
from robust_score.diagnostics.restart import restart_sensitivity
from robust_score.diagnostics.result import (
    ANNEALED,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    STEP_SIZE,
    CheckResult,
    worst_status,
)
from robust_score.diagnostics.score_error import score_error_along_chain
from robust_score.diagnostics.statistics import (
    energy_test,
    kernel_stein_discrepancy,
    nearest_distances,
)
from robust_score.diagnostics.step_size import step_size_sensitivity

__all__ = [
    "ANNEALED",
    "MEMORIZATION",
    "REFERENCE",
    "RESTART",
    "SCORE_ERROR",
    "STEP_SIZE",
    "CheckResult",
    "TrapReport",
    "annealed_cross_check",
    "energy_test",
    "kernel_stein_discrepancy",
    "memorization_report",
    "nearest_distances",
    "reference_comparison",
    "restart_sensitivity",
    "score_error_along_chain",
    "step_size_sensitivity",
    "trap_report",
    "worst_status",
]
