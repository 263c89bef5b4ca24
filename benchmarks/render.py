"""Fill ``benchmarks/template.md`` from the ``results.json`` of a run: tables, goal statuses
(each computed from the run's numbers) and two figures.

Run: .venv/bin/python benchmarks/render.py RESULTS_JSON PAGE_MD FIGURES_DIR
"""

import json
import math
import os
import statistics
import string
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.md")
# the goals of the template's goal table (keep the two in step)
TIMING_GOAL, MALA_GOAL, NUMPYRO_GOAL, NFE_GOAL = 1.05, 1.0, 1.2, 1.5
TRAP_GOAL_S, MEMORY_GOAL, BENCH_GOAL_MIN = 10.0, 1.25, 15.0
# issue 14: MALA against NUTS (ESS per gradient, and accuracy) and against BarkerMH
PC_NUTS_GOAL, PC_SHIFT_GOAL, PC_BARKER_GOAL = 0.5, 0.1, 3.0
PC_RHAT = 1.01  # above it, chains disagree and an ESS is not to be read
PC_NUTS_MODELS = ("eight_schools", "logistic")
PC_BARKER_MODELS = ("eight_schools", "logistic", "horseshoe", "funnel")
TIMING_GOALS = {  # goal: (sampler, driver, largest ratio to the reference)
    "ula_run": ("ULA", "rs.run", TIMING_GOAL),
    "ula_chains": ("ULA", "rs.sample_chains", TIMING_GOAL),
    "al_batch": ("annealed Langevin", "rs.sample_batch", TIMING_GOAL),
    "al_chains": ("annealed Langevin", "rs.sample_chains", TIMING_GOAL),
    "sde_batch": ("reverse SDE", "rs.sample_batch", TIMING_GOAL),
    "sde_chains": ("reverse SDE", "rs.sample_chains", TIMING_GOAL),
    "mala_chains": ("MALA", "rs.sample_chains", MALA_GOAL),
    "mala_inference": ("MALA", "run_inference_algorithm", MALA_GOAL),
}
NFE_METHODS = ("sde", "ode", "pc", "dpmpp_2m", "edm", "edm_churn")
# DPM-Solver++(2M) at <= 10 NFE within this factor of the 1000-step reverse SDE's sliced W2
FEW_STEP_GOAL = 1.2
HEADERS = {  # column headers other than the field's name with " " for "_", " MiB" for "_mib"
    "aa_ratio": "A/A",
    "dim": "d",
    "lib_us_per_step": "library µs/step",
    "nfe": "NFE",
    "ratio": "**library / reference**",
    "ref_us_per_step": "reference µs/step",
    "min_ess": "min ESS",
    "grads": "gradients",
    "ess_per_1k_grad": "**ESS / 1k grad**",
    "max_mean_shift_sd": "max \\|Δmean\\|/sd",
    "max_rhat": "max R̂",
    "over_nuts": "÷ NUTS",
    "over_barker": "÷ BarkerMH",
    "rhat_above": "R̂ > 1.01",
    "over_identity": "÷ identity mass",
}


def fmt(value):
    if isinstance(value, list):
        return " / ".join(fmt(v) for v in value)
    if value is None:
        return "–"
    if isinstance(value, float) and math.isfinite(value):
        size = abs(value)
        if size == 0 or size >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if size >= 0.01 else f"{value:.2e}"
    return str(value)


def table(rows):
    """Markdown table of ``rows`` (dicts with the same keys, in column order)."""
    fields = list(rows[0])
    headers = [HEADERS.get(f, f.replace("_mib", " MiB").replace("_", " ")) for f in fields]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(fields)]
    return "\n".join(lines + ["| " + " | ".join(fmt(r[f]) for f in fields) + " |" for r in rows])


def status(value, limit):
    return "met" if value <= limit else "**missed**"


