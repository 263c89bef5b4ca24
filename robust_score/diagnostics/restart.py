"""Restart sensitivity: re-run the user's sampler from elsewhere and ask whether it ends where
the user's chains did. :func:`restart_starts` builds the start groups,
:func:`~robust_score.diagnostics.restart_groups.run_groups` runs and grades each (running on
those that have not settled), :func:`restart_verdict` combines them with the restarts that
settled elsewhere and the user's chains held apart."""

import math
from typing import NamedTuple

import jax
import numpy as np

from robust_score.diagnostics.comparison import Apart, Comparison, chains_apart, compare
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.explain import restart_sentence, short_run
from robust_score.diagnostics.grading import (
    Verdict,
    grade,
    judge_restarts,
    judge_sample,
    too_short,
)
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.restart_groups import (
    DISAGREE,
    DRAWS_PER_RESTART,
    UNMIXED,
    Group,
    Setup,
    offsets_along,
    run_groups,
    split_offsets,
)
from robust_score.diagnostics.result import RESTART, SEVERITY, CheckResult, worst_status
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import match_length, numpy_rng, per_variable_rhat

__all__ = ["RestartDetails", "check_restart", "restart_starts"]


class RestartDetails(NamedTuple):
    """The numbers behind a restart verdict."""

    groups: tuple[Group, ...]
    rhat_across_groups: float
    user_mean_distance: float  # the user's draws' mean distance to their mean, over sqrt(d)
    num_steps: int  # per round
    chains_elsewhere: int  # restart chains settled where the user's never go
    largest_offset: float  # the farthest of those, in the user's largest offsets
    apart: Apart  # the user's chains held apart, and how many sit in real modes
    all_groups_far: bool
    pooled: Comparison | None  # the user's draws against every settled restart chain
    sampler: str  # "blackjax" or "numpyro"
    num_warmup: int | None  # NumPyro: warm-up steps of each restart run (None: num_steps)
    starts_pulled_in: dict  # NumPyro: starts moved in until the model was finite


