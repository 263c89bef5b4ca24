"""Figures for trap reports, drawn with arviz-plots. They read only a report's public
attributes: ``checks`` (through ``report.get``) and ``draws``."""

import numpyro  # isort: skip  # noqa: F401  (before ArviZ: see robust_score/__init__.py)
import numpy as np
import xarray as xr
from arviz_base import from_dict

from robust_score.diagnostics.result import RESTART, SCORE_ERROR

__all__ = ["plot_trap_report", "plot_score_errors", "distance_tree"]


def distance_tree(report) -> xr.DataTree:
    """``||x - m|| / sqrt(d)`` per chain and draw of the user's run (``m``: the mean of its
    second halves), as a DataTree with the variable ``distance_to_mean``."""
    draws = report.draws
    center = draws.points.mean(axis=0)
    distance = np.linalg.norm(draws.flat - center, axis=-1) / np.sqrt(draws.dim)
    return from_dict({"posterior": {"distance_to_mean": distance}})


def plot_trap_report(report, **kwargs):
    """Trace and distribution of the chains' distance to their mean, with the restart groups'
    and reference's mean distances marked: a trapped run's trace sits away from them."""
    import arviz_plots as azp

    collection = azp.plot_trace_dist(distance_tree(report), **kwargs)
    restart = report.get(RESTART)
    if restart is None or restart.status == "skipped":
        return collection
    # mark where each restart group settled: a level on the trace, a line on the density
    trace_axes = _axes_of(collection, "trace")
    dist_axes = _axes_of(collection, "dist")
    for index, group in enumerate(restart.details.groups):
        if group.grade is None:
            continue
        style = {"linestyle": "--", "linewidth": 1, "color": f"C{index + 4}", "label": group.label}
        for ax in trace_axes:
            ax.axhline(group.mean_distance, **style)
        for ax in dist_axes:
            ax.axvline(group.mean_distance, **style)
    for ax in trace_axes:
        ax.legend(fontsize="small", title="restarts settled at")
    return collection


def _axes_of(collection, visual: str):
    artists = np.ravel(collection.viz[visual]["distance_to_mean"].values)
    return list({id(a.axes): a.axes for a in artists if getattr(a, "axes", None)}.values())


def plot_score_errors(report, ax=None, bins: int = 30):
    """Histograms of the per-draw relative score error ``||s_hat - grad log p||^2 /
    ||grad log p||^2`` (log10) on your draws and, when given, on reference draws, on one
    axis with shared bins: the trap signature is a reference histogram near the left and
    yours far to the right. Returns the matplotlib ``Axes``.

    A histogram, not a density estimate: on a trap the errors of all draws can be one value,
    where a kernel density has no width to draw.
    """
    import matplotlib.pyplot as plt

    check = report.get(SCORE_ERROR)
    if check is None or check.status == "skipped":
        raise ValueError(
            "the report has no score-error check: pass `score_fn` and `logdensity_fn`."
        )
    floor = 1e-12  # exact agreement would be -inf on a log scale
    samples = {"your draws": check.details.chain_errors}
    if check.details.reference_errors is not None:
        samples["reference draws"] = check.details.reference_errors
    samples = {label: np.log10(np.asarray(v, float) + floor) for label, v in samples.items()}
    pooled = np.concatenate(list(samples.values()))
    low, high = float(pooled.min()), float(pooled.max())
    edges = np.linspace(low - 0.5, high + 0.5, bins + 1) if high - low < 1e-9 else bins
    edges = np.histogram_bin_edges(pooled, bins=edges)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for index, (label, values) in enumerate(samples.items()):
        ax.hist(values, bins=edges, alpha=0.6, color=f"C{index}", label=f"{label} ({len(values)})")
    ax.set_xlabel("log10 relative score error per draw")
    ax.set_ylabel("draws")
    ax.set_title("score error where the draws are")
    ax.legend(fontsize="small")
    return ax