def timing_goal(rows, sampler, driver, limit):
    """Worst cell against ``limit``, geometric mean, and the A/A range of the same cells."""
    cells = [r for r in rows if r["sampler"] == sampler and r["driver"] == driver]
    worst = max(cells, key=lambda r: r["ratio"])
    geomean = math.exp(statistics.fmean(math.log(r["ratio"]) for r in cells))
    aa = [r["aa_ratio"] for r in cells]
    measured = (
        f"worst {worst['ratio']:.2f} (d={worst['dim']}, {worst['chains']} chains); geometric "
        f"mean {geomean:.2f}; {sum(r['ratio'] > limit for r in cells)} of {len(cells)} cells "
        f"above {limit}"
    )
    verdict = status(worst["ratio"], limit)
    if limit < worst["ratio"] <= max(aa):
        verdict += " (worst cell within the A/A range)"
    return measured, f"{min(aa):.2f}–{max(aa):.2f}", verdict


def nfe_goal(nfe, target, method):
    """At ≤ 20 NFE against the largest budget: sliced-W2 ratio, and energy within the
    ratio or within the noise of exact draws."""
    cells = [r for r in nfe["rows"] if (r["target"], r["method"]) == (target, method)]
    low = max((r for r in cells if r["nfe"] <= 20), key=lambda r: r["nfe"])
    high = max(cells, key=lambda r: r["nfe"])
    noise = 2 * nfe["floors"][target]["energy_std"]
    sw2_ratio = low["sw2"] / high["sw2"]
    energy_ok = low["energy"] <= max(NFE_GOAL * high["energy"], noise)
    measured = (
        f"NFE {low['nfe']} / {high['nfe']}: sliced-W2 ratio {sw2_ratio:.2f}; energy "
        f"{low['energy']:.1e} / {high['energy']:.1e} (noise ±{noise:.1e})"
    )
    return measured, "–", status(sw2_ratio if energy_ok else math.inf, NFE_GOAL)


def few_step_goal(nfe, target):
    """DPM-Solver++(2M) at <= 10 NFE: its mean sliced W2 over the repeated sample pairs
    against the reverse SDE's at 1000 NFE (the ratio of means, with its standard error), and
    against Heun's (PF-ODE) at <= 10 NFE."""
    cell = {r["method"]: r for r in nfe["goal_rows"] if r["target"] == target}
    if not cell:
        return "not measured (--quick)", "–", "–"
    few, sde, heun, exact = cell["dpmpp_2m"], cell["sde"], cell["ode"], cell["exact"]
    ratio = few["sw2_mean"] / sde["sw2_mean"]
    ratio_se = ratio * math.hypot(few["sw2_se"] / few["sw2_mean"], sde["sw2_se"] / sde["sw2_mean"])
    measured = (
        f"NFE {few['nfe']}: sliced W2 {few['sw2_mean']:.3f} ± {few['sw2_se']:.3f}, "
        f"{ratio:.2f} ± {ratio_se:.2f} × the SDE's at NFE {sde['nfe']} "
        f"({sde['sw2_mean']:.3f} ± {sde['sw2_se']:.3f}); Heun at NFE {heun['nfe']}: "
        f"{heun['sw2_mean']:.3f}; exact draws {exact['sw2_mean']:.3f} (means of "
        f"{few['repeats']} sample pairs ± standard error)"
    )
    beats_heun = few["sw2_mean"] < heun["sw2_mean"]
    return measured, "–", status(ratio if beats_heun else math.inf, FEW_STEP_GOAL)


