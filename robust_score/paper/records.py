"""The typed records the paper's applications pass around: a table row, a sampler that
anneals from noise, one run's outcome, a Langevin curve."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

import robust_score as rs
from robust_score.schedules import Schedule

__all__ = ["Curve", "DiffusionSampler", "Row", "Run"]


@dataclass(frozen=True)
class Row:
    """One line of the ``demo`` and ``reproduce`` tables (and of ``results.csv``).

    ``value`` is the ``metric`` read on the draws of ``sampler`` started from ``start``;
    ``target`` what it reads on the target (construction rows). Fields that a kind of row
    does not have are ``None`` (an empty cell in the CSV): ``sd`` and ``repeats`` belong to
    the learned-score rows (mean +- sd over repeats), ``target``, ``verdict``, ``l2_error``
    (relative L2 error of the score) and ``max_rhat`` (NaN for samplers without chains) to
    the construction rows.
    """

    experiment: str
    sampler: str
    start: str
    metric: str
    value: float
    target: float | None = None
    score_evals: int = 0
    diverged_chains: int = 0
    verdict: str | None = None
    sd: float | None = None
    repeats: int | None = None
    l2_error: float | None = None
    max_rhat: float | None = None


class DiffusionSampler(NamedTuple):
    """A sampler that anneals from noise, as the tables name it: ``label`` and its settings
    (a :class:`robust_score.ReverseDiffusion` or :class:`robust_score.AnnealedLangevin`)."""

    label: str
    settings: rs.ReverseDiffusion | rs.AnnealedLangevin

    @property
    def schedule(self) -> Schedule:
        return self.settings.schedule

    def draw(self, rng_key, time_score_fn, num_draws: int, dim: int):
        """``num_draws`` independent draws in ``dim`` dimensions, and the score evaluations
        each cost."""
        draws, info = rs.sample_batch(
            rng_key, time_score_fn, self.settings, num_draws, (dim,), return_info=True
        )
        return draws, int(np.asarray(info.num_score_evals).reshape(-1)[0])


class Run(NamedTuple):
    """One run of one sampler from one start: the metric, the score evaluations per chain (or
    per draw) and the number of chains that diverged."""

    value: float
    score_evals: int
    diverged_chains: int


class Curve(NamedTuple):
    """A metric along Langevin steps: ``values[i]`` after ``steps[i]`` steps."""

    steps: np.ndarray
    values: np.ndarray
