"""Run the calibration cases and append one JSON line per trap report.

    .venv/bin/python -m calibration.run --seeds 4 --out calibration/results/run.jsonl
    .venv/bin/python -m calibration.table calibration/results/run.jsonl

Each line: case, kind, d, inputs level, seed, half (even seeds tuning, odd held out), the
expected reading, the report's status and finding, each check's status, seconds, the report
text, and for the learned-score scenarios the draws' mode weights. A report that raises is
recorded with status ``crash``.
"""

import argparse
import json
import os
import platform
import time
import traceback
import warnings

import jax

import robust_score as rs
from calibration.cases import CASES


def call_report(data, kwargs):
    """One trap_report call; a crash is a result too (status "crash")."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = rs.diagnostics.trap_report(data, **kwargs)
        status, finding = report.status, report.finding
        checks = [(c.name, c.status) for c in report.checks]
        text, rep = str(report), repr(report)
        error = None
    except Exception as exc:  # noqa: BLE001
        status, finding, checks, rep = "crash", None, [], None
        text = traceback.format_exc()
        error = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {
        "status": status,
        "finding": finding,
        "checks": checks,
        "seconds": round(time.perf_counter() - started, 2),
        "text": text,
        "repr": rep if rep != text else None,
        "error": error,
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="substring of a case name (or 'd=10')")
    parser.add_argument("--skip", default=None, help="substring of case names to leave out")
    parser.add_argument(
        "--max-seeds",
        default=None,
        help="per-case seed caps, e.g. 'U2:1,4-mode:2' (substring:count), to bound run time",
    )
    parser.add_argument("--out", default="results/run.jsonl")
    args = parser.parse_args(argv)
    caps = {}
    for item in (args.max_seeds or "").split(","):
        if item:
            key, count = item.rsplit(":", 1)
            caps[key] = int(count)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    code = os.path.dirname(os.path.dirname(os.path.abspath(rs.__file__)))
    print(f"robust_score from {rs.__file__}", flush=True)
    started = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with open(args.out, "a") as handle:
        for case in CASES:
            label = f"{case.name} d={case.dim}"
            if args.only and args.only not in label:
                continue
            if args.skip and args.skip in label:
                continue
            cap = min([c for k, c in caps.items() if k in label], default=len(seeds))
            for seed in seeds[:cap]:
                t0 = time.perf_counter()
                try:
                    built = case.build(seed)
                    build_error = None
                except Exception as exc:  # noqa: BLE001
                    built, build_error = None, traceback.format_exc()
                    print(f"BUILD FAILED {label} seed {seed}: {exc}", flush=True)
                build_seconds = round(time.perf_counter() - t0, 2)
                reports = built["reports"] if built else [("build", None)]
                for level, kwargs in reports:
                    if kwargs is None:
                        result = {"status": "build error", "checks": [], "seconds": 0.0}
                        result.update(text=build_error, repr=None, error="build error")
                    else:
                        kwargs = dict(kwargs)
                        data = kwargs.pop("_data", built["data"])
                        result = call_report(data, kwargs)
                    row = {
                        "case": case.name,
                        "kind": case.kind,
                        "d": case.dim,
                        "level": level,
                        "seed": seed,
                        "half": "tuning" if seed % 2 == 0 else "held-out",
                        "expect": case.expect,
                        **result,
                        "build_seconds": build_seconds,
                        "extra": (built or {}).get("extra", {}),
                        "code": code,
                        "host": platform.node(),
                        "jax_backend": jax.default_backend(),
                    }
                    handle.write(json.dumps(row) + "\n")
                    handle.flush()
                    print(
                        f"{label:70s} seed {seed} {level:22s} {result['status']:12s} "
                        f"report {result['seconds']:6.1f} s  run {build_seconds:6.1f} s  "
                        f"[{time.perf_counter() - started:6.0f} s]",
                        flush=True,
                    )
    print(f"suite wall time {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
