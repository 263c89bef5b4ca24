"""``trap_report``: run every check the inputs allow and say, in one table, whether a run
can be trusted."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import jax
import numpy as np
import xarray as xr

from robust_score.diagnostics.annealed import check_annealed
from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.inputs import Inputs, gather
from robust_score.diagnostics.memorization import MemorizationDetails, check_memorization
from robust_score.diagnostics.reference import check_reference
from robust_score.diagnostics.restart import check_restart
from robust_score.diagnostics.result import (
    ANNEALED,
    CHECK_NAMES,
    FINDINGS,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    STEP_SIZE,
    CheckResult,
    worst_status,
)
from robust_score.diagnostics.score_error import check_score_error
from robust_score.diagnostics.settings import DEFAULT_SETTINGS, Settings
from robust_score.diagnostics.step_size import StepSizeDetails, check_step_size

__all__ = ["CHECKS", "Check", "TrapReport", "run_checks", "trap_report"]


class Check(NamedTuple):
    """A check as the report runs it: ``run(draws, inputs, settings, rng_key)``, the
    :class:`~robust_score.diagnostics.inputs.Inputs` fields it needs (all of them), what to
    pass for them, and whether it reads chains or independent draws."""

    name: str
    run: Callable
    needs: tuple[str, ...]
    asks_for: str
    draws: str  # "chains", "independent" or "both"


#: Every check, once: what it needs and what it reads. ``trap_report`` loops over this.
CHECKS = (
    Check(
        RESTART,
        check_restart,
        ("runner",),
        "`sampler=` (the run's SamplingAlgorithm or NumPyro kernel)",
        "chains",
    ),
    Check(REFERENCE, check_reference, ("reference",), "`reference=` draws of the target", "both"),
    Check(
        ANNEALED,
        check_annealed,
        ("time_score_fn", "schedule"),
        "`time_score_fn=` and `schedule=`",
        "chains",
    ),
    Check(
        SCORE_ERROR,
        check_score_error,
        ("score_fn", "logdensity_fn"),
        "`score_fn=` and a trusted `logdensity_fn=`",
        "both",
    ),
    Check(MEMORIZATION, check_memorization, ("train_data",), "`train_data=`", "both"),
    Check(
        STEP_SIZE,
        check_step_size,
        ("step_size", "sampler_at"),
        "`step_size=` and `sampler_at=` (the sampler at another step size)",
        "chains",
    ),
    Check(
        STEP_SIZE,
        check_step_size,
        ("path", "time_score_fn"),
        "`sampler=` (the rs.ReverseDiffusion or rs.AnnealedLangevin settings that drew "
        "them) and `time_score_fn=`",
        "independent",
    ),
)

# the order in which findings of one status name the report: the most specific first
_FINDING_ORDER = (
    "memorizing",
    "trapped",
    "missed mass",
    "differs",
    "inherited weights",
    "discretization",
    "too few draws",
    "inconclusive",
    "none",
)


@dataclass
class TrapReport:
    """The checks' results, an overall ``status`` (the worst check that ran) and what it
    found (``finding``, a key of :data:`~robust_score.diagnostics.result.FINDINGS`).

    ``checks``: one :class:`CheckResult` per check, skipped ones included; ``report[name]``
    looks one up by name (``rs.diagnostics.RESTART``, ...), ``report.get(name)`` too but
    returns ``None`` for a missing one. ``unrun_requests``: checks whose inputs the user
    passed that could not run (a report with any is never ``ok``). ``seconds``: how long the
    report took. ``draws``: the parsed draws the checks read (what :meth:`plot` draws).
    """

    checks: list[CheckResult]
    seconds: float = math.nan
    draws: Draws | None = field(default=None, repr=False)
    unrun_requests: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        status = worst_status(c.status for c in self.checks)
        if status in ("ok", "skipped") and self.unrun_requests:
            return "warn"  # never ok while a check the user asked for did not run
        return status

    @property
    def finding(self) -> str:
        status = self.status
        ran = worst_status(c.status for c in self.checks)
        if status == "warn" and self.unrun_requests and ran in ("ok", "skipped"):
            return "inconclusive"
        if status == "skipped":
            return "skipped"
        findings = {c.finding for c in self.checks if c.status == status}
        return min(findings, key=_FINDING_ORDER.index)

    @property
    def headline(self) -> str:
        """``"FAIL: TRAPPED: ... (restart sensitivity); 3 of 6 checks ran"``."""
        ran = [c for c in self.checks if c.ran]
        named = [c.name for c in ran if c.status == self.status and c.finding == self.finding]
        text = f"{self.status.upper()}: {FINDINGS[self.finding]}"
        if named and self.finding != "none":
            text += f" ({', '.join(named)})"
        text += f"; {len(ran)} of {len(self.checks)} checks ran"
        if self.unrun_requests:
            text += f"; could not run what you asked for: {', '.join(self.unrun_requests)}"
        return text

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
            f"**trap report: {self.headline}**",
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
            f"Report took {self.seconds:.1f} s; settings and thresholds: `rs.diagnostics.Settings`."
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        width = max(len(c.name) for c in self.checks)
        rows = [f"TrapReport: {self.headline}"]
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
                "finding": ("check", [c.finding for c in self.checks]),
                "explanation": ("check", [c.explanation for c in self.checks]),
            },
            coords={"check": names},
            attrs={
                "overall_status": self.status,
                "finding": self.finding,
                "created_by": "robust_score.trap_report",
            },
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
    model_args=None,
    model_kwargs=None,
    rng_key=None,
    settings: Settings = DEFAULT_SETTINGS,
) -> TrapReport:
    """Run every trap and memorization check that the given inputs allow.

    ``data``: a DataTree (``rs.run``, ``az.from_numpyro``), a NumPyro ``MCMC``, or
    independent draws (an array ``(num_draws, ...)`` or a pytree of them, as
    ``rs.sample_batch`` returns: nothing is dropped as burn-in). A NumPyro run is read in
    the model's unconstrained space, latent sample sites only.

    - ``sampler``: restart sensitivity (a ``blackjax.SamplingAlgorithm`` for ``rs.run``
      trees, a NumPyro ``MCMCKernel``; an ``MCMC``'s own kernel by default, re-run with its
      model arguments or ``model_args``/``model_kwargs``). For independent draws: the
      ``rs.ReverseDiffusion`` / ``rs.AnnealedLangevin`` settings that drew them, for the
      check at twice the steps (with ``time_score_fn``);
    - ``reference``: draws of the target, compared directly and used as restart starts;
    - ``time_score_fn`` + ``schedule``: Langevin against reverse diffusion, at the noise
      level ``score_time`` the chains' score is at (a ``ScoreAtTime`` score supplies all
      three);
    - ``score_fn`` + trusted ``logdensity_fn``: score error along the chain;
    - ``train_data`` (+ ``holdout``, ``starts``): memorization, and whether the starts or
      the score hold the draws there;
    - ``step_size`` + ``sampler_at`` (``h -> sampler at step h``): tells an unadjusted
      sampler's discretization bias from a trap.

    ``settings``: :class:`~robust_score.diagnostics.Settings`, what the checks spend and
    their thresholds. Checks whose inputs are missing, or that do not apply to the draws,
    are listed as skipped with the reason; an input given without its partner raises.
    """
    started = time.perf_counter()
    draws, inputs = gather(
        data,
        sampler=sampler,
        score_fn=score_fn,
        time_score_fn=time_score_fn,
        schedule=schedule,
        score_time=score_time,
        logdensity_fn=logdensity_fn,
        reference=reference,
        train_data=train_data,
        holdout=holdout,
        starts=starts,
        step_size=step_size,
        sampler_at=sampler_at,
        model_args=model_args,
        model_kwargs=model_kwargs,
    )
    results, unrun = run_checks(draws, inputs, settings, rng_key)
    return TrapReport(
        [results[name] for name in CHECK_NAMES], time.perf_counter() - started, draws, unrun
    )


def run_checks(draws: Draws, inputs: Inputs, settings: Settings, rng_key=None, only=None):
    """Every check of :data:`CHECKS` (or the one named ``only``) that applies to ``draws``
    and has its inputs: ``({name: result}, names of checks the user asked for that could
    not run)``. Each check gets its own key of ``rng_key``, alone or in a report."""
    keys = jax.random.split(jax.random.key(0) if rng_key is None else rng_key, len(CHECK_NAMES))
    kind = "independent" if draws.independent else "chains"
    results, unrun = {}, []
    for name, key in zip(CHECK_NAMES, keys, strict=True):
        if only is not None and name != only:
            continue
        applies = [c for c in CHECKS if c.name == name and c.draws in (kind, "both")]
        ready = [check for check in applies if inputs.has(*check.needs)]
        if ready:
            results[name] = ready[0].run(draws, inputs, settings, key)
            if not results[name].ran:  # it could not run on these draws
                unrun.append(name)
            continue
        if applies:
            why = f"needs {applies[0].asks_for}."
        else:
            why = "does not apply to " + ("independent draws." if draws.independent else "chains.")
        results[name] = CheckResult.skipped(name, why)
        if any(_asked(check, inputs) for check in applies):
            unrun.append(name)
    if only is None:
        results = _combine(results, draws, inputs, settings, keys[CHECK_NAMES.index(ANNEALED)])
    return results, tuple(unrun)


def _asked(check: Check, inputs: Inputs) -> bool:
    """Whether the user passed any input of ``check`` (``runner`` and ``path`` come from
    ``sampler=``)."""
    names = {"runner": "sampler", "path": "sampler"}
    return any(names.get(need, need) in inputs.asked for need in check.needs)


def _combine(results: dict, draws: Draws, inputs: Inputs, settings: Settings, key) -> dict:
    """What one check's typed result adds to another's: a Langevin-vs-annealed gap that
    the step-size check's discretization bias explains, and a memorizing score behind
    flagged restarts. Returns new results; none is changed in place."""
    results = dict(results)
    annealed, step = results[ANNEALED], results[STEP_SIZE]
    if annealed.flagged and isinstance(step.details, StepSizeDetails) and step.details.bias:
        results[ANNEALED] = _discount_step_bias(
            annealed, step.details, draws, inputs, settings, key
        )
    memorization = results[MEMORIZATION]
    details = memorization.details
    if isinstance(details, MemorizationDetails) and details.pulled in ("warn", "fail"):
        contrast = details.contrast
        fresh = contrast is not None and math.isfinite(contrast.fresh_distance_ratio)
        ratio = contrast.fresh_distance_ratio if fresh else details.nearest.distance_ratio
        for name in (RESTART, ANNEALED):
            if results[name].flagged:
                results[name] = replace(
                    results[name],
                    explanation=(
                        f"{results[name].explanation[:-1]}; note that the memorization check "
                        f"finds a score that pulls every chain towards the training set "
                        f"({ratio:.2f}x the held-out distance): chains held near training points "
                        "are that score's doing, wherever they start."
                    ),
                )
    return results


def _discount_step_bias(annealed, step: StepSizeDetails, draws, inputs, settings, key):
    """Compare again with the draws' spread corrected by the bias the step-size check
    extrapolated (an O(h) bias of ULA scales the draws about their mean), anywhere within
    two of its standard errors: a gap that falls below a fail there is the step's (``warn``,
    "discretization"); one that stays keeps its status."""
    center = draws.points.mean(axis=0)
    error = abs(step.extrapolated_bias) / max(step.z, 1e-300)  # the bias's standard error
    percent = 100 * (math.exp(step.extrapolated_bias) - 1)
    for offset in (0.0, -1.0, 1.0, -2.0, 2.0):
        bias = step.extrapolated_bias + offset * error
        scale = math.exp(-bias / 2)  # the bias is in log variance
        corrected = draws._replace(flat=center + (draws.flat - center) * scale)
        if check_annealed(corrected, inputs, settings, key).status != "fail":
            explanation = (
                f"{annealed.explanation[:-1]}; corrected for the discretization bias that the "
                f"step-size check measured (about {percent:+.0f} % in variance, within two "
                "standard errors), your draws no longer fail against reverse diffusion: the "
                "gap is the step's, not a trap. Reduce the step size or use a "
                "Metropolis-adjusted sampler (MALA)."
            )
            return replace(
                annealed, status="warn", finding="discretization", explanation=explanation
            )
    explanation = (
        f"{annealed.explanation[:-1]}; the step-size check measured a discretization bias of "
        f"about {percent:+.0f} % in your draws' variance, and corrected for it your draws "
        "still differ from reverse diffusion: the bias does not explain the gap."
    )
    return replace(annealed, explanation=explanation)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"
