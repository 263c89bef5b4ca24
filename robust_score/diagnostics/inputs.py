"""The user's other inputs, validated once into one typed object: the sampler (as a runner in
the draws' space), the scores, and the data sets, each as a ``(n, dim)`` matrix checked
against the draws."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from robust_score._checks import (
    check_callable,
    check_model_arguments,
    check_positive_scalar,
    check_time,
)
from robust_score.diagnostics.draws import Draws, as_sample_matrix, is_numpyro_mcmc, parse_draws
from robust_score.scores.adapters import ScoreAtTime

__all__ = ["Inputs", "gather"]

# (input, the input it needs beside it): one given without the other raises
_PAIRS = (
    ("time_score_fn", "schedule"),
    ("schedule", "time_score_fn"),
    ("score_fn", "logdensity_fn"),
    ("logdensity_fn", "score_fn"),
    ("step_size", "sampler_at"),
    ("sampler_at", "step_size"),
    ("starts", "train_data"),
)


@dataclass(frozen=True)
class Inputs:
    """Everything a check may read besides the draws; ``None`` where the user gave nothing.

    ``runner``: the user's sampler as a :class:`~robust_score.diagnostics.runners.Runner`
    over chains (``None`` for independent draws, or without a sampler); ``path``: the
    annealing settings (``rs.ReverseDiffusion``, ``rs.AnnealedLangevin``) that drew
    independent draws; ``reference_path``: the settings the Langevin-vs-annealed check
    draws with instead of the reverse SDE (a ``ScorePrior`` model's annealed posterior).
    Data sets are ``(n, dim)`` float64 matrices in the draws' space.
    """

    runner: Any = None
    path: Any = None
    score_fn: Any = None
    time_score_fn: Any = None
    schedule: Any = None
    score_time: float | None = None
    logdensity_fn: Any = None
    reference: np.ndarray | None = None
    train_data: np.ndarray | None = None
    holdout: np.ndarray | None = None
    starts: np.ndarray | None = None
    step_size: float | None = None
    sampler_at: Any = None
    reference_path: Any = None  # annealing settings the Langevin-vs-annealed check draws with
    asked: frozenset = frozenset()  # the inputs the user passed

    def has(self, *names: str) -> bool:
        return all(getattr(self, name) is not None for name in names)


def gather(data, **given) -> tuple[Draws, Inputs]:
    """Parse ``data`` once and validate every other input against it: ``(draws, inputs)``.

    Keywords: those of :func:`~robust_score.diagnostics.trap_report`. A ``ScoreAtTime`` as
    ``score_fn`` (or inside a NumPyro ``ScoreLangevin``) supplies ``time_score_fn``,
    ``schedule`` and ``score_time`` when they are not given. An input given without its
    partner raises, naming both.
    """
    sampler = given.pop("sampler", None)
    model_args, model_kwargs = given.pop("model_args", None), given.pop("model_kwargs", None)
    check_model_arguments(model_args, model_kwargs)
    annealing = hasattr(sampler, "schedule") and hasattr(sampler, "t_start")
    if annealing and given.get("schedule") is None and given.get("time_score_fn") is not None:
        given["schedule"] = sampler.schedule  # annealing settings carry their schedule
    score_fn = given.get("score_fn")
    if isinstance(score_fn, ScoreAtTime) or isinstance(_kernel_score(sampler, data), ScoreAtTime):
        level = score_fn if isinstance(score_fn, ScoreAtTime) else _kernel_score(sampler, data)
        for name, value in (
            ("time_score_fn", level.time_score_fn),
            ("schedule", level.schedule),
            ("score_time", level.time),
        ):
            given[name] = value if given.get(name) is None else given[name]
    if isinstance(score_fn, ScoreAtTime) and given.get("logdensity_fn") is None:
        given["score_fn"] = None  # it carries a time score, not a score to check against one
    for name, needed in _PAIRS:
        if given.get(name) is not None and given.get(needed) is None:
            raise ValueError(
                f"`{name}=` was given without `{needed}=`: the check that uses it needs both."
            )
    if given.get("holdout") is not None and not any(
        given.get(name) is not None for name in ("train_data", "time_score_fn")
    ):
        raise ValueError(
            "`holdout=` was given without `train_data=` or `time_score_fn=`: the checks that "
            "read held-out data are memorization (with `train_data=`) and Langevin vs "
            "annealed (with `time_score_fn=`)."
        )
    asked = frozenset(name for name, value in given.items() if value is not None)
    draws, runner, path = _draws_and_sampler(data, sampler, model_args, model_kwargs)
    if sampler is not None or is_numpyro_mcmc(data):
        asked |= {"sampler"}
    reference = None  # a ScorePrior model's annealed posterior, at the runner's arguments
    if given.get("time_score_fn") is None and runner is not None and runner.model is not None:
        from robust_score.numpyro.posterior import annealed_reference

        reference = annealed_reference(runner.model, runner.model_args, runner.model_kwargs)
    if reference is not None:
        given["time_score_fn"], given["schedule"], _ = reference
        asked |= {"time_score_fn", "schedule"}
    matrices = {
        name: _matrix(given.get(name), name, draws.dim)
        for name in ("reference", "train_data", "holdout", "starts")
    }
    _check_scalars(given, draws)
    inputs = Inputs(
        runner=runner,
        path=path,
        reference_path=None if reference is None else reference[2],
        **{**given, **matrices},
        asked=asked,
    )
    return draws, inputs


def _draws_and_sampler(data, sampler, model_args, model_kwargs):
    """``(draws, runner, path)``: the draws in the space the sampler moves in."""
    from robust_score.diagnostics.runners import as_runner
    from robust_score.kernels._annealing import AnnealingPath

    if isinstance(sampler, AnnealingPath):
        return parse_draws(data), None, sampler
    if sampler is None and not is_numpyro_mcmc(data):
        return parse_draws(data), None, None
    draws = parse_draws(data) if not is_numpyro_mcmc(data) else None
    if draws is not None and draws.independent:
        raise TypeError(
            "`sampler=` with independent draws must be the settings that drew them "
            "(rs.ReverseDiffusion or rs.AnnealedLangevin), for the check at twice the steps; "
            f"got {type(sampler).__name__}."
        )
    runner = as_runner(data, sampler, model_args=model_args, model_kwargs=model_kwargs)
    return runner.draws, runner, None


def _kernel_score(sampler, data):
    kernel = sampler if sampler is not None else data
    kernel = getattr(kernel, "sampler", kernel)  # an MCMC's kernel
    return getattr(kernel, "_score_fn", None)


def _matrix(value, name: str, dim: int):
    if value is None:
        return None
    matrix = as_sample_matrix(value, name)
    if matrix.shape[1] != dim:
        raise ValueError(
            f"`{name}` has {matrix.shape[1]} entries per point but the draws have {dim}."
        )
    return matrix


def _check_scalars(given: dict, draws: Draws) -> None:
    for name in ("score_fn", "logdensity_fn"):
        if given.get(name) is not None:
            check_callable(given[name], name, f"{name}(position)")
    if given.get("sampler_at") is not None:
        check_callable(given["sampler_at"], "sampler_at", "sampler_at(step_size)")
    if given.get("step_size") is not None:
        check_positive_scalar(given["step_size"], "step_size")
    if given.get("score_time") is not None and given.get("schedule") is not None:
        check_time(given["schedule"], given["score_time"], "score_time")
