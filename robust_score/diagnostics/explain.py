"""Say in words what the checks found: every sentence a report prints is built here, from
typed measurements and grades. Nothing here measures or grades."""

from robust_score.diagnostics.comparison import Apart, Comparison
from robust_score.diagnostics.grading import Grade, Verdict, grade
from robust_score.diagnostics.settings import Settings

__all__ = [
    "LABELS",
    "describe",
    "inherited_weights",
    "restart_sentence",
    "sample_explanation",
    "short_run",
    "too_few_draws",
]

#: How each statistic of a comparison reads in an explanation.
LABELS = {
    "joint": "energy coefficient",
    "radial": "radial KS distance",
    "mode mass": "mode-mass KS distance",
}


def describe(grade: Grade, comparison: Comparison, settings: Settings) -> str:
    """The statistic that decided, in words: ``"mode-mass KS distance 0.21 along principal
    direction 1, p = 3e-08, ESS 410"``."""
    stat = comparison.statistics[grade.decided_by]
    where = f" along principal direction {stat.direction + 1}" if stat.direction >= 0 else ""
    text = (
        f"{LABELS[grade.decided_by]} {stat.effect:.2g}{where}, p = {stat.p_value:.2g}, "
        f"ESS {stat.ess:.0f}"
    )
    if grade.at_low_ess:
        text += f"; with under {settings.min_ess:g} effective draws the chains have not converged"
    return text


def too_few_draws(ess: float, settings: Settings) -> str:
    """What an ``unconverged`` result for too few effective draws says."""
    return (
        f"too few effective draws to judge (ESS {ess:.0f}, needs {settings.min_ess:g}): run "
        "the chains longer, or start more chains from fresh draws"
    )


def short_run(draws_per_chain: int, settings: Settings) -> str:
    """What a run too short to judge says."""
    return (
        f"too few draws to judge: {draws_per_chain} per chain after burn-in (the first half "
        f"of each chain), needs {settings.min_kept_draws}; run the chains longer"
    )


def inherited_weights(apart: Apart, num_chains: int, other: str) -> str:
    """The ``unconverged`` sentence for chains held apart in real modes."""
    return (
        f"weights inherited from the starts: {apart.held} of your {num_chains} chains each "
        f"sit in their own region and never cross, so the draws weight those regions as the "
        f"starts did, and they differ from {other}. Start many more chains from fresh "
        "draws (reverse diffusion, held-out data); a longer run will not fix it"
    )


def sample_explanation(
    verdict: Verdict,
    grade: Grade,
    comparison: Comparison,
    apart: Apart,
    num_chains: int,
    other: str,
    settings: Settings,
) -> str:
    """The sentence of a check that compares the user's draws with ``other`` (e.g. "the
    reference draws", "reverse diffusion with the same score")."""
    numbers = describe(grade, comparison, settings)
    coverage = comparison.coverage
    if verdict.finding == "inherited weights":
        return f"{inherited_weights(apart, num_chains, other)} ({numbers})"
    if verdict.finding == "trapped" and apart.held > apart.in_modes:
        narrow = apart.held - apart.in_modes
        return (
            f"{narrow} of your {num_chains} chains sit in wells far narrower than the target "
            f"around them and never leave: trapped by where they started ({numbers})"
        )
    if verdict.finding == "trapped":
        return (
            f"{coverage.chains_off} of your {num_chains} chains sit where {other} has no "
            f"mass: trapped, likely where the score is wrong ({numbers})"
        )
    if verdict.finding == "missed mass":
        return (
            f"{coverage.uncovered:.0%} of {other} lies where none of your chains go: they "
            f"miss part of the target, e.g. a mode ({numbers})"
        )
    if verdict.finding == "too few draws":
        return too_few_draws(comparison.ess, settings)
    sentence = {
        "ok": f"no statistic tells your draws from {other}",
        "warn": f"your draws differ somewhat from {other}",
        "fail": f"your draws do not follow {other}",
    }[verdict.status]
    clause = "largest: " if verdict.status == "ok" else "decided by the "
    return f"{sentence} ({clause}{numbers})"


