"""``trap_report``'s cost, and chains sharded over forced host devices (a fresh process per
device count: ``python -m benchmarks.costs sharding STEPS`` prints one JSON line).

Run: .venv/bin/python -m benchmarks.costs [--quick] [--out FILE]
"""

import json
import os
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp

import robust_score as rs

from .timing import goal, log, script, table


def trap_cost(dims):
    """``trap_report`` on 4 chains x 1000 ULA draws: a first call (compiles), two repeats."""
    rows = []
    for dim in dims:
        sampler = rs.ula(rs.scores.gaussian(jnp.zeros(dim), 1.0), 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), 1000)
            seconds = []
            for seed in (1, 2, 3):
                started = time.perf_counter()
                key = jax.random.key(seed)
                report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=key)
                seconds.append(time.perf_counter() - started)
        rows.append(
            {"dim": dim, "first s": seconds[0], "repeats s": seconds[1:], "status": report.status}
        )
        log(rows[-1])
    return rows


def sharding_child(steps, repeats=3):
    ula, rows = rs.ula(lambda x: -x, 0.1), []
    for dim, chains, num_steps in ((2, 1000, steps), (100, 1000, max(steps // 60, 10))):
        starts = jnp.zeros((chains, dim))
        for call, devices in (("devices=None", None), ("devices=jax.devices()", jax.devices())):
            times = []
            for seed in range(repeats + 1):
                started, started_cpu = time.perf_counter(), time.process_time()
                key = jax.random.key(seed)
                rs.run(ula, key, starts, num_steps, thin=num_steps, devices=devices)
                times.append((time.perf_counter() - started, time.process_time() - started_cpu))
            (wall, cpu), count = min(times[1:]), len(jax.devices())
            rows.append({"dim": dim, "chains": chains, "steps": num_steps, "devices": count,
                         "call": call, "first s": times[0][0], "run s": wall})  # fmt: skip
            rows[-1]["cpu per wall"] = cpu / wall
    return rows


def sharding(steps, counts=(1, 2)):
    rows = []
    for count in counts:
        env = dict(os.environ)
        flag = f"--xla_force_host_platform_device_count={count}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
        command = [sys.executable, "-m", "benchmarks.costs", "sharding", str(steps)]
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        rows += json.loads(out.strip().splitlines()[-1])
    base = {r["dim"]: r["run s"] for r in rows if r["devices"] == 1 and r["call"] == "devices=None"}
    return [{**r, "speed-up": base[r["dim"]] / r["run s"]} for r in rows]


def main(quick=False):
    trap = trap_cost((10, 100) if quick else (10, 1000))
    shards = sharding(2000 if quick else 12_000)
    worst = trap[-1]
    text = f"`trap_report` ≤ 10 s at d = {worst['dim']} (a repeat call)"
    measured = f"{min(worst['repeats s']):.1f} s (first call {worst['first s']:.1f} s)"
    goals = [goal(text, min(worst["repeats s"]), 10.0, worst["repeats s"], measured)]
    fields = {"costs_trap": table(trap), "costs_sharding": table(shards)}
    return {"trap": trap, "sharding": shards, "goals": goals, "fields": fields}


if __name__ == "__main__":
    if sys.argv[1:2] == ["sharding"]:
        print(json.dumps(sharding_child(int(sys.argv[2]))))
    else:
        script(main, __doc__)
