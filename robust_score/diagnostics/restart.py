"""Restart sensitivity: re-run the user's sampler from elsewhere and ask whether it ends where
the user's chains did. Three steps: :func:`restart_starts` builds the start groups,
:func:`run_restart_groups` runs and judges each group, :func:`restart_verdict` combines."""

import math
from typing import NamedTuple

import jax
import numpy as np

from robust_score._checks import check_count
from robust_score.diagnostics._data import Draws, as_sample_matrix, is_numpyro_mcmc
from robust_score.diagnostics._shared import (
    check_dim,
    compare,
    describe,
    energy_status,
    match_length,
    numpy_rng,
    per_variable_rhat,
    pooled,
    rhat_1d,
    second_half,
    too_short,
    unconverged_explanation,
)
from robust_score.diagnostics.result import RESTART, CheckResult, skip_if_missing, worst_status
from robust_score.diagnostics.runners import as_runner
from robust_score.diagnostics.statistics import effective_sample_size
from robust_score.diagnostics.thresholds import (
    ELSEWHERE_FACTOR,
    ELSEWHERE_MAX_DRIFT,
    ELSEWHERE_MIN_MOVED,
    ELSEWHERE_MIN_OFFSET,
    ENERGY_FAIL,
    FAR_GROUP_MIN_MOVED,
    GROUP_AGREEMENT_FACTOR,
    MAX_GROUP_RHAT,
    MIN_CHAINS_APART,
    MIN_CHAINS_ELSEWHERE,
    MIN_ESS,
    MIN_MOVED_FRACTION,
    MIN_RUN_ESS,
)

__all__ = [
    "restart_sensitivity",
    "restart_starts",
    "run_restart_groups",
    "restart_verdict",
    "split_offsets",
]

# restart runs are thinned to about this many draws per chain
_DRAWS_PER_RESTART = 200


class RestartSetup(NamedTuple):
    """What every restart group is run and judged against."""

    run: object  # runners.Runner.run: the user's sampler from flat starts, in draws' space
    draws: Draws  # the user's posterior, in the space the sampler moves in
    user: np.ndarray  # the user's kept draws, (chain, draw/2, dim)
    center: np.ndarray  # their per-coordinate mean, (dim,)
    num_steps: int  # steps per restart chain
    max_points: int  # subsample size of the energy tests
    spread: np.ndarray  # their per-coordinate sd (whitens starts and split offsets), (dim,)
    baseline: float  # the largest split offset of the user's chains (inf: too short to split)


def restart_sensitivity(
    data,
    sampler=None,
    *,
    rng_key=None,
    reference=None,
    num_chains: int = 8,
    num_steps: int | None = None,
    scales=(3.0, 10.0, 100.0),
    max_points: int = 500,
    model_args=None,
    model_kwargs=None,
    num_warmup: int | None = None,
) -> CheckResult:
    """Re-run ``sampler`` from overdispersed starts (and from ``reference`` draws) and ask
    whether those chains end where the user's did.

    ``sampler``: the ``blackjax.SamplingAlgorithm`` of an ``rs.run`` tree, or a NumPyro
    ``MCMCKernel`` or ``MCMC``; when ``data`` is a NumPyro ``MCMC`` it may be left out and
    the run's own kernel is used. NumPyro runs are checked in the model's unconstrained
    latent space; their kernel is re-run (a copy, in a fresh ``MCMC``) with ``model_args`` /
    ``model_kwargs`` when given, else with the arguments of the user's ``MCMC.run``, and
    warms up for ``num_warmup`` steps (default: as long as the user's run, else
    ``num_steps``) before each restart run. See :mod:`robust_score.diagnostics.runners`.

    Starts are ``m + scale * sqrt(d) * s * u`` (``m``, ``s``: per-coordinate mean and sd of
    the user's draws, ``u`` a uniform random direction), one group of ``num_chains`` per
    scale, run for ``num_steps`` (default: as many steps as the user's run kept, at least
    200). Each group's second half is compared with the user's second half by an energy
    test; R-hat across all groups is reported. A trap with shared starts shows as a group
    that leaves and ends elsewhere.
    """
    if sampler is None and is_numpyro_mcmc(data):
        sampler = data  # a NumPyro run carries its own kernel
    skipped = skip_if_missing(RESTART, sampler)
    if skipped is not None:
        return skipped
    check_count(num_chains, "num_chains")
    check_count(max_points, "max_points", minimum=2)
    runner = as_runner(
        data, sampler, model_args=model_args, model_kwargs=model_kwargs, num_warmup=num_warmup
    )
    tree, draws = runner.tree, runner.draws
    if num_steps is None:
        thin = int(tree["posterior"].attrs.get("thin", 1))
        num_steps = max(_DRAWS_PER_RESTART, draws.flat.shape[1] * thin)
    check_count(num_steps, "num_steps")
    rng_key, rng = numpy_rng(rng_key)
    user = second_half(draws)
    center = pooled(user).mean(axis=0)
    spread = _user_spread(user, center)
    setup = RestartSetup(
        runner.run,
        draws,
        user,
        center,
        num_steps,
        max_points,
        spread,
        _baseline(user, center, spread),
    )
    rng_key, starts = restart_starts(rng_key, rng, setup, scales, num_chains, reference)
    pulled_in = {}  # NumPyro: starts past the model's float range, moved in until finite
    for label, group in starts.items():
        starts[label], pulled_in[label] = runner.pull_in(group, setup.center)
    setup = setup._replace(run=runner.for_groups(starts))  # NumPyro: one compiled run
    groups, chains = run_restart_groups(rng_key, rng, setup, starts)
    result = restart_verdict(groups, chains, rng, setup)
    result.details["sampler"] = runner.kind
    if runner.kind == "numpyro":
        result.details["num_warmup"] = num_steps if runner.num_warmup is None else runner.num_warmup
        result.details["starts_pulled_in"] = {k: n for k, n in pulled_in.items() if n}
    return result