def goals(results):
    """``{goal: (measured, A/A range, status)}`` for the rows of the template's goal table."""
    steps, nfe, numpyro = results["overhead"], results["nfe"], results["numpyro"]
    out = {name: timing_goal(steps, *goal) for name, goal in TIMING_GOALS.items()}
    out["score_langevin"] = f"{numpyro['ratio']:.2f}", "–", status(numpyro["ratio"], NUMPYRO_GOAL)
    out.update({f"{t}_{m}": nfe_goal(nfe, t, m) for t in nfe["floors"] for m in NFE_METHODS})
    out.update({f"few_step_{t}": few_step_goal(nfe, t) for t in nfe["goal_targets"]})
    trap = max(results["trap"], key=lambda r: r["dim"])
    measured = (
        f"{trap['repeat_s']:.1f} s at d = {trap['dim']} (first call: {trap['first_s']:.1f} s)"
    )
    out["trap_report"] = measured, "–", status(trap["repeat_s"], TRAP_GOAL_S)
    memory = min(results["memory"], key=lambda r: r["thin"])
    ratio = memory["peak_extra_mib"] / memory["draw_mib"]
    mib = f"{memory['peak_extra_mib']:.0f} MiB for {memory['draw_mib']:.0f} MiB of draws"
    out["peak_memory"] = f"{ratio:.2f} × ({mib})", "–", status(ratio, MEMORY_GOAL)
    out.update(preconditioning_goals(results.get("preconditioning")))
    minutes = results["total_s"] / 60
    out["bench"] = f"{minutes:.1f} min", "–", status(minutes, BENCH_GOAL_MIN)
    return out


def preconditioning_goals(pc):
    """Issue 14's two goals for ``ScoreLangevin(adjust=True)`` ("MALA") with its default
    warm-up, from the preconditioning section's rows."""
    rows = {(r["model"], r["sampler"]): r for r in (pc or {}).get("rows", [])}
    ratios = {(r["model"], r["sampler"]): r for r in (pc or {}).get("ratios", [])}
    out = {}
    cells = [m for m in PC_NUTS_MODELS if (m, "MALA") in ratios and ratios[m, "MALA"]["over_nuts"]]
    if cells:
        over = [ratios[m, "MALA"]["over_nuts"] for m in cells]
        shift = [rows[m, "MALA"]["max_mean_shift_sd"] for m in cells]
        measured = "; ".join(
            f"{m}: {o:.2f} ×, {d:.2f} sd" for m, o, d in zip(cells, over, shift, strict=True)
        )
        ok = min(over) >= PC_NUTS_GOAL and max(shift) <= PC_SHIFT_GOAL
        out["pc_nuts"] = measured, "–", "met" if ok and len(cells) == 2 else "**missed**"
    else:
        out["pc_nuts"] = "not run", "–", "–"
    cells = [m for m in PC_BARKER_MODELS if (m, "MALA") in ratios]
    cells = [m for m in cells if ratios[m, "MALA"]["over_barker"] is not None]
    if cells:
        over = [ratios[m, "MALA"]["over_barker"] for m in cells]
        measured = "; ".join(f"{m}: {o:.2f} ×" for m, o in zip(cells, over, strict=True))
        ok = min(over) >= PC_BARKER_GOAL and len(cells) == len(PC_BARKER_MODELS)
        out["pc_barker"] = measured, "–", "met" if ok else "**missed**"
    else:
        out["pc_barker"] = "not run", "–", "–"
    return out


