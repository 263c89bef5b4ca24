"""``trap_report``: run every check the inputs allow and say, in one table, whether a run
can be trusted."""

import math
import time
from dataclasses import dataclass, field, replace

import jax
import numpy as np
import xarray as xr

from robust_score.diagnostics._data import as_datatree, is_numpyro_mcmc, posterior_draws
from robust_score.diagnostics.annealed import annealed_cross_check
from robust_score.diagnostics.memorization import memorization_report
from robust_score.diagnostics.reference import reference_comparison
from robust_score.diagnostics.restart import restart_sensitivity
from robust_score.diagnostics.result import CheckResult, worst_status
from robust_score.diagnostics.score_error import score_error_along_chain
from robust_score.diagnostics.step_size import step_size_sensitivity
from robust_score.scores.adapters import ScoreAtTime

__all__ = ["TrapReport", "trap_report"]

_VERDICT = {
    "ok": "no sign of a trap",
    "unconverged": "not converged: too few effective draws to judge; run the chains longer",
    "warn": "inconclusive: look at the flagged checks",
    "fail": "TRAPPED or memorizing: do not trust these draws",
    "skipped": "no check could run: pass a sampler, a score or reference draws",
}


@dataclass
class TrapReport:
    """The checks' results, an overall ``status`` (the worst check) and how to read them.

    ``checks``: one :class:`CheckResult` per check, skipped ones included; ``report[name]``
    looks one up by name (``rs.diagnostics.RESTART``, ...: the
    :data:`~robust_score.diagnostics.result.CHECK_NAMES`), ``report.get(name)`` too but
    returns ``None`` for a missing one. ``seconds``: how long the report took. ``draws``:
    the run the checks read, as a DataTree with its ``posterior`` group (what :meth:`plot`
    draws).
    """

    checks: list[CheckResult]
    seconds: float = math.nan
    draws: xr.DataTree | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return worst_status(c.status for c in self.checks)

    def get(self, name: str) -> CheckResult | None:
        """The check called ``name``, or ``None`` when the report has none."""
        return next((check for check in self.checks if check.name == name), None)

    def __getitem__(self, name: str) -> CheckResult:
        check = self.get(name)
        if check is None:
            raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")
        return check

    def to_markdown(self) -> str:
        lines = [
            f"**trap report: {self.status.upper()}** — {_VERDICT[self.status]}",
            "",
            "| check | status | statistic | threshold | explanation |",
            "|---|---|---|---|---|",
        ]
        for c in self.checks:
            lines.append(
                f"| {c.name} | {c.status} | {_fmt(c.statistic)} | {_fmt(c.threshold)} "
                f"| {c.explanation} |"
            )
        lines.append("")
        lines.append(
            "Quadratic statistics use at most 500 draws per sample (subsampled evenly); "
            f"report took {self.seconds:.1f} s."
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        width = max(len(c.name) for c in self.checks)
        rows = [f"TrapReport: {self.status.upper()} ({_VERDICT[self.status]})"]
        for c in self.checks:
            rows.append(
                f"  {c.name:<{width}}  {c.status:<11}  stat {_fmt(c.statistic):>9}  "
                f"thr {_fmt(c.threshold):>6}  {c.explanation}"
            )
        return "\n".join(rows)

    _repr_markdown_ = to_markdown

    def to_datatree(self) -> xr.DataTree:
        """A DataTree with a ``trap_diagnostics`` group (one entry per check), ready to attach
        to the run's tree::

            tree["trap_diagnostics"] = report.to_datatree()["trap_diagnostics"]
        """
        names = [c.name for c in self.checks]
        dataset = xr.Dataset(
            {
                "status": ("check", [c.status for c in self.checks]),
                "statistic": ("check", np.array([c.statistic for c in self.checks], float)),
                "threshold": ("check", np.array([c.threshold for c in self.checks], float)),
                "explanation": ("check", [c.explanation for c in self.checks]),
            },
            coords={"check": names},
            attrs={"overall_status": self.status, "created_by": "robust_score.trap_report"},
        )
        return xr.DataTree.from_dict({"trap_diagnostics": dataset})

    def plot(self, **kwargs):
        """Distance to the draws' mean, per start group (yours vs restarts vs reference), as
        an arviz-plots trace/rank figure; see :func:`robust_score.diagnostics.plots`."""
        from robust_score.diagnostics.plots import plot_trap_report

        return plot_trap_report(self, **kwargs)

    def plot_score_errors(self, **kwargs):
        """Histogram-like densities of log10 per-draw score error, yours vs the reference's
        (needs the score-error check); see :func:`robust_score.diagnostics.plots`."""
        from robust_score.diagnostics.plots import plot_score_errors

        return plot_score_errors(self, **kwargs)


def trap_report(
    data,
    *,
    sampler=None,
    score_fn=None,
    time_score_fn=None,
    schedule=None,
    score_time=None,
    logdensity_fn=None,
    reference=None,
    train_data=None,
    holdout=None,
    starts=None,
    step_size=None,
    sampler_at=None,
    rng_key=None,
    num_restart_steps: int | None = None,
    model_args=None,
    model_kwargs=None,
) -> TrapReport:
    """Run every trap and memorization check that the given inputs allow.

    ``data``: a DataTree (``rs.run``, ``az.from_numpyro``) or a NumPyro ``MCMC``. Positions
    passed to ``sampler``, ``score_fn`` and ``logdensity_fn`` are rebuilt from the posterior
    (a lone ``x`` variable is an array, several variables a dict of sites). A NumPyro run
    (an ``MCMC``, or an ``az.from_numpyro`` tree with its kernel as ``sampler``) is read in
    the model's unconstrained space, latent sample sites only: deterministic and observed
    sites are never handed to a sampler.

    - ``sampler``: restart sensitivity (needs nothing else; flags a shared-start trap). A
      ``blackjax.SamplingAlgorithm`` for ``rs.run`` trees, or a NumPyro ``MCMCKernel``; for
      an ``MCMC`` it defaults to the run's own kernel, re-run with the run's model arguments
      (or ``model_args``/``model_kwargs``);
    - ``reference``: draws of the target, compared directly and used as restart starts;
    - ``time_score_fn`` + ``schedule``: cross-check against reverse diffusion, at the noise
      level of the score the chains ran with: ``score_time``, else the level that the score
      carries when it is a :class:`robust_score.scores.ScoreAtTime` (``trained.score_fn``,
      ``rs.scores.at_time(...)``) given as ``score_fn`` or inside a NumPyro
      ``ScoreLangevin``; else the data (``t -> 0``). A ``ScoreAtTime`` as ``score_fn`` also
      supplies ``time_score_fn`` and ``schedule`` when they are not given;
    - ``score_fn`` + trusted ``logdensity_fn``: score error along the chain and KSD;
    - ``train_data`` (+ ``holdout``, ``starts``): memorization, which names what holds the
      draws there: the training starts (when every chain started at a training point, it
      runs ``sampler`` again from ``holdout`` rows, or from reverse-diffusion draws of
      ``time_score_fn``, to compare) or the score itself (fresh starts end there too);
    - ``step_size`` + ``sampler_at`` (``h -> sampler at step h``, e.g.
      ``lambda h: rs.ula(score_fn, h)``): step-size sensitivity, which tells an unadjusted
      sampler's discretization bias from a trap. When it finds such a bias, a flagged
      Langevin-vs-annealed check names it beside its own verdict.

    Checks whose inputs are missing are listed as skipped, with what they need; an input
    given without its partner (``time_score_fn`` without ``schedule``, ``score_fn`` without
    ``logdensity_fn`` unless it is a ``ScoreAtTime``, ``step_size`` without ``sampler_at``,
    ``holdout`` or ``starts`` without ``train_data``) raises.
    """
    if isinstance(score_fn, ScoreAtTime):
        time_score_fn = score_fn.time_score_fn if time_score_fn is None else time_score_fn
        schedule = score_fn.schedule if schedule is None else schedule
    score_time = _score_level(score_time, score_fn, sampler if sampler is not None else data)
    _check_pairs(
        time_score_fn=time_score_fn,
        schedule=schedule,
        score_fn=None if isinstance(score_fn, ScoreAtTime) and logdensity_fn is None else score_fn,
        logdensity_fn=logdensity_fn,
        step_size=step_size,
        sampler_at=sampler_at,
        holdout=holdout,
        starts=starts,
        train_data=train_data,
    )
    started = time.perf_counter()
    tree = as_datatree(data)
    posterior_draws(tree)  # validates the posterior once, before any check runs
    keys = jax.random.split(jax.random.key(0) if rng_key is None else rng_key, 6)
    checks = [
        restart_sensitivity(  # the MCMC itself, if given: it carries its kernel and arguments
            data,
            sampler,
            rng_key=keys[0],
            reference=reference,
            num_steps=num_restart_steps,
            model_args=model_args,
            model_kwargs=model_kwargs,
        ),
        reference_comparison(tree, reference, rng_key=keys[1]),
        annealed_cross_check(
            tree,
            time_score_fn,
            schedule,
            score_time=score_time,
            holdout=holdout,
            rng_key=keys[2],
        ),
        score_error_along_chain(
            tree, score_fn, logdensity_fn, reference=reference, rng_key=keys[3]
        ),
        memorization_report(
            data,
            train_data,
            holdout,
            starts,
            sampler=sampler if sampler is not None or not is_numpyro_mcmc(data) else data,
            time_score_fn=time_score_fn,
            schedule=schedule,
            score_time=score_time,
            model_args=model_args,
            model_kwargs=model_kwargs,
            rng_key=keys[4],
        ),
        step_size_sensitivity(tree, sampler_at, step_size, rng_key=keys[5]),
    ]
    checks[2] = _note_step_size_bias(checks[2], checks[5])
    for index in (0, 2):  # restart and Langevin vs annealed
        checks[index] = _note_memorizing_score(checks[index], checks[4])
    return TrapReport(checks, time.perf_counter() - started, tree)


# (input, the input it needs beside it): one given without the other raises
_PAIRS = (
    ("time_score_fn", "schedule"),
    ("schedule", "time_score_fn"),
    ("score_fn", "logdensity_fn"),
    ("logdensity_fn", "score_fn"),
    ("step_size", "sampler_at"),
    ("sampler_at", "step_size"),
    ("holdout", "train_data"),
    ("starts", "train_data"),
)


def _score_level(score_time, score_fn, sampler) -> float | None:
    """The time whose score the user's chains ran with: ``score_time`` when given, else the
    one a :class:`ScoreAtTime` carries, as ``score_fn`` or as a NumPyro kernel's score
    (``sampler`` may be the kernel or the ``MCMC`` that holds it)."""
    if score_time is not None:
        return score_time
    kernel = getattr(sampler, "sampler", sampler)  # an MCMC's kernel
    for candidate in (score_fn, getattr(kernel, "_score_fn", None)):
        if isinstance(candidate, ScoreAtTime):
            return candidate.time
    return None


def _check_pairs(**inputs) -> None:
    for given, needed in _PAIRS:
        if inputs[given] is not None and inputs[needed] is None:
            raise ValueError(
                f"`{given}=` was given without `{needed}=`: the check that uses it needs both."
            )


def _note_step_size_bias(annealed: CheckResult, step: CheckResult) -> CheckResult:
    """A flagged Langevin-vs-annealed result, with a note when the step-size check measured a
    discretization bias. The status stands: an unadjusted sampler's O(h) bias also separates
    its draws from reverse diffusion's, but so does a trap, and a sampler caught in a well
    shows an O(h) step dependence too; which one the gap is, the two numbers say."""
    if annealed.status not in ("warn", "fail") or not step.details.get("bias"):
        return annealed
    percent = 100 * (math.exp(step.details["extrapolated_bias"]) - 1)
    explanation = (
        f"{annealed.explanation[:-1]}; note that the step-size check measured a "
        f"discretization bias of about {percent:+.0f} % in your draws' variance: if the gap "
        "is no larger than that, rerun at a smaller step (or with MALA) before reading it as "
        "a trap."
    )
    return replace(
        annealed,
        explanation=explanation,
        details={**annealed.details, "step_bias": step.details["extrapolated_bias"]},
    )


def _note_memorizing_score(check: CheckResult, memorization: CheckResult) -> CheckResult:
    """A flagged restart or Langevin-vs-annealed result, with a note when the memorization
    check found a score that pulls every chain towards the training set. The status stands:
    chains held at training points do not sample a smooth law, but what holds them is the
    score, wherever they start, so the remedy is the score's, not the start's."""
    verdict = memorization.details.get("verdicts", {}).get("pulled towards the training set")
    if check.status not in ("warn", "fail") or verdict not in ("warn", "fail"):
        return check
    ratio = memorization.details.get("fresh_distance_ratio", memorization.details["distance_ratio"])
    explanation = (
        f"{check.explanation[:-1]}; note that the memorization check finds a score that pulls "
        f"every chain towards the training set ({ratio:.2f}x the held-out distance): chains "
        "held near training points are that score's doing, wherever they start."
    )
    return replace(check, explanation=explanation, details={**check.details, "memorizing": ratio})


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"