def check_restart(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    runner = inputs.runner
    user = draws.kept
    if too_short(draws, settings):
        return CheckResult(
            RESTART,
            "unconverged",
            user.shape[1],
            settings.min_kept_draws,
            short_run(user.shape[1], settings) + ".",
            finding="too few draws",
        )
    rng_key, rng = numpy_rng(rng_key)
    num_steps = settings.restart_steps or max(DRAWS_PER_RESTART, draws.flat.shape[1] * draws.thin)
    center = user.reshape(-1, draws.dim).mean(axis=0)
    spread = user.reshape(-1, draws.dim).std(axis=0)
    # a chain that never moved has sd 0: fall back to a scale that still overdisperses
    spread = np.where(spread > 0, spread, np.maximum(1e-3, np.abs(center).mean()))
    baseline = math.inf
    if user.shape[1] >= 4:
        baseline = max(float(np.max(np.abs(split_offsets(user, center, spread)[0]))), 1e-300)
    setup = Setup(runner.run, user, center, spread, baseline, num_steps, draws.slices, settings)
    rng_key, starts = restart_starts(rng_key, rng, setup, inputs.reference)
    pulled_in = {}  # NumPyro: starts past the model's float range, moved in until finite
    for label, group in starts.items():
        starts[label], pulled_in[label] = runner.pull_in(group, center)
    setup = setup._replace(run=runner.for_groups(starts))  # NumPyro: one compiled run
    run_key, settle_key, pooled_key = jax.random.split(rng_key, 3)
    groups = run_groups(run_key, rng, setup, starts)
    elsewhere = _settled_elsewhere(settle_key, setup, groups)
    finite = [match_length(g.chains, user.shape[1]) for g in groups if len(g.chains)]
    pooled = None
    if finite:
        pooled = compare(user, np.concatenate(finite), pooled_key, rng, settings)
    details = RestartDetails(
        tuple(groups),
        per_variable_rhat(np.concatenate([user, *finite]), rng),
        float(np.linalg.norm(user - center, axis=-1).mean() / math.sqrt(draws.dim)),
        num_steps,
        len(elsewhere),
        max(elsewhere, default=0.0),
        chains_apart(
            user, np.concatenate(finite).reshape(-1, draws.dim) if finite else None, settings
        ),
        _all_far(groups, settings),
        pooled,
        runner.kind,
        runner.num_warmup,
        {label: n for label, n in pulled_in.items() if n},
    )
    return restart_verdict(details, len(user), settings)


def restart_starts(rng_key, rng, setup: Setup, reference):
    """``(rng_key, {label: (num_chains, dim) flat starts})``: one overdispersed group per
    scale, plus one of ``reference`` draws when given."""
    dim, num_chains = len(setup.center), setup.settings.restart_chains
    starts = {}
    for factor in setup.settings.restart_scales:
        rng_key, key = jax.random.split(rng_key)
        # random directions at one standardized radius: in low dimension a Gaussian draw
        # can land near the center and restart inside the very region under test
        noise = np.asarray(jax.random.normal(key, (num_chains, dim)))
        directions = noise / np.linalg.norm(noise, axis=1, keepdims=True)
        starts[f"overdispersed x{factor:g}"] = (
            setup.center + factor * math.sqrt(dim) * setup.spread * directions
        )
    if reference is not None:
        index = rng.choice(len(reference), size=min(num_chains, len(reference)), replace=False)
        starts["reference draws"] = reference[index]
    return rng_key, starts


def _all_far(groups, settings: Settings) -> bool:
    """Every group ends far from the user's draws, each having traveled: evidence even when
    the groups end in different places (a multimodal target whose modes they split)."""
    judged = [g for g in groups if g.grade is not None]
    return len(judged) >= 2 and all(
        g.evidence == "fail" and g.moved_fraction >= settings.far_group_min_moved for g in judged
    )


def _settled_elsewhere(rng_key, setup: Setup, groups) -> list[float]:
    """The offsets (in the user's largest) of restart chains settled where the user's chains
    never go: a split offset over ``apart_factor`` times the user's largest and
    ``elsewhere_min_offset`` of their sd, reached by covering ``elsewhere_min_moved`` of the
    start's distance (reference draws start in the target, so theirs need not move), and
    kept within ``elsewhere_max_drift`` over one more round (a chain still on its way in
    keeps closing in)."""
    settings, baseline = setup.settings, setup.baseline
    found = []
    for group in groups:
        kept = group.chains
        if not len(kept) or kept.shape[1] < 4 or not math.isfinite(baseline):
            continue
        offset, direction = split_offsets(kept, setup.center, setup.spread)
        start_distance = np.linalg.norm(group.starts - setup.center, axis=-1)
        moved = np.linalg.norm(kept[:, -1] - group.starts, axis=-1) / np.maximum(
            start_distance, 1e-300
        )
        traveled = (
            moved >= settings.elsewhere_min_moved if group.label != "reference draws" else True
        )
        floor = max(settings.apart_factor * baseline, settings.elsewhere_min_offset)
        far = np.flatnonzero((offset > floor) & traveled)
        if not len(far):
            continue
        rng_key, run_key = jax.random.split(rng_key)
        thin = max(1, setup.num_steps // DRAWS_PER_RESTART)
        starts = kept[:, -1].copy()  # the group's shape, which is compiled
        later = setup.run(run_key, starts, setup.num_steps, thin)[far]
        later = later[:, later.shape[1] // 2 :]
        ok = np.isfinite(later).all(axis=(1, 2))
        again = offsets_along(
            np.where(ok[:, None, None], later, 0.0), setup.center, setup.spread, direction[far]
        )
        stays = again >= (1 - settings.elsewhere_max_drift) * offset[far]
        beyond = (again > settings.elsewhere_min_offset) & (
            again > settings.apart_factor * baseline
        )
        found += [float(v / baseline) for v in again[ok & stays & beyond]]
    return found


class RestartVerdict(NamedTuple):
    """How the restart check decided: ``cause`` is ``"groups"`` (the worst group's grade),
    ``"elsewhere"`` (restart chains settled where the user's never go, or every group ends
    far), ``"stray"`` (a group still unsettled after every round, partly where the user's
    chains never go) or ``"pooled"`` (every restart chain together against the user's,
    when the user's chains are held apart or the groups stayed inconclusive)."""

    status: str
    finding: str
    cause: str
    worst: Group  # the group a verdict names
    stray: Group | None = None
    pooled: Verdict | None = None


def restart_verdict(details: RestartDetails, num_chains: int, settings: Settings) -> CheckResult:
    """The check's result from its typed details (the cases are listed in docs/calibration.md)."""
    judged = [g for g in details.groups if g.grade is not None]
    if not judged:
        explanation = "every restart chain diverged."
        return CheckResult(
            RESTART, "warn", math.nan, settings.energy_fail, explanation, details, "inconclusive"
        )
    verdict = _decide(details, judged, settings)
    explanation = restart_sentence(verdict, details, num_chains, settings)
    statistic, threshold = verdict.worst.grade.effect, verdict.worst.grade.threshold
    if verdict.finding == "too few draws":
        statistic, threshold = verdict.worst.comparison.ess, settings.min_ess
    return CheckResult(
        RESTART, verdict.status, statistic, threshold, explanation + ".", details, verdict.finding
    )


_GROUP_FINDING = {
    "ok": "none",
    "unconverged": "too few draws",
    "warn": "inconclusive",
    "fail": "trapped",
}


def _decide(details: RestartDetails, judged, settings: Settings) -> RestartVerdict:
    status = worst_status(g.status for g in details.groups)
    if (
        status == "unconverged"
        and np.median([g.comparison.ess for g in judged]) >= settings.min_run_ess
    ):
        status = "ok"  # the run's ESS, read in each group's frame, dipped in a few only
    worst = max(judged, key=lambda g: _rank(g, details.all_groups_far))
    apart, pooled = details.apart, details.pooled
    in_modes = apart.held and apart.in_modes == apart.held
    if details.all_groups_far or details.chains_elsewhere >= settings.min_chains_elsewhere:
        if in_modes:  # the restarts' regions are modes the user's starts left unvisited
            return RestartVerdict("unconverged", "inherited weights", "elsewhere", worst)
        return RestartVerdict("fail", "trapped", "elsewhere", worst)
    stray = _settled_apart(details.groups, settings)
    if stray is not None and not apart.held:
        return RestartVerdict("fail", "missed mass", "stray", worst, stray)
    if pooled is not None and (status == "warn" or apart.held):
        if apart.held:
            verdict = judge_restarts(pooled.coverage, apart, settings)
        else:
            verdict = judge_sample(
                grade(pooled, settings), pooled.coverage, apart, pooled.ess, settings
            )
        if SEVERITY[verdict.status] > SEVERITY.get(status, 0) or apart.held:
            return RestartVerdict(verdict.status, verdict.finding, "pooled", worst, None, verdict)
    return RestartVerdict(status, _GROUP_FINDING[status], "groups", worst)


def _settled_apart(groups, settings: Settings) -> Group | None:
    """A group that stayed unsettled through every run-on round (its chains disagree or do
    not mix among themselves, having traveled) with part of its draws where no user chain
    goes: the sampler has settled in a region the user's chains never reach."""
    budget = 1 + settings.restart_rounds
    stray = [
        g
        for g in groups
        if g.rounds >= budget
        and g.note in (DISAGREE, UNMIXED)
        and g.comparison.coverage.uncovered >= settings.uncovered_fraction
        and g.moved_fraction >= settings.far_group_min_moved
    ]
    return max(stray, key=lambda g: g.comparison.coverage.uncovered, default=None)


def _rank(group: Group, by_evidence: bool) -> tuple:
    """Which group a verdict names: the most severe (by its evidence when every group is
    far), then the largest effect for its threshold; among groups that flag nothing, the
    nearest to significance."""
    status = group.evidence if by_evidence else group.status
    if status in ("warn", "fail"):
        return SEVERITY[status], group.grade.effect / group.grade.threshold
    return SEVERITY.get(status, -1), -group.grade.p_value, group.grade.decided_by == "joint"
