"""``robust-score reproduce``: the paper's experiments (Cao, Chen, Sridharan & Wu, ICML 2026).

The learned-score experiments of :mod:`robust_score.paper.experiments` and the Thm 1 and
Thm 7 constructions of :mod:`robust_score.paper.demo` (the ``robust-score demo`` table).
Writes ``table.md``, ``results.csv`` and PNG figures into ``--out``.
"""

import argparse
import csv
import dataclasses
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs
from robust_score.paper import demo
from robust_score.paper.experiments import TARGETS, Settings, learned_score_experiment
from robust_score.paper.records import Row

__all__ = ["Settings", "construction_rows", "main"]

CSV_FIELDS = ("experiment", "sampler", "start", "metric", "value", "sd", "repeats", "target",
              "score_evals", "diverged_chains", "verdict")  # fmt: skip


def main(argv=None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="robust-score reproduce")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--out", default="reproduce-out", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    started = time.perf_counter()
    rows, results = [], []
    keys = jax.random.split(jax.random.key(args.seed), len(TARGETS))
    for key, target in zip(keys, TARGETS, strict=True):
        print(f"[reproduce] {target.name}: training the DSM score and sampling", flush=True)
        result = learned_score_experiment(target, settings, key)
        rows += result.rows
        results.append((target, result))
    print("[reproduce] Thm 1 and Thm 7 constructions", flush=True)
    rows += construction_rows()
    seconds = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "results.csv", rows)
    (out / "table.md").write_text(_table(rows, results, settings, seconds))
    _figures(out, results)
    print((out / "table.md").read_text())
    return rows


def construction_rows() -> list[Row]:
    """The ``robust-score demo`` rows, as ``reproduce`` tabulates them."""
    rows = demo.center_trap_rows() + demo.memorization_rows()
    return [dataclasses.replace(r, l2_error=None, max_rhat=None) for r in rows]


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)  # None: an empty cell


def _table(rows, results, settings, seconds) -> str:
    lines = [
        "# robust-score reproduce",
        "",
        f"Settings: {settings}. Took {seconds:.0f} s.",
        "",
        "Learned-score rows: mean +- sd over the repeats (fresh randomness each; diverged "
        "counts all of them). Construction rows: one run, as `robust-score demo`.",
        "",
        "| experiment | sampler | start | metric | value | target | score evals | diverged "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        value = f"{r.value:.3f}"
        if (r.repeats or 1) > 1:
            value += f" ± {r.sd:.3f} ({r.repeats} runs)"
        target = "" if r.target is None else f"{r.target:.3f}"
        lines.append(
            f"| {r.experiment} | {r.sampler} | {r.start} | {r.metric} | {value} | {target} "
            f"| {r.score_evals} | {r.diverged_chains} | {r.verdict or ''} |"
        )
    lines += ["", "Training, controls and floors:"]
    for target, result in results:
        lines.append(f"- {target.name}:")
        for label, value in result.notes.items():
            if isinstance(value, dict):
                lines.append(f"  - {label}:")
                lines += [f"    - {k}: {v}" for k, v in value.items()]
            else:
                lines.append(f"  - {label}: {value}")
    return "\n".join(lines) + "\n"


def _figures(out: Path, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for target, result in results:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for label, (steps, values) in result.curves.items():
            ax.plot(steps, values, label=label)
        ax.set_xlabel("Langevin step")
        ax.set_ylabel(target.metric_name)
        ax.set_yscale("log")
        ax.set_title(target.name, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"metric_vs_steps_{target.slug}.png", dpi=110)
        plt.close(fig)
    _trap_trajectories(out, plt)


def _trap_trajectories(out: Path, plt, experiment=demo.THM1) -> None:
    """||x||/sqrt(d) along ULA under the Thm 1 trap: exact vs trapped score, same start."""
    e = experiment
    exact = rs.scores.gaussian(jnp.full(e.dim, e.mean), 1.0)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, score in (("exact score", exact), ("trapped score", rs.scores.center_trap(exact))):
        starts = jnp.zeros((4, e.dim))  # four chains at the trap's center
        tree = rs.run(rs.ula(score, e.step_size), jax.random.key(0), starts, 500)
        norms = np.linalg.norm(tree.posterior["x"].values, axis=-1) / math.sqrt(e.dim)
        for chain, values in enumerate(norms):
            ax.plot(values, color="C0" if label == "exact score" else "C3", alpha=0.7,
                    label=label if chain == 0 else None)  # fmt: skip
    ax.axhline(e.target_norm(), color="k", linestyle="--", linewidth=1, label="target")
    ax.set_xlabel("ULA step")
    ax.set_ylabel("||x|| / sqrt(d)")
    ax.set_title(f"{e.name}, d = {e.dim}, start at the center", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "trap_trajectories.png", dpi=110)
    plt.close(fig)
