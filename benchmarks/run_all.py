"""``make bench``: run every benchmark, save the numbers as JSON and write ``docs/benchmarks.md``
with its figures (``benchmarks/template.md`` filled by ``benchmarks/render.py``).

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--render-only] [--out DIR]
[--sections NAME ...]

``--quick`` shrinks every grid (a smoke test, a few minutes) and writes under the system's
temporary directory unless ``--out`` is given; ``--render-only`` re-writes the page from the
saved ``results.json``; ``--sections`` re-runs only the named sections and replaces them in
the saved ``results.json`` (the page's sections table then gives each section's own date and
commit).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import costs  # noqa: E402
import distributed  # noqa: E402
import nfe  # noqa: E402
import numpyro_vs_run  # noqa: E402
import overhead  # noqa: E402
import preconditioning  # noqa: E402
import render  # noqa: E402
from timing import load_average, log, machine, write_json  # noqa: E402

SECTIONS = {  # name: quick -> results
    "overhead": overhead.main,
    "numpyro": numpyro_vs_run.main,
    "nfe": nfe.main,
    "trap": lambda quick: costs.trap_cost((10, 100) if quick else (10, 100, 1000)),
    "memory": lambda quick: costs.memory(),
    "sharding": lambda quick: costs.sharding(),
    "distributed": distributed.main,
    "preconditioning": preconditioning.main,
}


def commit():
    """The repository's commit (``+dirty`` when ``robust_score/`` has local changes), or
    ``RS_BENCH_COMMIT`` outside a git checkout."""
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", "-C", HERE, *a], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = run("status", "--porcelain", "--", "../robust_score")
        return run("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("RS_BENCH_COMMIT")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--out", help="docs folder (default: the repository's docs/)")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS))
    args = parser.parse_args(argv)
    docs = args.out or os.path.join(os.path.dirname(HERE), "docs")
    if args.quick and not args.out:
        docs = os.path.join(tempfile.gettempdir(), "robust_score_bench")
    figures = os.path.join(docs, "_static", "benchmarks")
    os.makedirs(figures, exist_ok=True)
    saved = os.path.join(figures, "results.json")
    if not args.render_only:
        started, version, today = time.perf_counter(), commit(), time.strftime("%Y-%m-%d")
        results = {"machine": machine(), "quick": args.quick, "sections": []}
        if args.sections:
            with open(saved) as handle:
                results = json.load(handle)
        for name, run in SECTIONS.items():
            if args.sections and name not in args.sections:
                continue
            before, section_started = load_average(), time.perf_counter()
            log(f"== {name} (load {before})")
            results[name] = run(args.quick)
            wall_s, after = time.perf_counter() - section_started, load_average()
            row = dict(
                name=name,
                wall_s=wall_s,
                load_before=before,
                load_after=after,
                date=today,
                commit=version,
            )
            rows = {r["name"]: r for r in results["sections"]}
            rows[name] = row
            results["sections"] = [rows[n] for n in SECTIONS if n in rows]
        if not args.sections:
            results["date"] = today
            results["total_s"] = time.perf_counter() - started
        write_json(saved, results)
    render.write(saved, os.path.join(docs, "benchmarks.md"), figures)


if __name__ == "__main__":
    main()
