"""Every threshold of the checks, in one place.

Chosen from the committed calibration run (``benchmarks/calibrate_diagnostics.py``; table
in ``docs/calibration.md``, reasoning in ``docs/diagnostics.md``).
"""

__all__ = [
    "ENERGY_FAIL",
    "ENERGY_WARN",
    "P_FAIL",
    "P_WARN",
    "KS_FAIL",
    "KS_WARN",
    "MODE_DIRECTIONS",
    "MIN_ESS",
    "MIN_RUN_ESS",
    "MIN_KEPT_DRAWS",
    "DECISIVE_RADIAL_KS",
    "DECISIVE_MODE_KS",
    "DECISIVE_ENERGY",
    "GROUP_AGREEMENT_FACTOR",
    "MIN_MOVED_FRACTION",
    "MAX_GROUP_RHAT",
    "FAR_GROUP_MIN_MOVED",
    "ELSEWHERE_FACTOR",
    "ELSEWHERE_MAX_DRIFT",
    "ELSEWHERE_MIN_MOVED",
    "ELSEWHERE_MIN_OFFSET",
    "MIN_CHAINS_ELSEWHERE",
    "MIN_CHAINS_APART",
    "SCORE_ERROR_FAIL",
    "SCORE_ERROR_WARN",
    "SCORE_ERROR_CONCENTRATION",
    "MEMO_FAIL",
    "MEMO_WARN",
    "MEMO_DISTANCE_FAIL",
    "MEMO_DISTANCE_WARN",
    "HOLDOUT_SIDE_MARGIN",
    "MEMO_HELD_FAIL",
    "MEMO_HELD_WARN",
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
#: Largest difference of probability mass on one side of a point (KS distance), along the
#: distance to the center or a leading principal direction, above which a check fails (with
#: ``p < P_FAIL`` after a Bonferroni correction over the KS tests of a check): a mode
#: weighted 0.55 instead of 0.35 gives 0.2...
KS_FAIL = 0.1
#: ... or warns (with ``p < P_WARN``, corrected likewise).
KS_WARN = 0.05
#: How many leading principal directions the mode-mass comparison projects on.
MODE_DIRECTIONS = 3
#: Below this many effective draws (pooled bulk ESS of the user's kept draws) in the
#: quantity a statistic reads, that statistic cannot judge. Bulk ESS estimates of 4 chains
#: x 500 draws overestimate small ESS: at a true 2 (ULA, h = 0.002) they read 4.6-8.4, a
#: distance's up to 12.
MIN_ESS = 20.0
#: When no statistic flags a difference, a check says ``unconverged`` (a clean run that has
#: not mixed is not a trap) if no statistic could judge or the run's own ESS (the median
#: over coordinates, and along the leading principal direction) is below this. Lower than
#: ``MIN_ESS`` because single estimates scatter: at a true ESS of about 50 (ULA, h = 0.05,
#: d = 1000) 18 estimates along a direction read 16-93, at a true 2 they read 4.6-8.4.
MIN_RUN_ESS = 10.0
#: Fewer kept draws per chain than this (after the first half is dropped as burn-in) and a
#: check is skipped.
MIN_KEPT_DRAWS = 10
#: Effects this large fail a check even below ``MIN_ESS`` effective draws (with the p-value,
#: taken at the effective sizes, below ``P_FAIL``, against a sample with ``MIN_ESS``):
#: samples that barely overlap, which a clean run started at target draws does not produce
#: by slow mixing alone. For the radial KS distance: clean ULA with ESS 5 reaches 0.34 (d =
#: 1000) and 0.36 (d = 100) against reference and reverse-diffusion draws; an off-center
#: trap in an anisotropic Gaussian that mixes slowly inside its well (d = 10 and 100, ESS
#: 7-15) gives 1.0 against reverse diffusion, chains in a well between two modes (d = 10,
#: ESS 9) 0.89. 0.7 sits at twice the largest clean value.
DECISIVE_RADIAL_KS = 0.7
#: ... for the mode-mass KS distance, higher: its directions are the pooled sample's leading
#: principal directions, which a slowly mixing run's clumps choose, so clean ULA with ESS 6
#: at d = 100 reached 0.72 along one (p = 0.004 at the effective sizes).
DECISIVE_MODE_KS = 0.9
#: ... likewise for the energy coefficient.
DECISIVE_ENERGY = 0.5
#: A restart group fails a run only if its distance to the user's draws exceeds this many
#: times the distance between two halves of the group (else the restarts have not converged)...
GROUP_AGREEMENT_FACTOR = 3.0
#: ... only if its chains traveled at least this fraction of their start's distance (median
#: over chains)...
MIN_MOVED_FRACTION = 0.7
#: ... and only if the R-hat of their distances to the user's mean stays below this
#: (restarts of a hard target such as Neal's funnel under MALA do not mix).
MAX_GROUP_RHAT = 2.5
#: When every restart group ends far from the user's draws the run fails even if the groups
#: disagree among themselves or their R-hat is high, provided each group's chains traveled
#: at least this fraction of their start's distance (median): restarts on an 8-mode ring
#: that settle in other modes travel 0.5-1.4 of it, MALA restarts stuck out in Neal's
#: funnel 0.0-0.07.
FAR_GROUP_MIN_MOVED = 0.25
#: A restart chain settled where the user's chains never go when its split offset (its
#: second half's distance from the user's center along the direction of its first half,
#: whitened by the user's spread) exceeds this many times the largest of the user's chains'
#: own split offsets...
ELSEWHERE_FACTOR = 3.0
#: ... and this many of the user's sd: when every chain mixes well, all split offsets are
#: noise of about 1 / sqrt(ESS) and one can exceed 3x the user's largest by chance (clean
#: MALA at d = 10, ESS 400: restart offsets 5x the user's, 0.1-0.2 sd)...
ELSEWHERE_MIN_OFFSET = 1.0
#: ... and, run on for as many steps again, it loses less than this fraction of that offset
#: (a chain still on its way in keeps closing in: clean MALA restarts from 100 sd out in an
#: anisotropic Gaussian that covered 93-99 % of the way still lost a third of it)...
ELSEWHERE_MAX_DRIFT = 0.25
#: ... and it covered at least this fraction of its start's distance to the user's center
#: before (a chain stuck where it started, far out, stays there too).
ELSEWHERE_MIN_MOVED = 0.9
#: This many settled-elsewhere restart chains fail the run: a region of the target the
#: user's chains missed (another mode, the target's bulk when they sit in a spurious well).
MIN_CHAINS_ELSEWHERE = 2
#: This many of the user's own chains held apart (each with ``MIN_ESS`` effective draws
#: where it is, its split offset over ``ELSEWHERE_FACTOR`` times its own sd there) fail the
#: run: one is enough, since a chain that mixes where it is cannot sit 3 of its own sd from
#: the others by chance (its mean is known to about 1 / sqrt(MIN_ESS) = 0.22 sd), while 3
#: of 4 NUTS chains in one mode and the fourth in the other (the weights 3:1, not 1:1) show
#: exactly one.
MIN_CHAINS_APART = 1
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
#: Held-out data side with one of two disagreeing samples (Langevin, reverse diffusion) when
#: the other's statistic to them is over this factor larger; within it, they differ from
#: both about as much. On the digits (d = 64), a learned score's Langevin and reverse
#: diffusion read radial KS 0.41 / 0.42, 0.33 / 0.42 and 0.34 / 0.42 to held-out data: the
#: first is a tie that a nearest-side rule would decide by noise.
HOLDOUT_SIDE_MARGIN = 1.25
#: Memorization fails as "held by training points" when chains started at training points
#: end nearer the training set than this fraction of fresh-start chains' distance...
MEMO_HELD_FAIL = 0.5
#: ... or warns below this.
MEMO_HELD_WARN = 0.8

# Step-size sensitivity: the slope of the draws' log spread against the step (runs at h,
# h/2, h/4; chains as batches for the standard errors) must exceed BIAS_Z standard errors to
# count. With 8 chains each standard error is estimated from 7 degrees of freedom, so
# |t| > 4 happens by chance with probability about 0.005 on an unbiased run. The move is an
# O(h) bias when the straight-line fit's chi-square (1 degree of freedom) stays within
# LINEARITY_CHI2 (about the 99.7 % point).
BIAS_Z = 4.0
LINEARITY_CHI2 = 9.0
MIN_CHAINS_FOR_STEP_CHECK = 4