def restart_starts(rng_key, rng, setup: RestartSetup, scales, num_chains, reference):
    """``(rng_key, {label: (num_chains, dim) flat starts})``: one overdispersed group per
    scale, plus one of ``reference`` draws when given."""
    spread = setup.spread
    dim = setup.draws.dim
    starts = {}
    for factor in scales:
        rng_key, key = jax.random.split(rng_key)
        # random directions at one standardized radius: in low dimension a Gaussian draw
        # can land near the center and restart inside the very region under test
        noise = np.asarray(jax.random.normal(key, (num_chains, dim)))
        directions = noise / np.linalg.norm(noise, axis=1, keepdims=True)
        starts[f"overdispersed x{factor:g}"] = (
            setup.center + factor * math.sqrt(dim) * spread * directions
        )
    if reference is not None:
        matrix = check_dim(as_sample_matrix(reference, "reference"), dim, "reference")
        index = rng.choice(len(matrix), size=min(num_chains, len(matrix)), replace=False)
        starts["reference draws"] = matrix[index]
    return rng_key, starts


def _user_spread(user: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Per-coordinate sd of the user's kept draws; a chain that never moved has sd 0, so
    fall back to a scale that still overdisperses and whitens."""
    spread = pooled(user).std(axis=0)
    return np.where(spread > 0, spread, np.maximum(1e-3, np.abs(center).mean()))


def _baseline(user: np.ndarray, center: np.ndarray, spread: np.ndarray) -> float:
    """The largest split offset of the user's chains, what a restart chain's is compared
    with; ``inf`` when the chains are too short to split."""
    if user.shape[1] < 4:
        return math.inf
    user_offset, _ = split_offsets(user, center, spread)
    return max(float(np.max(np.abs(user_offset))), 1e-300)


def split_offsets(chains: np.ndarray, center: np.ndarray, spread: np.ndarray):
    """Per chain ``(chain, draw, dim)``, how far its later draws sit from ``center`` along
    the direction its earlier draws point to, in units of ``spread`` per coordinate:
    ``(offset (chain,), direction (chain, dim))``.

    The direction comes from the chain's first half and the offset is the mean projection
    of its second half, so a chain's noise does not pick its own direction. A chain that
    samples what the user's chains sample gets an offset like theirs, however slowly they
    mix (a slow chain's halves are correlated, the user's chains' halves alike); a chain
    settled in a region the user's chains never visit gets the distance to that region.
    """
    white = (chains - center) / spread
    half = white.shape[1] // 2
    direction = white[:, :half].mean(axis=1)
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-300)
    return _offsets_along(chains[:, half:], center, spread, direction), direction


def chains_apart(user: np.ndarray, center: np.ndarray, spread: np.ndarray) -> int:
    """How many of the user's chains ``(chain, draw, dim)`` each mix where they are yet
    sit apart from the others: a split offset (:func:`split_offsets`) over
    ``ELSEWHERE_FACTOR`` times the chain's own sd along that direction, with ``MIN_ESS``
    effective draws there. A slowly mixing chain has a large offset too, but few effective
    draws; a chain held in its own well (a memorizing score, a mode) has both."""
    if user.shape[1] < 8:
        return 0
    offset, direction = split_offsets(user, center, spread)
    half = user.shape[1] // 2
    projected = np.einsum("cnd,cd->cn", (user[:, half:] - center) / spread, direction)
    own_sd = projected.std(axis=1)
    ess = np.array([effective_sample_size(p[None]) for p in projected])
    return int(np.sum((offset > ELSEWHERE_FACTOR * own_sd) & (ess >= MIN_ESS)))


def _offsets_along(chains, center, spread, direction) -> np.ndarray:
    """Each chain's mean whitened projection on its own ``direction``: ``(chain,)``."""
    return np.einsum("cnd,cd->c", (chains - center) / spread, direction) / chains.shape[1]


def run_restart_groups(rng_key, rng, setup: RestartSetup, starts: dict):
    """Run the sampler from each start group and judge it against the user's draws:
    ``({label: group details with its status}, [each group's finite chains])``."""
    groups, chains, candidates = {}, [], []
    for label, flat_starts in starts.items():
        rng_key, run_key, test_key = jax.random.split(rng_key, 3)
        restart = _run_group(setup, run_key, flat_starts)
        slices = setup.draws.slices
        comparison = compare(
            setup.user, restart, test_key, rng, setup.max_points, slices, len(starts)
        )
        if comparison is None:
            groups[label] = {"status": "warn", "note": "every restart chain diverged"}
            continue
        finite = np.isfinite(restart).all(axis=(1, 2))
        comparison["diverged_chains"] = int((~finite).sum())
        distances = np.linalg.norm(restart[finite] - setup.center, axis=-1)
        comparison["mean_distance"] = float(distances.mean() / math.sqrt(setup.draws.dim))
        comparison["group_rhat"] = rhat_1d(distances)
        candidates += _elsewhere_candidates(restart[finite], flat_starts[finite], setup, label)
        rng_key = _judge_group(
            comparison, restart[finite], flat_starts[finite], rng_key, rng, setup
        )
        groups[label] = comparison
        chains.append(match_length(restart[finite], setup.user.shape[1]))
    for label in groups:
        groups[label]["chains_elsewhere"] = 0
    for label, offset in _settled(rng_key, setup, candidates, len(next(iter(starts.values())))):
        groups[label]["chains_elsewhere"] += 1
        groups[label]["largest_chain_offset"] = max(
            offset, groups[label].get("largest_chain_offset", 0.0)
        )
    return groups, chains


class _Candidate(NamedTuple):
    """A restart chain that ended far from the user's chains, to be confirmed as settled."""

    label: str
    last: np.ndarray  # its last position, (dim,)
    direction: np.ndarray  # whitened direction of its first kept half, (dim,)
    offset: float  # its split offset over the user's largest


def _elsewhere_candidates(kept, kept_starts, setup: RestartSetup, label: str) -> list:
    """The group's chains that may have settled where the user's chains never go: a split
    offset (:func:`split_offsets`) ``ELSEWHERE_FACTOR`` times the largest of the user's own
    chains and at least ``ELSEWHERE_MIN_OFFSET`` of the user's sd, reached by covering
    ``ELSEWHERE_MIN_MOVED`` of the start's distance (a chain stuck far out where it started
    is not evidence; reference draws start in the target, so theirs need not move)."""
    if kept.shape[1] < 4 or not math.isfinite(setup.baseline):
        return []
    baseline = setup.baseline
    offset, direction = split_offsets(kept, setup.center, setup.spread)
    start_offsets = np.linalg.norm(kept_starts - setup.center, axis=-1)
    moved = np.linalg.norm(kept[:, -1] - kept_starts, axis=-1) / np.maximum(start_offsets, 1e-300)
    moved_enough = moved >= ELSEWHERE_MIN_MOVED if label != "reference draws" else True
    far = (offset > np.maximum(ELSEWHERE_FACTOR * baseline, ELSEWHERE_MIN_OFFSET)) & moved_enough
    return [
        _Candidate(label, kept[i, -1], direction[i], float(offset[i] / baseline))
        for i in np.flatnonzero(far)
    ]


def _settled(rng_key, setup: RestartSetup, candidates: list, group_size: int):
    """``[(label, offset)]`` of the candidates still as far out after running on for
    another ``setup.num_steps`` (losing under ``ELSEWHERE_MAX_DRIFT`` of their offset): a
    chain still on its way in keeps closing in, one settled in another region stays.
    Candidates run in batches of ``group_size`` chains, the shape the groups compiled."""
    if not candidates:
        return []
    baseline = setup.baseline
    thin = max(1, setup.num_steps // _DRAWS_PER_RESTART)
    settled = []
    for first in range(0, len(candidates), group_size):
        batch = candidates[first : first + group_size]
        starts = np.stack([c.last for c in batch])
        padded = np.concatenate([starts, np.repeat(starts[-1:], group_size - len(batch), 0)])
        rng_key, run_key = jax.random.split(rng_key)
        continued = setup.run(run_key, padded, setup.num_steps, thin)[: len(batch)]
        later = continued[:, continued.shape[1] // 2 :]
        directions = np.stack([c.direction for c in batch])
        finite = np.isfinite(later).all(axis=(1, 2))
        offsets = _offsets_along(np.where(finite[:, None, None], later, 0.0), setup.center,
                                 setup.spread, directions) / baseline  # fmt: skip
        for candidate, offset, ok in zip(batch, offsets, finite, strict=True):
            stays = offset >= (1 - ELSEWHERE_MAX_DRIFT) * candidate.offset
            beyond = offset * baseline > ELSEWHERE_MIN_OFFSET
            if ok and stays and beyond and offset > ELSEWHERE_FACTOR:
                settled.append((candidate.label, float(offset)))
    return settled


def _run_group(setup: RestartSetup, run_key, flat_starts) -> np.ndarray:
    """The second halves ``(chain, draw/2, dim)`` of the chains run from ``flat_starts``."""
    thin = max(1, setup.num_steps // _DRAWS_PER_RESTART)
    restart = setup.run(run_key, flat_starts, setup.num_steps, thin)
    return restart[:, restart.shape[1] // 2 :]


def _judge_group(comparison, kept, kept_starts, rng_key, rng, setup: RestartSetup):
    """Set ``comparison["status"]``: the comparison's verdict (kept before any downgrade as
    ``comparison["evidence"]``), downgraded to an inconclusive ``warn`` when the group is not
    self-consistent. Returns the advanced ``rng_key``."""
    status = energy_status(comparison)
    comparison["evidence"] = status
    if status in ("skipped", "unconverged"):
        comparison["status"] = status
        return rng_key
    # Only restarts that agree with each other are evidence against the user's chains;
    # restarts that have not converged themselves (a hard target, too few steps) are not:
    # the user-vs-restart effect must dwarf the effect between two halves of the group, on
    # the statistic that decided.
    if status == "fail" and len(kept) >= 2:
        rng_key, split_key = jax.random.split(rng_key)
        half = len(kept) // 2
        within = compare(kept[:half], kept[half:], split_key, rng, setup.max_points)
        statistics = within.get("statistics", {})  # none for too short restart chains
        effect = statistics.get(comparison["decided_by"], {}).get("effect", math.nan)
        comparison["within_group_coefficient"] = effect
        if comparison["coefficient"] < GROUP_AGREEMENT_FACTOR * effect:
            status = "warn"
            comparison["note"] = _DISAGREE
    # restarts that barely left their starting points (a sampler stuck far out in the
    # tails) say nothing about where the user's chains should be
    start_offsets = np.linalg.norm(kept_starts - setup.center, axis=-1)
    traveled = np.linalg.norm(kept[:, -1] - kept_starts, axis=-1)
    comparison["moved_fraction"] = float(np.median(traveled / np.maximum(start_offsets, 1e-300)))
    for inconclusive, note in (
        (comparison["moved_fraction"] < MIN_MOVED_FRACTION, "barely moved from their starts"),
        (comparison["group_rhat"] > MAX_GROUP_RHAT, "have not mixed among themselves"),
    ):
        if comparison["evidence"] == "fail" and inconclusive:
            status = "warn"
            comparison["note"] = f"restarts {note}: inconclusive"
    comparison["status"] = status
    return rng_key


_DISAGREE = "restarts disagree among themselves: inconclusive"


def restart_verdict(groups: dict, chains: list, rng, setup: RestartSetup) -> CheckResult:
    """The check's result: the worst group's status (``fail`` too when every group ends far
    from the user's draws, even if the groups disagree among themselves), the deciding
    group's effect, and the R-hat across the user's chains and every group's."""
    combined = np.concatenate([c for c in [setup.user, *chains] if len(c)], axis=0)
    rhat = per_variable_rhat(combined, rng)
    sqrt_d = math.sqrt(setup.draws.dim)
    user_distance = float(np.linalg.norm(setup.user - setup.center, axis=-1).mean() / sqrt_d)
    details = {
        "groups": groups,
        "rhat_across_groups": rhat,
        "user_mean_distance": user_distance,
        "num_steps": setup.num_steps,
        "max_points": setup.max_points,
    }
    reason = too_short(setup.user.shape[1])
    if reason is not None:
        return CheckResult(RESTART, "skipped", math.nan, math.nan, reason, details)
    judged = {label: g for label, g in groups.items() if "evidence" in g}
    if not judged:
        explanation = "every restart chain diverged"
        return CheckResult(RESTART, "warn", math.nan, ENERGY_FAIL, explanation + ".", details)
    status = worst_status(g["status"] for g in groups.values())
    typical_ess = np.median([g["ess"] for g in judged.values()])
    if status == "unconverged" and typical_ess >= MIN_RUN_ESS:
        status = "ok"  # the run's ESS, read in each group's frame, dipped in a few only
    # Groups that each end far from the user's draws are evidence even when they end in
    # different places (a multimodal target whose modes the restarts split between them,
    # which also raises the groups' R-hat): "inconclusive" stays when some group agrees with
    # the user, or when a group stayed near its starts (a sampler stuck in the tails).
    all_far = len(judged) >= 2 and all(
        g["evidence"] == "fail" and g["moved_fraction"] >= FAR_GROUP_MIN_MOVED
        for g in judged.values()
    )
    details["all_groups_far"] = all_far
    elsewhere = sum(g.get("chains_elsewhere", 0) for g in judged.values())
    details["chains_elsewhere"] = elsewhere
    settled_apart = elsewhere >= MIN_CHAINS_ELSEWHERE
    apart = chains_apart(setup.user, setup.center, setup.spread)
    details["user_chains_apart"] = apart
    held_apart = apart >= MIN_CHAINS_APART
    overridden = (all_far or settled_apart or held_apart) and status != "fail"
    if overridden:
        status = "fail"
    worst = max(judged, key=lambda label: _rank(judged[label], overridden))
    group = judged[worst]
    if status == "unconverged":
        explanation = unconverged_explanation(group)
    else:
        explanation = {
            "ok": f"no restart group ends away from your chains (largest: '{worst}', ",
            "warn": f"chains restarted from '{worst}' end somewhat differently from yours (",
            "fail": f"chains restarted from '{worst}' end elsewhere: your chains look trapped "
            "by where they started (",
        }[status] + describe(group)
        if status == "warn" and "note" in group:
            explanation += f"; {group['note']}"
        if overridden and held_apart and not (settled_apart or all_far):
            mix, own, cross = (
                ("mixes where it is but sits", "its", "crosses")
                if apart == 1
                else ("each mix where they are but sit", "their", "cross")
            )
            explanation = (
                f"{apart} of your {len(setup.user)} chains {mix} apart from the others, over "
                f"{ELSEWHERE_FACTOR:g} of {own} own sd away, and never {cross}: the draws' "
                "weights are set by where the chains started (chains held in separate modes "
                "or wells, e.g. at training points"
            )
        elif overridden and settled_apart and not all_far:
            explanation += (
                f"; {elsewhere} restart chains settled where none of your chains go, "
                f"{max(g.get('largest_chain_offset', 0.0) for g in judged.values()):.1f}x "
                "farther out than any of yours"
            )
        elif overridden:
            effects = [g["coefficient"] for g in judged.values()]
            explanation += (
                f"; every restart group ends away from them, effects {min(effects):.2g}-"
                f"{max(effects):.2g}, though the groups differ among themselves"
            )
        explanation += ")"
    statistic, threshold = group["coefficient"], group["threshold"]
    if status == "unconverged":
        statistic, threshold = group["ess"], MIN_ESS
    return CheckResult(RESTART, status, statistic, threshold, explanation + ".", details)


_ORDER = {"skipped": -1, "ok": 0, "unconverged": 1, "warn": 2, "fail": 3}


def _rank(group: dict, by_evidence: bool) -> tuple:
    """Which group a verdict names: the most severe (by its evidence before any downgrade
    when the run fails because every group is far), then the largest effect relative to
    its fail threshold; among groups that flag nothing, the nearest to significance."""
    status = group["evidence"] if by_evidence else group["status"]
    if status in ("warn", "fail"):
        return _ORDER[status], group["coefficient"] / group["threshold"]
    return _ORDER[status], -group["p_value"], group["decided_by"] == "joint"