def restart_sentence(verdict, details, num_chains: int, settings: Settings) -> str:
    """The restart check's sentence, from its typed verdict and details."""
    worst = verdict.worst
    numbers = describe(worst.grade, worst.comparison, settings)
    where = f"chains restarted from '{worst.label}'"
    if verdict.cause == "elsewhere" and verdict.finding == "inherited weights":
        return (
            f"{inherited_weights(details.apart, num_chains, 'the restarts')}: "
            f"{details.chains_elsewhere} restart chains settled in regions none of your chains "
            "visit"
        )
    if verdict.cause == "elsewhere":
        text = f"{where} end elsewhere: your chains look trapped by where they started ({numbers}"
        if details.all_groups_far:
            effects = [g.grade.effect for g in details.groups if g.grade is not None]
            return text + (
                f"; every restart group ends away from them, effects "
                f"{min(effects):.2g}-{max(effects):.2g})"
            )
        return text + (
            f"; {details.chains_elsewhere} restart chains settled where none of your "
            f"chains go, {details.largest_offset:.1f}x farther out than any of yours)"
        )
    if verdict.cause == "stray":
        stray = verdict.stray
        return (
            f"after {stray.rounds} rounds, chains restarted from '{stray.label}' still "
            f"disagree among themselves, and {stray.comparison.coverage.uncovered:.0%} of their "
            "draws sit where none of your chains go: the sampler settles in regions your "
            "chains never reach, so they are trapped by where they started"
        )
    if verdict.cause == "pooled":
        return _pooled_restart_sentence(verdict.pooled, details, num_chains, settings)
    return {
        "ok": f"no restart group ends away from your chains (largest: '{worst.label}', {numbers})",
        "unconverged": too_few_draws(worst.comparison.ess, settings),
        "warn": f"{where} end somewhat differently from yours ({numbers}"
        + (f"; {worst.note} after {worst.rounds} rounds: inconclusive)" if worst.note else ")"),
        "fail": f"{where} end elsewhere: your chains look trapped by where they started "
        f"({numbers})",
    }[verdict.status]


def _pooled_restart_sentence(verdict: Verdict, details, num_chains: int, settings) -> str:
    """Every restart chain together decided: the user's chains held apart, or groups that
    stayed inconclusive after running on."""
    coverage, apart = details.pooled.coverage, details.apart
    if verdict.finding == "inherited weights":
        where = (
            f"the restarts, {coverage.uncovered:.0%} of whose draws sit in regions none of "
            "yours visit"
        )
        return inherited_weights(apart, num_chains, where)
    if verdict.finding == "trapped" and apart.held > apart.in_modes:
        return (
            f"{apart.held - apart.in_modes} of your {num_chains} chains sit in wells far "
            "narrower than where the restarts go, and never leave: trapped by where they "
            "started"
        )
    if verdict.finding == "trapped":
        return (
            f"{coverage.chains_off} of your {num_chains} chains sit where no restart chain "
            "goes: trapped by where they started"
        )
    if verdict.finding == "missed mass":
        return (
            f"{coverage.uncovered:.0%} of the restart draws settle where none of your "
            "chains go: your chains are held in part of what the sampler reaches from "
            "elsewhere, trapped by where they started"
        )
    if verdict.finding == "too few draws":
        return too_few_draws(details.pooled.ess, settings)
    if verdict.finding in ("differs", "inconclusive"):
        numbers = describe(grade(details.pooled, settings), details.pooled, settings)
        return f"every restart chain together ends elsewhere than your chains ({numbers})"
    return (
        f"the restarts settle only where your chains go ({apart.held} of your {num_chains} "
        "chains each sit in their own region and never cross, so the restarts' weights "
        "follow their own starts and say nothing about yours)"
    )
