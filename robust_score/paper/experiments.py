"""The paper's learned-score experiments (Section 5 of Cao, Chen, Sridharan & Wu, ICML 2026).

- target N(1, 2I), d = 50, metric: KL(fit || target) of a *diagonal* Gaussian fitted to the
  chains (30 chains cannot fit a full 50 x 50 covariance);
- target 1/2 N(-1, 2I) + 1/2 N(4 * 1, 2I), d = 25, metric: sliced W2 (64 random directions,
  1-D W2 by quantile matching against 2000 target draws) — not exact W2.

For each, a DSM MLP (:func:`robust_score.learn.train_dsm`, VP schedule, trained on
t in [t(sigma = 0.1), T], so every sampler stops at sigma = 0.1) is fitted to 1000 target
samples duplicated x10; then 1000 ULA steps with the score at sigma = 0.1 from three starts
(30 chains each): N(0, I) ("vanilla"), fresh target samples, and training samples; plus
reverse SDE (VP) and annealed Langevin with the same learned time score. Annealed Langevin
runs on a VE schedule (the learned VP score re-expressed exactly, :func:`as_ve_score`) with
the library's default 10 moves per level: its step rules scale with sigma^2, which under VP
barely moves the low levels, and with the exact score 100 levels x 2 moves (VP, snr 0.16)
left the mixture at mode weights 0.75 / 0.25 and the per-mode means at -0.55 and 2.2
(1000 draws), and VE with 2 moves per level overdispersed both targets 2.5-fold. Each
experiment's notes give the same diffusion samplers driven by the exact noised score (same
key, same number of draws) and the finite-sample floor of the metric with exact draws, so
that sampler error, score error and 30-draw noise can be told apart. Every sampler runs
``num_repeats`` times (5; new starts, training subset and noise each time, the same network)
and a row is the mean +- sd over them. Numbers are reported as measured, never tuned towards
the paper.
"""

import collections
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs
from robust_score.learn import TrainedScore, TrainingSettings
from robust_score.paper.metrics import (
    kl_diagonal_fit,
    metric_floor,
    nearest_distance,
    sliced_w2,
)
from robust_score.paper.records import Curve, DiffusionSampler, Row, Run

__all__ = [
    "TARGETS",
    "GaussianTarget",
    "LearnedResult",
    "MixtureTarget",
    "Notes",
    "Settings",
    "as_ve_score",
    "learned_score_experiment",
]


NUM_REFERENCE = 2000  # target draws the metrics compare against
LOW_SIGMA = 0.1  # the network is trained on sigma in [LOW_SIGMA, 1]; every sampler stops there
# annealed Langevin's VE schedule starts at sigma = 50, inside the trained range (VP's T is
# sigma / alpha = 150); its step rule is the snr rule at this snr
VE_SIGMA_MAX = 50.0
SNR = 0.16


@dataclass(frozen=True)
class Settings:
    """Sizes of the learned-score experiments (``quick()``: ``robust-score reproduce --quick``)."""

    num_train: int = 1000
    duplicate: int = 10
    train_steps: int = 20000
    hidden: tuple[int, ...] = (256, 256, 256)
    batch_size: int = 256
    langevin_steps: int = 1000
    step_size: float = 0.01
    num_chains: int = 30
    diffusion_steps: int = 200
    annealed_steps_per_level: int = 10
    record_every: int = 50
    num_repeats: int = 5

    @classmethod
    def quick(cls):
        return cls(train_steps=1500, hidden=(128, 128), langevin_steps=300, diffusion_steps=100,
                   record_every=30, num_repeats=2)  # fmt: skip


@dataclass(frozen=True)
class GaussianTarget:
    """``N(mean 1, variance I)`` in ``dim`` dimensions; metric: KL of a diagonal fit."""

    mean: float = 1.0
    variance: float = 2.0
    dim: int = 50
    slug: str = "gaussian"
    metric_name: str = "KL (diag. Gaussian fit)"

    @property
    def name(self) -> str:
        return f"Gaussian N({self.mean:g}, {self.variance:g}I), d={self.dim}"

    def sample(self, rng_key, n: int):
        return self.mean + math.sqrt(self.variance) * jax.random.normal(rng_key, (n, self.dim))

    def exact_score(self, schedule):
        """The target's exact time score noised under ``schedule``."""
        return rs.scores.gaussian(np.full(self.dim, self.mean), self.variance, schedule=schedule)

    def metric(self, points, reference) -> float:
        del reference  # the KL is to the target itself
        return kl_diagonal_fit(points, self.mean, self.variance)