def preconditioning_figure(pc, path):
    rows = pc["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width, handles = 0.85 / len(names), []
    for index, name in enumerate(names):
        mine = [r for r in rows if r["sampler"] == name]
        offset = (index - (len(names) - 1) / 2) * width
        xs = [models.index(r["model"]) + offset for r in mine]
        ys = [max(r["ess_per_1k_grad"], 1e-3) for r in mine]
        bars = ax.bar(xs, ys, width)
        for bar, row in zip(bars, mine, strict=True):
            if row["max_rhat"] > PC_RHAT:
                bar.set(hatch="///", alpha=0.5)
        handles.append(Patch(color=bars[0].get_facecolor()[:3], label=name))
    handles.append(Patch(facecolor="white", edgecolor="k", hatch="///", label=f"R̂ > {PC_RHAT}"))
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("min bulk ESS per 1000 gradients")
    ax.legend(handles=handles, fontsize=8, ncol=len(handles))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ratio_rows(pc):
    """The ratios with the runs among the three compared whose max R̂ exceeds
    ``PC_RHAT``: their ESS is no estimate of anything, and neither is the ratio."""
    rhat = {(r["model"], r["sampler"]): r["max_rhat"] for r in pc["rows"]}
    ess = {(r["model"], r["sampler"]): r["ess_per_1k_grad"] for r in pc["rows"]}
    identity = any(r["sampler"].endswith(", identity") for r in pc["rows"])
    out = []
    for row in pc["ratios"]:
        names = (row["sampler"], "NUTS", "BarkerMH")
        bad = [n for n in names if rhat.get((row["model"], n), 0) > PC_RHAT]
        extra = {}
        if identity:  # the adapted mass against the identity, same key
            base = ess.get((row["model"], f"{row['sampler']}, identity"))
            extra["over_identity"] = base and ess[row["model"], row["sampler"]] / base
        out.append({**row, **extra, "rhat_above": "; ".join(bad) or "none"})
    return out


def preconditioning_fields(pc):
    """Template fields of the preconditioning section."""
    labels = pc["labels"]
    adapts = "adapt_mass_matrix" in pc["score_langevin_keywords"]
    mass = (
        "`ScoreLangevin`'s default warm-up adapts a mass matrix (NumPyro's `warmup_adapter`: "
        "step size by dual averaging, inverse mass from Welford estimates in Stan's windows, "
        "dense or diagonal as its default `dense_mass=None` chooses by dimension); the rows "
        "marked "
        "“identity” run it with `adapt_mass_matrix=False`: identity mass, step size tuned "
        "alone by dual averaging over the whole warm-up, the kernel as it was before it "
        "adapted a mass (`--before` runs only these), from the same keys as the default rows"
        if adapts
        else "`ScoreLangevin`'s default warm-up tunes the step size only: its mass matrix is "
        "the identity (it takes no `adapt_mass_matrix`)"
    )
    rows = [{**r, "model": labels[r["model"]]} for r in pc["rows"]]
    references = [{**r, "model": labels[r["model"]]} for r in pc["references"]]
    for row in rows + references:  # R̂ to three decimals: 1.004 is not 1
        if row.get("max_rhat") is not None:
            row["max_rhat"] = f"{row['max_rhat']:.3f}"
    return {
        "pc_chains": pc["chains"],
        "pc_warmup": pc["warmup"],
        "pc_draws": pc["draws"],
        "pc_reference_draws": pc["reference_draws"],
        "pc_min": f"{pc['total_s'] / 60:.1f}",
        "pc_mass": mass,
        "pc_rows": table(rows),
        "pc_ratios": table([{**r, "model": labels[r["model"]]} for r in ratio_rows(pc)]),
        "pc_references": table(references),
        "pc_rhat": PC_RHAT,
        "pc_keywords": ", ".join(f"`{k}`" for k in pc["score_langevin_keywords"]),
    }


def ratio_figure(rows, path):
    groups = list(dict.fromkeys((r["sampler"], r["driver"]) for r in rows))
    cells = list(dict.fromkeys((r["dim"], r["chains"]) for r in rows))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.85 / len(groups)
    for index, group in enumerate(groups):
        mine = [r for r in rows if (r["sampler"], r["driver"]) == group]
        offset = (index - (len(groups) - 1) / 2) * width
        xs = [cells.index((r["dim"], r["chains"])) + offset for r in mine]
        ax.bar(xs, [r["ratio"] for r in mine], width, label=" via ".join(group))
        ax.plot(xs, [r["aa_ratio"] for r in mine], "k.", ms=3)
    ax.plot([], [], "k.", label="A/A control")
    ax.axhline(TIMING_GOAL, color="k", ls="--", lw=1, label=f"goal {TIMING_GOAL}")
    ax.set_xticks(range(len(cells)), [f"d={d}\n{c} ch" for d, c in cells])
    ax.set_ylabel("run time library / reference")
    ax.set_ylim(0, max(1.6, 1.1 * max(r["ratio"] for r in rows)))
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def nfe_figure(nfe, path):
    fig, axes = plt.subplots(2, len(nfe["floors"]), figsize=(10.4, 7.5), squeeze=False)
    for column, (target, floor) in enumerate(nfe["floors"].items()):
        for ax, metric in zip(axes[:, column], ("sw2", "energy"), strict=True):
            for method in NFE_METHODS:
                cells = [r for r in nfe["rows"] if (r["target"], r["method"]) == (target, method)]
                ax.plot([r["nfe"] for r in cells], [r[metric] for r in cells], "o-", label=method)
            mean, sd = floor[f"{metric}_mean"], floor[f"{metric}_std"]
            ax.axhspan(mean - 2 * sd, mean + 2 * sd, color="grey", alpha=0.3, label="exact ±2 sd")
            if metric == "sw2":
                ax.set_yscale("log")
            else:
                ax.set_yscale("symlog", linthresh=max(4 * sd, 1e-6))
            ax.set_xscale("log")
            ax.axvline(20, color="k", ls=":", lw=1)
            ax.set(xlabel="score evaluations per draw", ylabel=metric, title=target)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results_path, page_path, figures):
    with open(results_path) as handle:
        results = json.load(handle)
    steps, numpyro = results["overhead"], results["numpyro"]
    ratio_figure(steps, os.path.join(figures, "per_step_ratio.png"))
    pc = results["preconditioning"]
    preconditioning_figure(pc, os.path.join(figures, "preconditioning_ess.png"))
    nfe_figure(results["nfe"], os.path.join(figures, "diffusion_quality_vs_nfe.png"))
    ula = {
        (r["dim"], r["chains"], r["driver"]): r["lib_run_s"] for r in steps if r["sampler"] == "ULA"
    }
    datatree = [ula[d, c, "rs.run"] - ula[d, c, "rs.sample_chains"] for d, c, _ in ula]
    floors = [{"target": target, **floor} for target, floor in results["nfe"]["floors"].items()]
    fields = {
        **{f"machine_{key}": value for key, value in results["machine"].items()},
        **{f"numpyro_{key}": fmt(numpyro[key]) for key in ("dim", "chains", "steps", "ratio")},
        "date": results["date"],
        "quick": " (quick mode: reduced grids, not for committing)" if results["quick"] else "",
        "total_min": f"{results['total_s'] / 60:.1f}",
        **{
            f"{name}{suffix}": value
            for name, row in goals(results).items()
            for suffix, value in zip(("", "_aa", "_status"), row, strict=True)
        },
        "sections": table(
            [
                {**r, "date": r.get("date", results["date"]), "commit": r.get("commit")}
                for r in results["sections"]
            ]
        ),
        "steps": table([r for r in steps if r["sampler"] != "MALA"]),
        "mala": table([r for r in steps if r["sampler"] == "MALA"]),
        "datatree_ms": f"{1e3 * statistics.median(datatree):.1f}",
        "numpyro": table(
            [{"sampler": f"`{n}`", **numpyro[n]} for n in ("rs.run", "ScoreLangevin")]
        ),
        "nfe": table(results["nfe"]["rows"]),
        "nfe_floors": table(floors),
        **{name: table(results[name]) for name in ("trap", "memory", "sharding", "distributed")},
        **preconditioning_fields(pc),
    }
    with open(TEMPLATE) as handle:
        page = string.Template(handle.read()).substitute(fields)
    with open(page_path, "w") as handle:
        handle.write(page)
    print(f"wrote {page_path} and the figures in {figures}")


if __name__ == "__main__":
    write(*sys.argv[1:4])
