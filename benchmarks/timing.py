"""Helpers shared by the benchmark sections: timing with an A/A control, goal rows, tables.
Every program runs once on its own (compile + run), then the programs compared run
``repeats`` more times interleaved (A, B, A, B, ...), so that a change in the machine's load
hits all alike; the fastest repeat is the run time.
"""

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time

import jax
import numpy as np

COMPILE_EVENTS = tuple(f"/jax/core/compile/{e}_duration" for e in
                       ("jaxpr_trace", "jaxpr_to_mlir_module", "backend_compile"))  # fmt: skip
compile_seconds: list[float] = []
jax.monitoring.register_event_duration_secs_listener(lambda event, seconds, **_: (
    compile_seconds.append(seconds) if event in COMPILE_EVENTS else None))  # fmt: skip


def timed(fn) -> dict:
    """One call of ``fn``: wall and process-CPU seconds, and JAX's compile seconds within."""
    compile_seconds.clear()
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - start_cpu,
            "compile_s": sum(compile_seconds)}  # fmt: skip


def compare(fns: dict, repeats: int, net_of_compile=False) -> dict:
    """``{name: {first_s, compile_s, rounds, run_s}}``: a first call each, then ``repeats``
    interleaved rounds; ``run_s`` the fastest, net of compile seconds if ``net_of_compile``."""
    first = {name: timed(fn) for name, fn in fns.items()}
    rounds = [{name: timed(fn) for name, fn in fns.items()} for _ in range(repeats)]
    net = (lambda r: r["wall_s"] - r["compile_s"]) if net_of_compile else (lambda r: r["wall_s"])
    return {name: {"first_s": first[name]["wall_s"], "compile_s": first[name]["compile_s"],
                   "rounds": (times := [net(r[name]) for r in rounds]), "run_s": min(times)}
            for name in fns}  # fmt: skip


def goal(text, value, limit, aa=(), measured=None, larger_is_better=False):
    """A goal row: met / missed, or noisy when the A/A range ``aa`` straddles ``limit`` with
    ``value`` inside it (this run cannot tell the excess or the margin from noise)."""
    ok = value >= limit if larger_is_better else value <= limit
    status = "met" if ok else "**missed**"
    if aa and min(aa) <= limit <= max(aa) and min(aa) <= value <= max(aa):
        status = "noisy"
    aa_text = f"{min(aa):.3g}–{max(aa):.3g}" if aa else "–"
    return {"goal": text, "measured": measured or f"{value:.3g}", "A/A": aa_text, "status": status}


def rotated(variances):
    """``Q diag(variances) Qᵀ`` for a Haar-random rotation ``Q`` (seed 0)."""
    q, r = np.linalg.qr(np.random.default_rng(0).standard_normal((len(variances),) * 2))
    q *= np.sign(np.diag(r))
    return (q * variances) @ q.T


def fmt(value):
    if isinstance(value, list | tuple):
        return " / ".join(fmt(v) for v in value)
    if value is None:
        return "–"
    if isinstance(value, float) and math.isfinite(value):
        size = abs(value)
        if size == 0 or size >= 100:
            return f"{value:.0f}"
        return f"{value:.3g}" if size >= 0.01 else f"{value:.2e}"
    return str(value)


def table(rows) -> str:
    """Markdown table of ``rows`` (dicts; columns in order of first appearance)."""
    if not rows:
        return "(not run)"
    fields = list(dict.fromkeys(k for r in rows for k in r))

    def line(cells):  # a "|" inside a cell is escaped
        return "| " + " | ".join(re.sub(r"(?<!\\)\|", r"\\|", c) for c in cells) + " |"

    rows = [line(fmt(r.get(f)) for f in fields) for r in rows]
    return "\n".join([line(fields), "|" + "---|" * len(fields), *rows])


def load_average() -> list[float]:  # 1, 5 and 15 min
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict:
    import blackjax
    import numpyro

    with open("/proc/cpuinfo") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return {"cpu": models[0] if models else platform.processor(),
            "cores": len(os.sched_getaffinity(0)), "memory_gib": round(memory, 1),
            "python": platform.python_version(),
            "jax": f"{jax.__version__} ({jax.default_backend()})",
            "blackjax_numpyro": f"{blackjax.__version__} / {numpyro.__version__}"}  # fmt: skip


def write_json(path: str, data) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")


def last_json(stdout: str):  # a section's child process prints its result as its last line
    return json.loads(stdout.strip().splitlines()[-1])


def child_json(module: str, *args, env=None):
    """The result of ``python -m benchmarks.MODULE ARGS``, a fresh process."""
    command = [sys.executable, "-m", f"benchmarks.{module}", *map(str, args)]
    return last_json(subprocess.run(command, capture_output=True, text=True, env=env,
                                    check=True).stdout)  # fmt: skip


def script(main, doc: str, children=None, **options) -> None:
    """``python -m benchmarks.NAME [--quick] [--out FILE]`` and an integer option per keyword of
    ``options`` (its default); ``NAME CHILD INT...`` prints ``children[CHILD](INT...)``'s JSON."""
    if sys.argv[1:] and sys.argv[1] in (children or {}):
        print(json.dumps(children[sys.argv[1]](*map(int, sys.argv[2:]))))
        return
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids, a smoke test")
    parser.add_argument("--out", help="write the results as JSON here")
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    args = vars(parser.parse_args())
    out, result = args.pop("out"), main(**args)
    if out:
        write_json(out, result)


def log(*args, **kwargs) -> None:
    print(*args, **kwargs, flush=True)
