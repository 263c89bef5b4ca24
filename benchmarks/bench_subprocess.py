"""Benchmarks that need a fresh process: peak memory of ``rs.run`` with and without thinning,
and chains sharded over forced host devices.

Memory: JAX's CPU devices report no ``memory_stats()`` (it returns ``None``), and
``tracemalloc`` does not see XLA's buffers, so each configuration runs in its own process and
reads the kernel's resident-set high-water mark (``VmHWM`` in ``/proc/self/status``). The
first ``rs.run`` call compiles; its result is dropped, the high-water mark is reset (writing
``5`` to ``/proc/self/clear_refs``) and the second, identical call is measured: peak RSS during
it minus RSS before it. Where the reset is not allowed, ``resource.getrusage`` ``ru_maxrss``
(whole-process peak, compile included) is reported instead, and the page says so.

Sharding: ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` makes JAX expose N CPU
devices; ``rs.run(..., devices=jax.devices())`` shards the chains over them.

Run a child directly: ``python benchmarks/bench_subprocess.py memory 10`` (thin = 10) or
``XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/bench_subprocess.py
sharding``.
"""

import json
import os
import subprocess
import sys
import time

MEMORY_CONFIG = {"dim": 100, "chains": 100, "steps": 10_000}
SHARDING_CELLS = ((2, 1000, 20_000), (100, 1000, 300))
HERE = os.path.dirname(os.path.abspath(__file__))


def _status_kib(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def memory_child(thin):
    import gc
    import resource

    import jax
    import jax.numpy as jnp

    import robust_score as rs

    cfg = MEMORY_CONFIG
    algorithm = rs.ula(lambda x: -x, 0.1)
    starts = jnp.zeros((cfg["chains"], cfg["dim"]))
    tree = rs.run(algorithm, jax.random.key(0), starts, cfg["steps"], thin=thin)
    del tree
    gc.collect()
    before = _status_kib("VmRSS")
    method = "VmHWM" if _reset_peak() else "ru_maxrss"
    started = time.perf_counter()
    tree = rs.run(algorithm, jax.random.key(1), starts, cfg["steps"], thin=thin)
    seconds = time.perf_counter() - started
    if method == "VmHWM":
        peak = _status_kib("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    after = _status_kib("VmRSS")
    draws = tree.posterior["x"].values
    # XLA's own accounting for the sampling program (private entry point of rs.run)
    import importlib

    run_module = importlib.import_module("robust_score.run")
    states = run_module._init(algorithm, None, jax.random.key(1), starts)
    compiled = run_module._sample.lower(
        algorithm,
        0,
        cfg["steps"] // thin,
        thin,
        False,
        None,
        jax.random.key(1),
        states,
        jnp.asarray(0, jnp.int32),
    ).compile()
    stats = compiled.memory_analysis()
    return {
        "thin": thin,
        "draws": int(draws.shape[1]),
        "draw_mib": draws.nbytes / 2**20,
        "before_mib": before / 1024,
        "peak_mib": peak / 1024,
        "peak_extra_mib": (peak - before) / 1024,
        "held_mib": (after - before) / 1024,
        "method": method,
        "seconds": seconds,
        "xla_output_mib": stats.output_size_in_bytes / 2**20,
        "xla_temp_mib": stats.temp_size_in_bytes / 2**20,
        "jax": jax.__version__,
    }


def _thread_ticks():
    """CPU clock ticks used so far by each thread of this process (``/proc/self/task``)."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ticks[tid] = int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks


def _busy_threads(before, after, share=0.2):
    """Threads that did at least ``share`` of the busiest thread's work between two samples."""
    used = [after[t] - before.get(t, 0) for t in after]
    top = max(used, default=0)
    return sum(1 for u in used if top and u >= share * top)


def sharding_child(repeats=4):
    import jax
    import jax.numpy as jnp

    import robust_score as rs

    algorithm = rs.ula(lambda x: -x, 0.1)
    out = []
    for dim, chains, steps in SHARDING_CELLS:
        starts = jnp.zeros((chains, dim))
        for label, devices in (("devices=jax.devices()", jax.devices()), ("devices=None", None)):

            def call(seed, devices=devices, steps=steps, starts=starts):
                return rs.run(
                    algorithm, jax.random.key(seed), starts, steps, thin=steps, devices=devices
                )

            started = time.perf_counter()
            call(0)
            first = time.perf_counter() - started
            times = []
            for seed in range(1, repeats + 1):
                ticks = _thread_ticks()
                started, started_cpu = time.perf_counter(), time.process_time()
                call(seed)
                wall_s = time.perf_counter() - started
                cpu_s = time.process_time() - started_cpu
                times.append((wall_s, cpu_s, _busy_threads(ticks, _thread_ticks())))
            wall, cpu, busy = min(times)
            out.append(
                {
                    "devices": len(jax.devices()),
                    "call": label,
                    "dim": dim,
                    "chains": chains,
                    "steps": steps,
                    "first": first,
                    "run": wall,
                    "cpu_per_wall": cpu / wall,
                    "busy_threads": busy,
                }
            )
    return out


def _spawn(args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "bench_subprocess.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def memory(thins=(1, 10, 100)):
    return [_spawn(["memory", str(thin)]) for thin in thins]


def sharding(counts=(1, 2)):
    rows = []
    for count in counts:
        flags = os.environ.get("XLA_FLAGS", "")
        flags = f"{flags} --xla_force_host_platform_device_count={count}".strip()
        rows += _spawn(["sharding"], {"XLA_FLAGS": flags})
    return rows


MEMORY_HEADER = [
    "thin",
    "draws kept",
    "draw array MiB",
    "RSS before MiB",
    "**peak extra MiB**",
    "held after MiB",
    "XLA output MiB",
    "XLA temp MiB",
    "run s",
]


def memory_rows(results):
    return [
        [
            r["thin"],
            r["draws"],
            r["draw_mib"],
            r["before_mib"],
            r["peak_extra_mib"],
            r["held_mib"],
            r["xla_output_mib"],
            r["xla_temp_mib"],
            r["seconds"],
        ]
        for r in results
    ]


SHARDING_HEADER = [
    "d",
    "chains",
    "steps",
    "forced host devices",
    "call",
    "run s",
    "**speed-up vs 1 device**",
    "CPU s / wall s",
    "busy threads",
    "first call s",
]


def sharding_rows(results):
    base = {
        (r["dim"], r["chains"]): r["run"]
        for r in results
        if r["devices"] == 1 and r["call"] == "devices=None"
    }
    rows = []
    for r in sorted(results, key=lambda r: (r["dim"], r["chains"], r["devices"], r["call"])):
        rows.append(
            [
                r["dim"],
                r["chains"],
                r["steps"],
                r["devices"],
                f"`{r['call']}`",
                r["run"],
                base[(r["dim"], r["chains"])] / r["run"],
                r["cpu_per_wall"],
                r["busy_threads"],
                r["first"],
            ]
        )
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "memory":
        print(json.dumps(memory_child(int(sys.argv[2]))))
    elif sys.argv[1] == "sharding":
        print(json.dumps(sharding_child()))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
