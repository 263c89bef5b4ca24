"""Grade what the checks measured against :class:`~robust_score.diagnostics.Settings`: pure
functions from typed measurements to typed grades. Nothing here measures or explains."""

import math
from typing import NamedTuple

from robust_score.diagnostics.comparison import Comparison
from robust_score.diagnostics.result import SEVERITY
from robust_score.diagnostics.settings import Settings

__all__ = ["Grade", "grade", "grade_above", "grade_below", "too_short"]


class Grade(NamedTuple):
    """A comparison's verdict: ``status`` (``ok``, ``unconverged``, ``warn`` or ``fail``),
    the statistic that decided it (``"joint"``, ``"radial"`` or ``"mode mass"``), that
    statistic's effect, p-value and fail threshold, and whether it failed below ``min_ess``
    on a decisive effect (``at_low_ess``)."""

    status: str
    decided_by: str
    effect: float
    p_value: float
    threshold: float
    at_low_ess: bool = False


def _thresholds(settings: Settings) -> dict:
    """statistic -> (fail effect, warn effect, decisive effect)."""
    return {
        "joint": (settings.energy_fail, settings.energy_warn, settings.decisive_energy),
        "radial": (settings.ks_fail, settings.ks_warn, settings.decisive_radial_ks),
        "mode mass": (settings.ks_fail, settings.ks_warn, settings.decisive_mode_ks),
    }


def _grade_one(stat, fail_effect: float, warn_effect: float, settings: Settings) -> str:
    if not math.isfinite(stat.effect):
        return "ok"
    if stat.p_value < settings.p_fail and stat.effect > fail_effect:
        return "fail"
    if stat.p_value < settings.p_warn and stat.effect > warn_effect:
        return "warn"
    return "ok"


def grade(comparison: Comparison, settings: Settings) -> Grade:
    """The verdict of a :class:`Comparison`.

    Only statistics with ``min_ess`` effective draws judge, except that a decisive effect
    (samples that barely overlap, significant at the effective sizes) fails at any ESS when
    the other sample has ``min_ess``: restarts still on their way in from far starts differ
    from anything, decisively, so their own ESS must be there. The worst grade decides, then
    the largest effect for its threshold; when none flags, the run is ``unconverged`` if no
    statistic could judge or its own ESS is below ``min_run_ess``, else ``ok``."""
    thresholds = _thresholds(settings)
    statistics = comparison.statistics
    judged = [name for name, stat in statistics.items() if stat.ess >= settings.min_ess]
    grades = {
        name: _grade_one(statistics[name], *thresholds[name][:2], settings) for name in judged
    }
    at_low_ess = set()
    for name, stat in statistics.items():
        decisive = thresholds[name][2]
        low = name not in judged and comparison.ess_other >= settings.min_ess
        if low and stat.effect >= decisive and stat.p_value < settings.p_fail:
            grades[name], at_low_ess = "fail", at_low_ess | {name}
    order = list(statistics)

    def weight(name):
        # the worst grade, then the largest effect for its threshold; among statistics that
        # flag nothing, the one nearest to significance, then the first listed
        severity = SEVERITY[grades[name]] if name in grades else -1
        if severity > 0:
            effect = statistics[name].effect
            return severity, (effect if math.isfinite(effect) else 0.0) / thresholds[name][0]
        return severity, -statistics[name].p_value, -order.index(name)

    decided = max(order, key=weight)
    status = grades.get(decided, "ok")
    if status == "ok" and (not judged or comparison.ess < settings.min_run_ess):
        status = "unconverged"
    stat = statistics[decided]
    return Grade(
        status,
        decided,
        stat.effect,
        stat.p_value,
        thresholds[decided][0],
        status == "fail" and decided in at_low_ess,
    )


def grade_above(value: float, fail: float, warn: float) -> str:
    """``fail`` above ``fail``, ``warn`` above ``warn``, else ``ok``."""
    return "fail" if value > fail else "warn" if value > warn else "ok"


def grade_below(value: float, fail: float, warn: float) -> str:
    """``fail`` below ``fail``, ``warn`` below ``warn``, else ``ok``."""
    return "fail" if value < fail else "warn" if value < warn else "ok"


def too_short(draws, settings: Settings) -> bool:
    """Whether the user's chains keep too few draws to judge (independent draws never do)."""
    return not draws.independent and draws.kept.shape[1] < settings.min_kept_draws


class Verdict(NamedTuple):
    """A sample comparison's final verdict: its ``status`` and ``finding`` (a key of
    :data:`~robust_score.diagnostics.result.FINDINGS`)."""

    status: str
    finding: str


_FINDING = {"fail": "differs", "warn": "differs", "unconverged": "too few draws", "ok": "none"}


def judge_sample(grade: Grade, coverage, apart, ess: float, settings: Settings) -> Verdict:
    """Combine a comparison's :class:`Grade` with where the samples have mass
    (:class:`~robust_score.diagnostics.comparison.Coverage`) and the user's chains held
    apart (:class:`~robust_score.diagnostics.comparison.Apart`).

    - chains held apart, each in a real mode of the other sample, are no failure by
      themselves: when the samples differ, part of the other is unvisited, or the chains'
      disagreement leaves too few effective draws to tell, the weights come from where the
      chains started (``unconverged``, remedied by more chains from fresh draws, not a
      longer run);
    - chains held apart in wells narrower than the target's, or sitting where the other
      sample has no mass while the samples differ, are trapped (``fail``);
    - part of the other sample that no chain visits, with chains that mix and the run's own
      ESS (``ess``) at ``min_ess``, is missed mass (``fail``); below it, the run has not
      explored the target yet (``unconverged``: a clean MALA run on an anisotropic target,
      ESS 10 along its wide axis, left 15 % of it unvisited);
    - otherwise the grade stands."""
    if apart.held > apart.in_modes:
        return Verdict("fail", "trapped")
    if grade.status == "fail" and coverage.chains_off:
        return Verdict("fail", "trapped")
    missed = coverage.uncovered >= settings.uncovered_fraction
    if apart.held and (missed or grade.status != "ok"):
        return Verdict("unconverged", "inherited weights")
    if missed and grade.status != "unconverged" and ess >= settings.min_ess:
        return Verdict("fail", "missed mass")
    if missed:  # a run that has not explored the target yet misses part of it too
        return Verdict("unconverged", "too few draws")
    return Verdict(grade.status, _FINDING[grade.status])


def judge_restarts(coverage, apart, settings: Settings) -> Verdict:
    """The verdict of every restart chain pooled against the user's chains held apart.
    Restart chains started far out are held apart too, so their weights follow their own
    starts: only where each has mass can tell. Chains held in wells narrower than the
    target's, or where no restart goes, are trapped; restarts that settle where none of the
    user's chains go are modes the user's starts left unvisited (inherited weights)."""
    if apart.held > apart.in_modes or coverage.chains_off:
        return Verdict("fail", "trapped")
    if coverage.uncovered >= settings.uncovered_fraction:
        return Verdict("unconverged", "inherited weights")
    return Verdict("ok", "none")
