"""``trap_report``: run every check the inputs allow and say, in one table, whether a run
can be trusted."""

import math
import time
from dataclasses import dataclass, field

import jax
import numpy as np
import xarray as xr

from robust_score.diagnostics._data import as_datatree, posterior_draws
from robust_score.diagnostics.annealed import annealed_cross_check
from robust_score.diagnostics.memorization import memorization_report
from robust_score.diagnostics.reference import reference_comparison
from robust_score.diagnostics.restart import restart_sensitivity
from robust_score.diagnostics.result import CheckResult, worst_status
from robust_score.diagnostics.score_error import score_error_along_chain

__all__ = ["TrapReport", "trap_report"]

_VERDICT = {
    "ok": "no sign of a trap",
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
                f"  {c.name:<{width}}  {c.status:<7}  stat {_fmt(c.statistic):>9}  "
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
    logdensity_fn=None,
    reference=None,
    train_data=None,
    holdout=None,
    starts=None,
    rng_key=None,
    num_restart_steps: int | None = None,
    model_args=None,
    model_kwargs=None,
) -> TrapReport:
    """Run every trap and memorization check that the given inputs allow.

    ``data``: a DataTree (``rs.run``, ``az.from_numpyro``) or a NumPyro ``MCMC``. Positions
    passed to ``sampler``, ``score_fn`` and ``logdensity_fn`` are rebuilt from the posterior
    (a lone ``x`` variable is an array, several variables a dict of sites; for NumPyro runs
    these are the constrained values).

    - ``sampler``: restart sensitivity (needs nothing else; flags a shared-start trap);
    - ``reference``: draws of the target, compared directly and used as restart starts;
    - ``time_score_fn`` + ``schedule``: cross-check against reverse diffusion;
    - ``score_fn`` + trusted ``logdensity_fn``: score error along the chain and KSD;
    - ``train_data`` (+ ``holdout``, ``starts``): memorization.

    Checks whose inputs are missing are listed as skipped, with what they need.
    """
    started = time.perf_counter()
    tree = as_datatree(data)
    posterior_draws(tree)  # validates the posterior once, before any check runs
    keys = jax.random.split(jax.random.key(0) if rng_key is None else rng_key, 5)
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
        annealed_cross_check(tree, time_score_fn, schedule, rng_key=keys[2]),
        score_error_along_chain(
            tree, score_fn, logdensity_fn, reference=reference, rng_key=keys[3]
        ),
        memorization_report(tree, train_data, holdout, starts, rng_key=keys[4]),
    ]
    return TrapReport(checks, time.perf_counter() - started, tree)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"
