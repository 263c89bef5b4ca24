"""``trap_report`` cost, peak memory of ``rs.run`` (resident-set high-water mark, reset after a
compiling call) and chains sharded over forced host devices. The last two run in fresh
processes: ``python benchmarks/costs.py memory THIN``, ``XLA_FLAGS=--xla_force_host_platform_
device_count=N python benchmarks/costs.py sharding``, each printing one JSON line.
"""

import gc
import json
import os
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp

import robust_score as rs

MEMORY = {"dim": 100, "chains": 100, "steps": 10_000}
SHARDING = ({"dim": 2, "chains": 1000, "steps": 20_000}, {"dim": 100, "chains": 1000, "steps": 300})


def trap_cost(dims=(10, 100, 1000)):
    """``trap_report`` on 4 chains x 1000 ULA draws: first call (compiles) and a repeat."""
    rows = []
    for dim in dims:
        sampler = rs.ula(rs.scores.gaussian(jnp.zeros(dim), 1.0), 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), 1000)
            seconds = []
            for seed in (1, 2):
                started = time.perf_counter()
                report = rs.diagnostics.trap_report(
                    tree, sampler=sampler, rng_key=jax.random.key(seed)
                )
                seconds.append(time.perf_counter() - started)
        rows.append(
            {"dim": dim, "first_s": seconds[0], "repeat_s": seconds[1], "status": report.status}
        )
        print(rows[-1], flush=True)
    return rows


def _kib(field):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))


def memory_child(thin):
    ula, steps = rs.ula(lambda x: -x, 0.1), MEMORY["steps"]
    starts = jnp.zeros((MEMORY["chains"], MEMORY["dim"]))
    rs.run(ula, jax.random.key(0), starts, steps, thin=thin)  # compiles
    gc.collect()
    before = _kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current resident set
    started = time.perf_counter()
    tree = rs.run(ula, jax.random.key(1), starts, steps, thin=thin)
    seconds, draws = time.perf_counter() - started, tree.posterior["x"].values
    return {
        "thin": thin,
        "draws": int(draws.shape[1]),
        "draw_mib": draws.nbytes / 2**20,
        "before_mib": before / 1024,
        "peak_extra_mib": (_kib("VmHWM") - before) / 1024,
        "held_after_mib": (_kib("VmRSS") - before) / 1024,
        "run_s": seconds,
    }


def sharding_child(repeats=5):
    ula, rows = rs.ula(lambda x: -x, 0.1), []
    for cell in SHARDING:
        starts, steps = jnp.zeros((cell["chains"], cell["dim"])), cell["steps"]
        for call, devices in (("devices=None", None), ("devices=jax.devices()", jax.devices())):
            times = []
            for seed in range(repeats + 1):
                started, started_cpu = time.perf_counter(), time.process_time()
                rs.run(ula, jax.random.key(seed), starts, steps, thin=steps, devices=devices)
                times.append((time.perf_counter() - started, time.process_time() - started_cpu))
            (wall, cpu), first = min(times[1:]), times[0][0]
            rows.append({**cell, "devices": len(jax.devices()), "call": call, "first_s": first})
            rows[-1].update({"run_s": wall, "cpu_per_wall": cpu / wall})
    return rows


def _spawn(*args, devices=None):
    env = dict(os.environ)
    if devices:
        flag = f"--xla_force_host_platform_device_count={devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
    command = [sys.executable, os.path.abspath(__file__), *args]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory(thins=(1, 10, 100)):
    return [_spawn("memory", str(thin)) for thin in thins]


def sharding(counts=(1, 2)):
    rows = [row for count in counts for row in _spawn("sharding", devices=count)]
    base = {r["dim"]: r["run_s"] for r in rows if r["devices"] == 1 and r["call"] == "devices=None"}
    return [{**r, "speedup": base[r["dim"]] / r["run_s"]} for r in rows]


if __name__ == "__main__":
    if sys.argv[1] == "memory":
        print(json.dumps(memory_child(int(sys.argv[2]))))
    elif sys.argv[1] == "sharding":
        print(json.dumps(sharding_child()))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}: memory THIN or sharding")
