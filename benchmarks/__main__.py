"""``make bench``: run every section, save the numbers as JSON and write ``docs/benchmarks.md``
(``benchmarks/template.md`` filled by ``benchmarks/render.py``).

Run: .venv/bin/python -m benchmarks [--quick] [--out DIR] [--sections NAME ...] [--render-only]

``--quick``: reduced grids (a smoke test; written under the system's temporary directory
unless ``--out`` is given); ``--sections``: re-run those into the saved ``results.json``.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

from . import costs, distributed, ill_conditioned, models, nfe, overhead, render, score_priors
from .timing import load_average, log, machine, write_json

SECTIONS = {m.__name__.removeprefix("benchmarks."): m for m in
            (overhead, nfe, costs, distributed, models, ill_conditioned, score_priors)}  # fmt: skip
LOAD_LIMIT, HERE = 1.5, os.path.dirname(os.path.abspath(__file__))


def commit():
    """The checkout's commit (``+dirty`` with local changes under ``robust_score/``)."""
    try:
        git = lambda *a: subprocess.run(["git", "-C", HERE, *a], capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()  # fmt: skip
        dirty = git("status", "--porcelain", "--", "../robust_score")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("RS_BENCH_COMMIT")


def run_section(name, quick):
    """The section's results and its record; re-run once when the machine was loaded."""
    runs = []
    for attempt in (1,) if quick else (1, 2):  # a smoke test is not re-run
        before, started, cpu = load_average(), time.perf_counter(), sum(os.times()[:4])
        log(f"== {name} (load {before}, attempt {attempt})")
        result = SECTIONS[name].main(quick)
        wall_s, after = time.perf_counter() - started, load_average()
        own = (sum(os.times()[:4]) - cpu) / wall_s
        load = max(before[0], after[0]) - max(own - 1.0, 0.0)
        record = {"section": name, "wall s": wall_s, "load before": before, "load after": after,
                  "own cores": own, "load": load, "loaded": load > LOAD_LIMIT}  # fmt: skip
        runs.append((load, attempt, result, record))
        if load <= LOAD_LIMIT:
            break
    load, attempt, result, record = min(runs, key=lambda r: r[:2])
    record.update(attempts=len(runs), date=time.strftime("%Y-%m-%d"), commit=commit())
    return result, record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced grids: a smoke test")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--out", help="docs folder (default: the repository's docs/)")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS))
    args = parser.parse_args(argv)
    default = os.path.join(tempfile.gettempdir(), "robust_score_bench") if args.quick else None
    docs = args.out or default or os.path.join(os.path.dirname(HERE), "docs")
    saved = os.path.join(docs, "_static", "benchmarks", "results.json")
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    if not args.render_only:
        started = time.perf_counter()
        results = {"machine": machine(), "quick": args.quick, "sections": {}}
        if args.sections:
            with open(saved) as handle:
                results = json.load(handle)
        for name in args.sections or SECTIONS:
            results[name], results["sections"][name] = run_section(name, args.quick)
            write_json(saved, results)  # what ran so far survives a failure later
        if not args.sections:
            results.update(date=time.strftime("%Y-%m-%d"), total_s=time.perf_counter() - started)
        write_json(saved, results)
    render.write(saved, os.path.join(docs, "benchmarks.md"))


if __name__ == "__main__":
    main()
