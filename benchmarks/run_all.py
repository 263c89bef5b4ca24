"""``make bench``: run every benchmark, save the numbers as JSON and write ``docs/benchmarks.md``
with its figures (``benchmarks/template.md`` filled by ``benchmarks/render.py``).

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--render-only] [--out DIR]

``--quick`` shrinks every grid (a smoke test, a few minutes) and writes under the system's
temporary directory unless ``--out`` is given; ``--render-only`` re-writes the page from the
saved ``results.json``.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import costs  # noqa: E402
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
    "preconditioning": preconditioning.main,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--out", help="docs folder (default: the repository's docs/)")
    args = parser.parse_args(argv)
    docs = args.out or os.path.join(os.path.dirname(HERE), "docs")
    if args.quick and not args.out:
        docs = os.path.join(tempfile.gettempdir(), "robust_score_bench")
    figures = os.path.join(docs, "_static", "benchmarks")
    os.makedirs(figures, exist_ok=True)
    saved = os.path.join(figures, "results.json")
    if not args.render_only:
        started = time.perf_counter()
        results = {"machine": machine(), "quick": args.quick, "sections": []}
        for name, run in SECTIONS.items():
            before, section_started = load_average(), time.perf_counter()
            log(f"== {name} (load {before})")
            results[name] = run(args.quick)
            wall_s, after = time.perf_counter() - section_started, load_average()
            results["sections"].append(
                dict(name=name, wall_s=wall_s, load_before=before, load_after=after)
            )
        results["date"] = time.strftime("%Y-%m-%d")
        results["total_s"] = time.perf_counter() - started
        write_json(saved, results)
    render.write(saved, os.path.join(docs, "benchmarks.md"), figures)


if __name__ == "__main__":
    main()
