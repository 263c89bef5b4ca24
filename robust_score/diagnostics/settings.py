"""Every setting of the checks, in one frozen object: the statistical settings (how many
draws, chains and steps a check spends) and the thresholds that grade what it measures.

.. code::

    report = rs.diagnostics.trap_report(tree, sampler=algorithm)   # the defaults
    strict = rs.diagnostics.Settings(energy_fail=0.05)
    report = rs.diagnostics.trap_report(tree, sampler=algorithm, settings=strict)

Each threshold says where its value came from. The measurements behind them, and the rates
of the calibration cases they were chosen on, are in docs/calibration.md.
"""

from dataclasses import dataclass

from robust_score._checks import check_count, check_positive_scalar

__all__ = ["DEFAULT_SETTINGS", "Settings"]


@dataclass(frozen=True)
class Settings:
    """What the checks spend and how they grade; ``Settings()`` is the calibrated default."""

    # ---- what the checks spend -------------------------------------------------------
    #: Draws per sample in the quadratic statistics (energy test, coverage), subsampled
    #: evenly: the energy test's permutation p-value is exact at any size, and 500 keeps a
    #: report under seconds per comparison at d = 1000.
    max_points: int = 500
    #: Chains per restart group, one group per overdispersion scale (and one from reference
    #: draws when given).
    restart_chains: int = 8
    #: Restart starts sit ``scale * sqrt(d)`` of the user's sd from their mean.
    restart_scales: tuple = (3.0, 10.0, 100.0)
    #: Steps per restart run; ``None``: as many as the user's run kept, at least 200.
    restart_steps: int | None = None
    #: Restart groups that have not settled (still travelling in, or disagreeing among
    #: themselves) run on for up to this many more rounds of ``restart_steps`` before the
    #: verdict; chosen on the tuning cases of docs/calibration.md, where every group that
    #: settled at all did so within two rounds.
    restart_rounds: int = 3
    #: Reverse-diffusion draws of the Langevin-vs-annealed check, and its number of steps.
    annealed_draws: int = 500
    annealed_steps: int = 200
    #: Nearest-neighbour statistics of memorization use at most this many draws.
    memorization_points: int = 2000
    #: Chains continued at each step size by the step-size check.
    step_chains: int = 8

    # ---- comparing two samples -----------------------------------------------------
    #: Energy coefficient ``E / (2 E|X - Y|)`` above which two samples differ (with
    #: ``p < p_fail``): chosen on the calibration cases, where clean runs stay under 0.04.
    energy_fail: float = 0.1
    #: ... or differ somewhat (with ``p < p_warn``).
    energy_warn: float = 0.06
    #: KS distance (probability mass on one side of a point) along the distance to the
    #: center or a leading principal direction above which samples differ (``p < p_fail``,
    #: Bonferroni over a check's KS tests): a mode weighted 0.55 instead of 0.35 gives 0.2.
    ks_fail: float = 0.1
    #: ... or differ somewhat (``p < p_warn``).
    ks_warn: float = 0.05
    #: The p-values that go with the fail and warn effects: the usual 1 % and 5 %.
    p_fail: float = 0.01
    p_warn: float = 0.05
    #: Leading principal directions the mode-mass comparison projects on; three see the
    #: modes of the calibration mixtures (two to eight modes) at every d.
    mode_directions: int = 3
    #: A statistic judges only with this many effective draws (pooled bulk ESS) in what it
    #: reads: bulk ESS of 4 chains x 500 draws at a true 2 reads 4.6-8.4, a distance's 12.
    min_ess: float = 20.0
    #: A run whose own ESS (median over coordinates, and along the leading direction) is
    #: below this, with nothing flagged, is ``unconverged``: single estimates at a true ESS
    #: of 50 read 16-93, at a true 2 they read 4.6-8.4.
    min_run_ess: float = 10.0
    #: Fewer kept draws per chain than this (after the first half is dropped as burn-in)
    #: and a run is too short to judge (``unconverged``).
    min_kept_draws: int = 10
    #: Effects that fail at any ESS (samples that barely overlap, significant at the
    #: effective sizes, against a sample with ``min_ess``): clean ULA at ESS 5 reaches a
    #: radial KS of 0.36, a trap slowly mixing in its well 0.89-1.0; the mode-mass KS is
    #: higher (a slow run's clumps choose its directions: 0.72 seen clean).
    decisive_radial_ks: float = 0.7
    decisive_mode_ks: float = 0.9
    decisive_energy: float = 0.5

    # ---- where the draws are: coverage ---------------------------------------------
    #: A draw lies where the other sample has no mass when its nearest-neighbour distance
    #: to that sample (distance to the center and principal projections) exceeds this many
    #: times the 99th percentile of the other sample's own. On the tuning cases (seeds 0
    #: and 2, d <= 100) no clean chain had most of its draws beyond it, while 3-4 of 4
    #: chains did in every off-center trap.
    coverage_factor: float = 2.0
    #: A part of the other sample that no chain visits: this fraction of its draws beyond
    #: that distance from every user draw. Clean runs on the tuning cases reach 0.038 (0.076
    #: on a slowly mixing one, which is graded ``unconverged`` before this is read); a
    #: dropped mode of weight one half gives 0.44-0.50, a dropped mode of weight 0.1 about 0.1.
    uncovered_fraction: float = 0.08

    # ---- restart sensitivity ---------------------------------------------------------
    #: Two things are apart when one exceeds this many times the other: a restart group's
    #: effect and the effect between its own two halves; a chain's offset and its own sd
    #: (a chain that mixes cannot sit 3 of its sd away by chance: its mean is known to
    #: 1 / sqrt(min_ess) = 0.22 sd); a restart chain's offset and the user's largest.
    apart_factor: float = 3.0
    #: A restart group is evidence only if its chains traveled this fraction of their
    #: start's distance (median)...
    min_moved_fraction: float = 0.7
    #: ... and the R-hat of their distances stays below this (MALA restarts of Neal's
    #: funnel do not mix).
    max_group_rhat: float = 2.5
    #: Every restart group far from the user's draws fails the run when each traveled this
    #: fraction (ring restarts that settle in other modes travel 0.5-1.4, MALA restarts
    #: stuck in the funnel 0.0-0.07).
    far_group_min_moved: float = 0.25
    #: A restart chain settled elsewhere: an offset over ``apart_factor`` times the user's
    #: largest and this many of the user's sd (clean MALA offsets reach 0.2 sd)...
    elsewhere_min_offset: float = 1.0
    #: ... that it keeps within this fraction over another round (a chain still coming in
    #: lost a third)...
    elsewhere_max_drift: float = 0.25
    #: ... after covering this fraction of its start's distance.
    elsewhere_min_moved: float = 0.9
    #: This many restart chains settled elsewhere fail the run.
    min_chains_elsewhere: int = 2

    # ---- score error -------------------------------------------------------------------
    #: Relative L2 score error where the chain sits that fails / warns.
    score_error_fail: float = 0.1
    score_error_warn: float = 0.01
    #: With reference draws, a fail also needs this many times the error under the target.
    score_error_concentration: float = 10.0

    # ---- memorization ------------------------------------------------------------------
    #: Excess fraction of draws on one training point (NN1/NN2 < 1/3) over the baseline's
    #: that fails / warns.
    memorization_fail: float = 0.1
    memorization_warn: float = 0.02
    #: Distance ratios (to the training set, against the baseline's; training starts
    #: against fresh starts) below which draws are pulled or held there: fail / warn.
    memorization_distance_fail: float = 0.5
    memorization_distance_warn: float = 0.8
    #: Held-out data side with one of two disagreeing samples when the other's statistic to
    #: them is this factor larger (digits: 0.41 / 0.42 is a tie, not a side).
    holdout_side_margin: float = 1.25

    # ---- step size -----------------------------------------------------------------------
    #: The spread's slope against the step counts beyond this many standard errors (8
    #: chains, 7 degrees of freedom: |t| > 4 by chance with probability 0.005)...
    bias_z: float = 4.0
    #: ... and is an O(h) bias when the straight line's chi-square stays within this (the
    #: 99.7 % point of one degree of freedom).
    linearity_chi2: float = 9.0

    def __post_init__(self):
        for name in ("max_points", "annealed_draws", "memorization_points", "min_kept_draws"):
            check_count(getattr(self, name), name, minimum=2)
        for name in ("restart_chains", "annealed_steps", "mode_directions"):
            check_count(getattr(self, name), name)
        check_count(self.step_chains, "step_chains", minimum=4)
        check_count(self.restart_rounds, "restart_rounds", minimum=0)
        check_count(self.min_chains_elsewhere, "min_chains_elsewhere")
        if self.restart_steps is not None:
            check_count(self.restart_steps, "restart_steps")
        if not self.restart_scales or any(s <= 0 for s in self.restart_scales):
            raise ValueError(
                f"`restart_scales` must be positive numbers, got {self.restart_scales!r}."
            )
        for name, value in vars(self).items():
            if isinstance(value, float):
                check_positive_scalar(value, name)


DEFAULT_SETTINGS = Settings()
