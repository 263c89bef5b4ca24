"""Timing helper shared by the benchmark scripts.

Every program runs once on its own (compile + run; JAX reports the seconds it spent tracing,
lowering and compiling through ``jax.monitoring``), then the programs being compared run
``repeats`` more times interleaved (A, B, A, B, ...), so that a change in the machine's load
hits all alike; the fastest repeat is the run time. Results are plain dicts with named fields,
written as JSON.
"""

import argparse
import json
import os
import platform
import time

import jax

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds: list[float] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: (
        _compile_seconds.append(seconds) if event in _COMPILE_EVENTS else None
    )
)


def timed(fn) -> dict:
    """One call of ``fn``: wall and process-CPU seconds, and JAX's compile seconds within."""
    _compile_seconds.clear()
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"wall_s": wall, "cpu_s": cpu, "compile_s": sum(_compile_seconds)}


def compare(fns: dict, repeats: int) -> dict:
    """``{name: {first_s, compile_s, run_s, cpu_s}}`` for zero-argument callables: a first
    call each, then ``repeats`` interleaved rounds (run_s, cpu_s: the fastest)."""
    first = {name: timed(fn) for name, fn in fns.items()}
    rounds = [{name: timed(fn) for name, fn in fns.items()} for _ in range(repeats)]
    return {
        name: {
            "first_s": first[name]["wall_s"],
            "compile_s": first[name]["compile_s"],
            "run_s": min(r[name]["wall_s"] for r in rounds),
            "cpu_s": min(r[name]["cpu_s"] for r in rounds),
        }
        for name in fns
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict:
    import blackjax
    import numpyro

    with open("/proc/cpuinfo") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "blackjax": blackjax.__version__,
        "numpyro": numpyro.__version__,
    }


def write_json(path: str, data) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")


def script(main, doc: str, out: str) -> None:
    """Command line of a benchmark script, ``[--quick] [--out FILE]``: results as JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids, a smoke test")
    parser.add_argument("--out", default=out)
    args = parser.parse_args()
    write_json(args.out, main(args.quick))


def log(*args) -> None:
    print(*args, flush=True)
