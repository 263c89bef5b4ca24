"""``make bench``: run every benchmark and write ``docs/benchmarks.md`` and its PNG figures.

Every ratio on the page is between two numbers measured in this run, on this machine (the page
describes it, with the load average before and after each section: the numbers are only as
quiet as the machine was).

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--out docs/benchmarks.md]
     [--figures docs/_static/benchmarks]

``--quick`` shrinks every grid (a smoke test of the driver, minutes instead of ~15); its page
is not meant to be committed.
"""

import argparse
import contextlib
import io
import os
import pickle
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
SAVED = os.path.join(tempfile.gettempdir(), "robust_score_bench_results.pkl")

import bench_common  # noqa: E402
import bench_mala  # noqa: E402
import bench_nfe  # noqa: E402
import bench_per_step  # noqa: E402
import bench_subprocess  # noqa: E402
from bench_common import load_average, log  # noqa: E402


class Section:
    """Times a section and records the load average around it."""

    log: list = []

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.load_before = load_average()
        self.started = time.perf_counter()
        log(f"== {self.name} (load {self.load_before})")
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.started
        Section.log.append([self.name, seconds, self.load_before, load_average()])
        log(f"== {self.name}: {seconds:.0f} s")
        return False


def numpyro_section(quick):
    import numpyro_vs_run

    steps = "5000" if quick else "50000"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        ratio = numpyro_vs_run.main(["--steps", steps, "--repeats", "3"])
    lines = buffer.getvalue().strip().splitlines()
    log("\n".join(lines))
    description = lines[0]
    rows = []
    for line in lines[2:4]:
        name, first_compile, wall, compile_s, run_s = line.split()
        rows.append(
            [f"`{name}`", float(first_compile), float(wall), float(compile_s), float(run_s)]
        )
    return description, rows, ratio


def trap_section(quick):
    import diagnostics_cost

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = diagnostics_cost.main((10, 100) if quick else (10, 100, 1000))
    return [[dim, first, repeat, status] for dim, first, repeat, status in rows]


def per_step_plot(ratios, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({key[:2] for key in ratios})
    cells = sorted({key[2:] for key in ratios})
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / len(groups)
    for index, group in enumerate(groups):
        xs, ys = [], []
        for position, cell in enumerate(cells):
            if group + cell in ratios:
                xs.append(position + (index - (len(groups) - 1) / 2) * width)
                ys.append(ratios[group + cell])
        ax.bar(xs, ys, width=width, label=f"{group[0]} via {group[1]}")
    ax.axhline(bench_per_step.GOAL, color="k", ls="--", lw=1, label=f"goal {bench_per_step.GOAL}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(cells)), [f"d={d}\n{c} ch" for d, c in cells])
    ax.set_ylabel("run time rs / hand-written scan")
    ax.set_ylim(0, max(1.6, max(ratios.values()) * 1.1))
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax.set_title("Per-step time against a hand-written lax.scan (same keys, same arithmetic)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--figures", default=os.path.join(ROOT, "docs", "_static", "benchmarks"))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"re-write the page and figures from the results the last run saved in {SAVED}",
    )
    args = parser.parse_args(argv)
    os.makedirs(args.figures, exist_ok=True)
    if args.render_only:
        with open(SAVED, "rb") as handle:
            results = pickle.load(handle)
        return write(args, results)
    started = time.perf_counter()
    machine = bench_common.machine()
    load_start = load_average()
    quick = args.quick

    with Section("per-step time vs hand-written scan"):
        if quick:
            per_step = bench_per_step.main(
                target_s=0.05, repeats=2, dims=(2, 100), chains_list=(1, 100)
            )
        else:
            per_step = bench_per_step.main()
    with Section("anatomy of the overheads, now and before"):
        if quick:
            anatomy = bench_per_step.anatomy(cells=((100, 100),), target_s=0.05, repeats=2)
        else:
            anatomy = bench_per_step.anatomy()
    with Section("compile time of a new time grid"):
        compile_rows = bench_per_step.compile_anatomy()
    with Section("rs.mala vs blackjax.mala"):
        if quick:
            mala = bench_mala.main(target_s=0.05, repeats=2, dims=(2, 100), chains_list=(1, 100))
        else:
            mala = bench_mala.main()
        mala_diff = bench_per_step.loop_body_diff(*bench_mala_programs())
    with Section("NumPyro ScoreLangevin vs rs.run"):
        numpyro = numpyro_section(quick)
    with Section("diffusion quality vs NFE"):
        nfe = bench_nfe.main(nfe_grid=(20, 1000) if quick else bench_nfe.NFE_GRID, repeats=1)
    with Section("trap_report cost"):
        trap = trap_section(quick)
    with Section("peak memory of rs.run"):
        memory = bench_subprocess.memory()
    with Section("sharding over forced host devices"):
        sharding = bench_subprocess.sharding()

    total = time.perf_counter() - started
    results = {
        "machine": machine,
        "load_start": load_start,
        "total": total,
        "quick": quick,
        "per_step": per_step,
        "anatomy": anatomy,
        "compile_rows": compile_rows,
        "mala": mala,
        "mala_diff": mala_diff,
        "numpyro": numpyro,
        "nfe": nfe,
        "trap": trap,
        "memory": memory,
        "sharding": sharding,
        "sections": Section.log,
    }
    with open(SAVED, "wb") as handle:
        pickle.dump(results, handle)
    write(args, results)


def write(args, results):
    figures = {
        "nfe": os.path.join(args.figures, "diffusion_quality_vs_nfe.png"),
        "per_step": os.path.join(args.figures, "per_step_ratio.png"),
    }
    bench_nfe.plot(*results["nfe"], figures["nfe"])
    per_step_plot(results["per_step"][2], figures["per_step"])
    relative = {k: os.path.relpath(v, os.path.dirname(args.out)) for k, v in figures.items()}
    page = render(figures=relative, **results)
    with open(args.out, "w") as handle:
        handle.write(page)
    log(f"wrote {args.out} and {', '.join(figures.values())}")
    log(f"benchmarks took {results['total']:.0f} s")


def bench_mala_programs():
    import jax
    import jax.numpy as jnp
    from blackjax import mala as blackjax_mala

    import robust_score as rs

    key, starts = jax.random.key(0), jnp.zeros((10, 1000))
    h = bench_mala.step_size(1000)

    def with_rs():
        return rs.sample_chains(rs.mala(bench_mala.logdensity, h), key, starts, 10, thin=10)[0]

    def with_blackjax():
        algorithm = blackjax_mala(bench_mala.logdensity, h)
        return rs.sample_chains(algorithm, key, starts, 10, thin=10)[0]

    return with_rs, with_blackjax


# ------------------------------------------------------------------------------- the page
def render(**results):
    from render_page import render_page

    return render_page(**results)


if __name__ == "__main__":
    main()
