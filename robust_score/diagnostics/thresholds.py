"""Every threshold of the checks, in one place.

Chosen from the committed calibration run (``benchmarks/calibrate_diagnostics.py``; table
in ``docs/calibration.md``, reasoning in ``docs/diagnostics.md``).
"""

__all__ = [
    "ENERGY_FAIL",
    "ENERGY_WARN",
    "P_FAIL",
    "P_WARN",
    "GROUP_AGREEMENT_FACTOR",
    "MIN_MOVED_FRACTION",
    "MAX_GROUP_RHAT",
    "SCORE_ERROR_FAIL",
    "SCORE_ERROR_WARN",
    "SCORE_ERROR_CONCENTRATION",
    "MEMO_FAIL",
    "MEMO_WARN",
    "MEMO_DISTANCE_FAIL",
    "MEMO_DISTANCE_WARN",
    "MEMO_DRIFT_FAIL",
    "MEMO_DRIFT_WARN",
]

#: Energy coefficient ``E / (2 E|X - Y|)`` between the user's draws and another sample of the
#: target above which a check fails (with ``p < P_FAIL``)...
ENERGY_FAIL = 0.1
#: ... or warns (with ``p < P_WARN``).
ENERGY_WARN = 0.06
#: Permutation p-value below which a large energy coefficient fails.
P_FAIL = 0.01
#: Permutation p-value below which a moderate energy coefficient warns.
P_WARN = 0.05
#: A restart group fails a run only if its distance to the user's draws exceeds this many
#: times the distance between two halves of the group (else the restarts have not converged)...
GROUP_AGREEMENT_FACTOR = 3.0
#: ... only if its chains traveled at least this fraction of their start's distance (median
#: over chains)...
MIN_MOVED_FRACTION = 0.7
#: ... and only if the R-hat of their distances to the user's mean stays below this
#: (restarts of a hard target such as Neal's funnel under MALA do not mix).
MAX_GROUP_RHAT = 2.5
#: Relative score error where the chain sits above which the score-error check fails...
SCORE_ERROR_FAIL = 0.1
#: ... or warns.
SCORE_ERROR_WARN = 0.01
#: With reference draws, a fail also needs the chain's error to exceed this many times the
#: error under the reference.
SCORE_ERROR_CONCENTRATION = 10.0
#: Memorization fails when the fraction of draws with NN1/NN2 < 1/3 exceeds the baseline's
#: by more than this...
MEMO_FAIL = 0.1
#: ... or warns above this.
MEMO_WARN = 0.02
#: Memorization fails when the median nearest-training-point distance falls below this
#: fraction of the baseline's...
MEMO_DISTANCE_FAIL = 0.5
#: ... or warns below this.
MEMO_DISTANCE_WARN = 0.8
#: Memorization fails when chains started at training points drift less than this fraction
#: of what fresh-start chains drift...
MEMO_DRIFT_FAIL = 0.5
#: ... or warns below this.
MEMO_DRIFT_WARN = 0.8