@dataclass(frozen=True)
class MixtureTarget:
    """``1/2 N(low 1, variance I) + 1/2 N(high 1, variance I)`` in ``dim`` dimensions;
    metric: sliced W2 against reference draws."""

    low: float = -1.0
    high: float = 4.0
    variance: float = 2.0
    dim: int = 25
    slug: str = "mixture"
    metric_name: str = "sliced W2"

    @property
    def name(self) -> str:
        v = f"{self.variance:g}I"
        return f"mixture 1/2 N({self.low:g}, {v}) + 1/2 N({self.high:g}, {v}), d={self.dim}"

    def sample(self, rng_key, n: int):
        key_pick, key_noise = jax.random.split(rng_key)
        center = jnp.where(jax.random.bernoulli(key_pick, 0.5, (n, 1)), self.low, self.high)
        return center + math.sqrt(self.variance) * jax.random.normal(key_noise, (n, self.dim))

    def exact_score(self, schedule):
        """The target's exact time score noised under ``schedule``."""
        means = np.stack([np.full(self.dim, self.low), np.full(self.dim, self.high)])
        return rs.scores.gaussian_mixture(np.full(2, 0.5), means, self.variance, schedule=schedule)

    def metric(self, points, reference) -> float:
        return sliced_w2(points, reference)


TARGETS = (GaussianTarget(), MixtureTarget())


@dataclass(frozen=True)
class Notes:
    """What a learned-score experiment reports besides its rows: the training, where the
    chains end relative to the training set, the metric's floor and the exact-score control."""

    training: TrainingSettings
    final_loss: float
    # median distance / sqrt(d) of the chains' last draws to the nearest training point;
    # fresh target draws show what a chain that has forgotten its start would read
    nn_train_of_training_start_chains: float
    nn_train_of_fresh_start_chains: float
    nn_train_of_fresh_draws: float
    floor: str  # "<metric> of <n> exact draws ..." : "mean +- sd"
    floor_mean: float
    floor_sd: float
    control: dict[str, tuple[float, float]] | None  # diffusion sampler -> (mean, sd)

    def items(self) -> list[tuple[str, object]]:
        """``(label, value)`` in the order ``table.md`` lists them; ``control`` as a dict
        (sampler label -> "mean +- sd"), a nested list there."""
        items = [
            ("training", self.training),
            ("final_loss", self.final_loss),
            ("nn_train_of_training_start_chains", self.nn_train_of_training_start_chains),
            ("nn_train_of_fresh_start_chains", self.nn_train_of_fresh_start_chains),
            ("nn_train_of_fresh_draws", self.nn_train_of_fresh_draws),
            (self.floor, f"{self.floor_mean:.3f} +- {self.floor_sd:.3f}"),
        ]
        if self.control is not None:
            control = {label: f"{m:.3f} +- {sd:.3f}" for label, (m, sd) in self.control.items()}
            items.append(("control: the same diffusion runs with the exact noised score", control))
        return items


class LearnedResult(NamedTuple):
    """``rows`` (one per sampler and start), ``curves`` (start -> the metric along ULA, mean
    over repeats) and ``notes``."""

    rows: list[Row]
    curves: dict[str, Curve]
    notes: Notes


def as_ve_score(time_score_fn, vp_schedule, ve_schedule):
    """A VP time score re-expressed on ``ve_schedule``: the VP marginal at ``t`` is the VE
    marginal at ``sigma_ve = sigma(t) / alpha(t)`` scaled by ``alpha(t)``, so
    ``s_ve(y, tau) = alpha s_vp(alpha y, t)`` with ``alpha = 1 / sqrt(1 + sigma_ve^2)`` and
    ``sigma(t) = sigma_ve alpha``. Exact for any score (no retraining), so the same learned
    network drives annealed Langevin on the schedule its step rules are made for."""

    def score(y, tau):
        sigma_ve = ve_schedule.sigma(tau)
        alpha = 1.0 / jnp.sqrt(1.0 + sigma_ve**2)
        t = vp_schedule.t_of_sigma(sigma_ve * alpha).astype(y.dtype)
        return alpha * time_score_fn(alpha * y, t)

    return score


