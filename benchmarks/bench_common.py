"""Shared helpers for ``benchmarks/run_all.py``: machine description, timing, Markdown tables.

Timing rule used everywhere: every program runs once to compile (its wall time and the seconds
JAX itself reports for tracing, lowering and XLA compilation are recorded), then the programs
being compared run ``repeats`` more times *interleaved* (A, B, A, B, ...) so that a change in
the machine's background load hits both alike; the fastest repeat is the run time.
"""

import os
import platform
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds: list[float] = []
# (event, seconds, name of the function compiled where JAX gives it) of every compile step
compile_events: list[tuple[str, float, str]] = []


def _listen(event, seconds, **kwargs):
    if event in _COMPILE_EVENTS:
        _compile_seconds.append(seconds)
        name = str(kwargs.get("fun_name", "?"))
        compile_events.append((event.rsplit("/", 1)[-1], seconds, name))


jax.monitoring.register_event_duration_secs_listener(_listen)


@dataclass
class Timing:
    first: float  # wall seconds of the first call (compile + run)
    compile: float  # seconds JAX reported tracing, lowering and compiling during the first call
    run: float  # fastest repeat, wall seconds (programs already compiled)
    repeats: list
    cpu: float  # fastest repeat in process CPU seconds (less sensitive to other processes)


def _wall(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def _wall_and_cpu(fn):
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return time.perf_counter() - start, time.process_time() - start_cpu


def compare(fns: dict, repeats: int = 3) -> dict[str, Timing]:
    """Time each zero-argument callable: a first (compiling) call each, then ``repeats``
    interleaved rounds; returns ``{name: Timing}``."""
    firsts, compiles = {}, {}
    for name, fn in fns.items():
        _compile_seconds.clear()
        firsts[name] = _wall(fn)
        compiles[name] = sum(_compile_seconds)
    runs = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs[name].append(_wall_and_cpu(fn))
    return {
        name: Timing(
            firsts[name],
            compiles[name],
            min(wall for wall, _ in runs[name]),
            [wall for wall, _ in runs[name]],
            min(cpu for _, cpu in runs[name]),
        )
        for name in fns
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
            memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import blackjax
    import jaxlib
    import numpyro

    return {
        "cpu": model,
        "logical cores": os.cpu_count(),
        "cores usable": len(os.sched_getaffinity(0)),
        "memory": memory,
        "python": platform.python_version(),
        "jax / jaxlib": f"{jax.__version__} / {jaxlib.__version__}",
        "backend": f"{jax.default_backend()} ({len(jax.devices())} device)",
        "blackjax / numpyro": f"{blackjax.__version__} / {numpyro.__version__}",
        "dtype": "float32 (jax_enable_x64 off)",
    }


def table(header: list[str], rows: list[list]) -> str:
    def cell(value):
        if isinstance(value, float):
            if value == 0:
                return "0"
            magnitude = abs(value)
            if magnitude >= 100:
                return f"{value:.0f}"
            if magnitude >= 1:
                return f"{value:.2f}"
            if magnitude >= 0.01:
                return f"{value:.3f}"
            return f"{value:.2e}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "**missed**"


def previous_all_finite(*trees):
    """``kernels.integrators.all_finite`` as the previous release had it (before commit
    14f2828): ``all(isfinite(leaf))`` per leaf, stacked. Only the "before" rows use it; the
    library now combines ``all(isfinite(leaf))`` per leaf with ``&`` (no stacking) and calls
    it on less: the new position only (ULA), a path's end point (diffusion samplers)."""
    leaves = [leaf for tree in trees for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def log(*args):
    print(*args, flush=True)
