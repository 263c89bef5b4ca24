"""Diagnostics that tell when a score-driven run is trapped or memorizing — which R-hat,
ESS and ArviZ's usual checks cannot see when the chains share a start.

.. code::

    report = rs.diagnostics.trap_report(tree, sampler=algorithm)
    report.status            # "ok" | "unconverged" | "warn" | "fail"
    report.finding           # what was found, e.g. "trapped", "inherited weights"
    print(report)            # the headline, then one line per check with the reason
    report[rs.diagnostics.RESTART].details   # one check's numbers, a typed NamedTuple

The input is parsed once (:func:`~robust_score.diagnostics.draws.parse_draws`), the other
inputs validated once (:func:`~robust_score.diagnostics.inputs.gather`), and every check in
:data:`CHECKS` runs on both; what they spend and how they grade is one
:class:`Settings` object.
"""

from robust_score.diagnostics.checks import (
    annealed_cross_check,
    memorization_report,
    reference_comparison,
    restart_sensitivity,
    score_error_along_chain,
    step_size_sensitivity,
)
from robust_score.diagnostics.report import CHECKS, TrapReport, trap_report
from robust_score.diagnostics.result import (
    ANNEALED,
    FINDINGS,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    STEP_SIZE,
    CheckResult,
    worst_status,
)
from robust_score.diagnostics.settings import DEFAULT_SETTINGS, Settings
from robust_score.diagnostics.statistics import (
    energy_test,
    kernel_stein_discrepancy,
    nearest_distances,
)

__all__ = [
    "ANNEALED",
    "CHECKS",
    "DEFAULT_SETTINGS",
    "FINDINGS",
    "MEMORIZATION",
    "REFERENCE",
    "RESTART",
    "SCORE_ERROR",
    "STEP_SIZE",
    "CheckResult",
    "Settings",
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
