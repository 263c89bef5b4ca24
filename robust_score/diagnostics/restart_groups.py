"""Restart groups: run the user's sampler from other starts, judge each group against the
user's draws, and run on the groups that have not settled. Measures and grades one group at
a time; :mod:`~robust_score.diagnostics.restart` combines them."""

import math
from typing import NamedTuple

import jax
import numpy as np

from robust_score.diagnostics.comparison import Comparison, compare
from robust_score.diagnostics.grading import Grade, grade
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import rhat_1d

__all__ = ["Group", "Setup", "run_groups", "split_offsets"]

# why a group is inconclusive (Group.note)
DISAGREE = "restarts disagree among themselves"
UNMIXED = "restarts have not mixed among themselves"
BARELY_MOVED = "restarts barely moved from their starts"
# restart runs are thinned to about this many draws per chain
DRAWS_PER_RESTART = 200


class Setup(NamedTuple):
    """What every restart group is run and judged against."""

    run: object  # runners.Runner.run: the user's sampler from flat starts, in draws' space
    user: np.ndarray  # the user's kept draws, (chain, draw, dim)
    center: np.ndarray  # their per-coordinate mean, (dim,)
    spread: np.ndarray  # their per-coordinate sd (whitens starts and offsets), (dim,)
    baseline: float  # the largest split offset of the user's chains (inf: too short)
    num_steps: int  # steps per restart round
    slices: dict  # variable -> columns, for per-variable effects
    settings: Settings


class Group(NamedTuple):
    """One restart group after its last round. ``status`` is its grade's, downgraded to an
    inconclusive ``warn`` (with ``note``) when it is not self-consistent: restarts that
    disagree among themselves, barely moved from their starts, or have not mixed."""

    label: str
    status: str
    note: str
    comparison: Comparison | None
    grade: Grade | None
    chains: np.ndarray  # finite chains' kept draws of the last round, (chain, draw, dim)
    starts: np.ndarray  # where those chains started, (chain, dim)
    diverged: int
    moved_fraction: float
    rhat: float  # of the chains' distances to the user's mean
    within_effect: float  # the deciding statistic between the group's two halves
    mean_distance: float  # mean distance to the user's mean, over sqrt(d)
    rounds: int  # how many rounds it ran: 1 + the run-on rounds

    @property
    def evidence(self) -> str:
        """The grade before any downgrade (``"skipped"`` when nothing finite ran)."""
        return "skipped" if self.grade is None else self.grade.status

    @property
    def settled(self) -> bool:
        return not self.note


def split_offsets(chains: np.ndarray, center: np.ndarray, spread: np.ndarray):
    """Per chain ``(chain, draw, dim)``, how far its later draws sit from ``center`` along
    the direction its earlier draws point to, in units of ``spread``: ``(offset (chain,),
    direction (chain, dim))``. The direction comes from the chain's first half, so a
    chain's noise does not pick its own direction: a chain that samples what the user's
    sample gets an offset like theirs, one settled elsewhere the distance to there."""
    white = (chains - center) / spread
    half = white.shape[1] // 2
    direction = white[:, :half].mean(axis=1)
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-300)
    return offsets_along(chains[:, half:], center, spread, direction), direction


def offsets_along(chains, center, spread, direction) -> np.ndarray:
    """Each chain's mean whitened projection on its own ``direction``: ``(chain,)``."""
    return np.einsum("cnd,cd->c", (chains - center) / spread, direction) / chains.shape[1]