def learned_score_experiment(target, settings: Settings, key, *, control: bool = True):
    """Train a DSM score on draws of ``target`` (a :class:`GaussianTarget` or
    :class:`MixtureTarget`), run every sampler ``settings.num_repeats`` times and return a
    :class:`LearnedResult`. With ``control``, the notes also hold the diffusion samplers run
    with the target's exact noised score."""
    key_train, key_ref, key_run, key_fit = jax.random.split(key, 4)
    train = target.sample(key_train, settings.num_train)
    reference = np.asarray(target.sample(key_ref, NUM_REFERENCE))
    schedule, trained = _train(train, settings, key_fit)
    samplers = _diffusion_samplers(schedule, settings)
    experiment = _Experiment(target, settings, schedule, samplers, train, reference, key_run)
    runs, curves, chain_ends = _run_repeats(experiment, trained)
    thin = settings.record_every
    steps = thin * (np.arange(settings.langevin_steps // thin) + 1)
    curves = {label: Curve(steps, np.mean(c, axis=0)) for label, c in curves.items()}
    floor = metric_floor(
        target.sample, target.metric, reference, settings.num_chains, jax.random.fold_in(key_ref, 1)
    )
    notes = _notes(experiment, trained, chain_ends, floor, control)
    return LearnedResult(_rows(target, runs), curves, notes)


class _Experiment(NamedTuple):
    """What every run of one learned-score experiment shares."""

    target: GaussianTarget | MixtureTarget
    settings: Settings
    schedule: object  # the VP schedule the network was trained under, ending at LOW_SIGMA
    samplers: tuple[DiffusionSampler, ...]
    train: jax.Array
    reference: np.ndarray
    key_run: jax.Array


def _train(train, settings: Settings, key) -> tuple[object, TrainedScore]:
    # the network is trained on sigma in [0.1, 1] only, so the samplers must stop at
    # sigma = 0.1: make that the schedule's t_min (and finish with a Tweedie step)
    low_t = float(rs.schedules.vp().t_of_sigma(LOW_SIGMA))
    schedule = rs.schedules.vp(t_min=low_t)
    trained = rs.learn.train_dsm(
        jnp.tile(train, (settings.duplicate, 1)),  # the paper's x10 duplication
        schedule,
        rng_key=key,
        num_steps=settings.train_steps,
        batch_size=settings.batch_size,
        hidden=settings.hidden,
        t_range=(low_t, schedule.T),
        score_time=low_t,
        progress_bar=False,
    )
    return schedule, trained


def _diffusion_samplers(schedule, settings: Settings) -> tuple[DiffusionSampler, ...]:
    """The reverse SDE under ``schedule`` and annealed Langevin under VE, both ending at
    ``sigma / alpha`` of ``schedule.t_min`` (0.1005)."""
    low_t = schedule.t_min
    sigma_min = float(schedule.sigma(low_t) / schedule.alpha(low_t))
    ve_schedule = rs.schedules.ve(sigma_min=sigma_min, sigma_max=VE_SIGMA_MAX, t_min=0.0)
    levels, per_level = settings.diffusion_steps // 2, settings.annealed_steps_per_level
    return (
        DiffusionSampler(
            "reverse SDE (VP)", rs.ReverseDiffusion(schedule, settings.diffusion_steps, "sde")
        ),
        DiffusionSampler(
            f"annealed Langevin (VE, snr {SNR}, {levels} x {per_level})",
            rs.AnnealedLangevin(ve_schedule, levels, per_level, snr=SNR),
        ),
    )


def _run_repeats(experiment: _Experiment, trained: TrainedScore):
    """Every sampler ``num_repeats`` times with fresh randomness (starts, training subset,
    noise): with 30 chains one run's metric is noisy, so rows are mean +- sd over repeats.
    Returns ``(sampler, start) -> [Run]``, ``start -> [curve]`` and ``start -> [last draws]``."""
    target, settings, train = experiment.target, experiment.settings, experiment.train
    ula = rs.ula(trained.score_fn, settings.step_size)
    scores = {
        s.label: _on_schedule(experiment, s, trained.time_score_fn) for s in experiment.samplers
    }
    runs = collections.defaultdict(list)
    curves, chain_ends = collections.defaultdict(list), collections.defaultdict(list)
    n = settings.num_chains
    for repeat in range(settings.num_repeats):
        key_start, key_fresh, key_noise, key_diffusion = _repeat_keys(experiment.key_run, repeat)
        starts = {
            "vanilla N(0, I)": jax.random.normal(key_start, (n, target.dim)),
            "fresh samples": target.sample(key_fresh, n),
            "training samples": train[(repeat * n) % len(train) :][:n],
        }
        for label, positions in starts.items():
            curve, ends, run = _langevin_run(experiment, ula, positions, key_noise)
            curves[label].append(curve)
            chain_ends[label].append(ends)
            runs[(f"ULA h={settings.step_size}", label)].append(run)
        for sampler in experiment.samplers:
            run = _diffusion_run(experiment, sampler, scores[sampler.label], key_diffusion)
            runs[(sampler.label, "noise")].append(run)
    return runs, curves, chain_ends


def _langevin_run(experiment: _Experiment, ula, positions, key):
    """The metric along one ULA run (one value per kept draw), its last draws and its
    :class:`Run`."""
    settings, target = experiment.settings, experiment.target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # divergent chains are counted in the table
        tree = rs.run(ula, key, positions, settings.langevin_steps, thin=settings.record_every)
    draws = tree.posterior["x"].values  # (chain, draw, dim)
    curve = [target.metric(draws[:, i], experiment.reference) for i in range(draws.shape[1])]
    diverged = int(tree.sample_stats["diverging"].values[:, -1].sum())
    return curve, draws[:, -1], Run(curve[-1], settings.langevin_steps, diverged)


def _on_schedule(experiment: _Experiment, sampler: DiffusionSampler, time_score_fn):
    """The VP ``time_score_fn`` on ``sampler``'s schedule (re-expressed if that is not the VP
    one). Built once per sampler and score, so that every repeat reuses one compiled sampler."""
    if sampler.schedule is experiment.schedule:
        return time_score_fn
    return as_ve_score(time_score_fn, experiment.schedule, sampler.schedule)


def _diffusion_run(experiment: _Experiment, sampler: DiffusionSampler, time_score_fn, key):
    """``num_chains`` draws of ``sampler`` driven by ``time_score_fn`` (already on the
    sampler's schedule, :func:`_on_schedule`); the metric on the finite ones."""
    num_draws, dim = experiment.settings.num_chains, experiment.target.dim
    draws, evals = sampler.draw(key, time_score_fn, num_draws, dim)
    draws = np.asarray(draws)
    finite = np.isfinite(draws).all(axis=1)
    value = experiment.target.metric(draws[finite], experiment.reference)
    return Run(value, evals, int((~finite).sum()))


def _rows(target, runs) -> list[Row]:
    rows = []
    for (sampler, start), results in runs.items():
        values = np.array([r.value for r in results])
        rows.append(
            Row(target.name, sampler, start, target.metric_name, float(values.mean()),
                score_evals=results[0].score_evals,
                diverged_chains=sum(r.diverged_chains for r in results),
                sd=_sd(values), repeats=len(values))
        )  # fmt: skip
    return rows


def _notes(experiment: _Experiment, trained: TrainedScore, chain_ends, floor, control) -> Notes:
    target, settings, train = experiment.target, experiment.settings, experiment.train

    def nn_train(points):
        distances = nearest_distance(points, train)
        return float(np.median(distances)) / math.sqrt(target.dim)

    return Notes(
        training=trained.settings,
        final_loss=float(trained.losses[-50:].mean()),
        nn_train_of_training_start_chains=nn_train(np.vstack(chain_ends["training samples"])),
        nn_train_of_fresh_start_chains=nn_train(np.vstack(chain_ends["fresh samples"])),
        nn_train_of_fresh_draws=nn_train(experiment.reference),
        floor=(
            f"floor: {target.metric_name} of {settings.num_chains} exact draws "
            "(mean, sd over 200 sets)"
        ),
        floor_mean=floor[0],
        floor_sd=floor[1],
        control=_control(experiment) if control else None,
    )


def _control(experiment: _Experiment) -> dict[str, tuple[float, float]]:
    """The diffusion samplers with the exact noised score, with the keys of the learned runs:
    sampler label -> (mean, sd) of the metric over the repeats."""
    exact = experiment.target.exact_score(experiment.schedule)
    repeats = range(experiment.settings.num_repeats)
    control = {}
    for sampler in experiment.samplers:
        score = _on_schedule(experiment, sampler, exact)
        values = [
            _diffusion_run(experiment, sampler, score, _repeat_keys(experiment.key_run, r)[3]).value
            for r in repeats
        ]
        control[sampler.label] = (float(np.mean(values)), _sd(values))
    return control


def _repeat_keys(key_run, repeat):
    """Keys of one repeat: vanilla starts, fresh starts, Langevin noise, diffusion."""
    return jax.random.split(jax.random.fold_in(key_run, repeat), 4)


def _sd(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
