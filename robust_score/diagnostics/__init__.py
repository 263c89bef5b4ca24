"""Diagnostics that tell when a score-driven run is trapped or memorising — which R-hat,
ESS and ArviZ's usual checks cannot see when the chains share a start.

.. code::

    report = rs.diagnostics.trap_report(tree, sampler=algorithm)
    report.status            # "ok" | "warn" | "fail"
    print(report)            # one line per check, with the reason
"""

from robust_score.diagnostics.checks import (
    CheckResult,
    annealed_cross_check,
    memorization_report,
    reference_comparison,
    restart_sensitivity,
    score_error_along_chain,
)
from robust_score.diagnostics.report import TrapReport, trap_report
from robust_score.diagnostics.statistics import (
    energy_test,
    kernel_stein_discrepancy,
    nearest_distances,
)

__all__ = [
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
    "trap_report",
]