def run_groups(rng_key, rng, setup: Setup, starts: dict) -> list[Group]:
    """Run every start group, then run on those that have not settled, continuing their
    chains from where they stopped, for up to ``restart_rounds`` more rounds: far starts
    still travelling in arrive, and groups that disagree among themselves either come to
    agree or show that they settle apart."""
    groups = []
    for label, flat_starts in starts.items():
        rng_key, run_key, judge_key = jax.random.split(rng_key, 3)
        chains = _run(setup, run_key, flat_starts)
        groups.append(_judge(label, chains, flat_starts, 1, judge_key, rng, setup, len(starts)))
    for _ in range(setup.settings.restart_rounds):
        unsettled = [i for i, group in enumerate(groups) if not group.settled and len(group.chains)]
        if not unsettled:
            break
        # every unsettled group's chains continue together: one compiled run per round
        rng_key, run_key = jax.random.split(rng_key)
        lasts = [groups[i].chains[:, -1] for i in unsettled]
        continued = _run(setup, run_key, np.concatenate(lasts))
        bounds = np.cumsum([0] + [len(last) for last in lasts])
        for i, first, stop in zip(unsettled, bounds[:-1], bounds[1:], strict=True):
            group, chains = groups[i], continued[first:stop]
            rng_key, judge_key = jax.random.split(rng_key)
            groups[i] = _judge(
                group.label,
                chains,
                group.starts,
                group.rounds + 1,
                judge_key,
                rng,
                setup,
                len(starts),
            )
    return groups


def _run(setup: Setup, run_key, flat_starts) -> np.ndarray:
    """The second halves ``(chain, draw/2, dim)`` of chains run from ``flat_starts``."""
    thin = max(1, setup.num_steps // DRAWS_PER_RESTART)
    chains = setup.run(run_key, np.asarray(flat_starts), setup.num_steps, thin)
    return chains[:, chains.shape[1] // 2 :]


def _judge(label, chains, flat_starts, rounds, key, rng, setup: Setup, num_groups) -> Group:
    """The :class:`Group` of ``chains`` (kept draws) run from ``flat_starts``."""
    settings = setup.settings
    finite = np.isfinite(chains).all(axis=(1, 2))
    kept, kept_starts = chains[finite], np.asarray(flat_starts)[finite]
    nan = math.nan
    if not finite.any():
        return Group(label, "warn", "every restart chain diverged", None, None, kept,
                     kept_starts, diverged=len(chains), moved_fraction=nan, rhat=nan,
                     within_effect=nan, mean_distance=nan, rounds=rounds)  # fmt: skip
    compare_key, within_key = jax.random.split(key)
    comparison = compare(setup.user, kept, compare_key, rng, settings, setup.slices, num_groups)
    distances = np.linalg.norm(kept - setup.center, axis=-1)
    start_offsets = np.linalg.norm(kept_starts - setup.center, axis=-1)
    traveled = np.linalg.norm(kept[:, -1] - kept_starts, axis=-1)
    moved = float(np.median(traveled / np.maximum(start_offsets, 1e-300)))
    rhat = rhat_1d(distances)
    common = dict(
        chains=kept,
        starts=kept_starts,
        diverged=int((~finite).sum()),
        moved_fraction=moved,
        rhat=rhat,
        mean_distance=float(distances.mean() / math.sqrt(kept.shape[-1])),
        rounds=rounds,
    )
    if comparison is None:
        return Group(
            label,
            "warn",
            "too few restart draws to compare",
            None,
            None,
            within_effect=nan,
            **common,
        )
    measured = grade(comparison, settings)
    status, note, within = measured.status, "", nan
    if status == "fail" and len(kept) >= 2:
        # only restarts that agree with each other are evidence against the user's chains:
        # the user-vs-restart effect must dwarf the effect between two halves of the group
        half = len(kept) // 2
        halves = compare(kept[:half], kept[half:], within_key, rng, settings)
        if halves is not None:
            within = halves.statistics[measured.decided_by].effect
        if measured.effect < settings.apart_factor * within:
            status, note = "warn", DISAGREE
    if measured.status == "fail" and moved < settings.min_moved_fraction:
        status, note = "warn", BARELY_MOVED
    if measured.status == "fail" and rhat > settings.max_group_rhat:
        status, note = "warn", UNMIXED
    return Group(label, status, note, comparison, measured, within_effect=within, **common)
