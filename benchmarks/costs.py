"""``trap_report``'s cost, and chains sharded over forced host devices (a fresh process per
device count: ``python -m benchmarks.costs sharding STEPS`` prints one JSON line).

Run: .venv/bin/python -m benchmarks.costs [--quick] [--out FILE]
"""

import os
import time
import warnings
from functools import partial

import jax
import jax.numpy as jnp

import robust_score as rs

from .timing import child_json, goal, log, script, table, timed


def trap_cost(dims):
    """``trap_report`` on 4 chains x 1000 ULA draws: a first call (compiles), two repeats."""
    rows = []
    for dim in dims:
        sampler = rs.ula(rs.scores.gaussian(jnp.zeros(dim), 1.0), 0.05)
        with warnings.catch_warnings(action="ignore"):
            tree, seconds = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), 1000), []
            for seed in (1, 2, 3):
                started, key = time.perf_counter(), jax.random.key(seed)
                report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=key)
                seconds.append(time.perf_counter() - started)
        rows.append({"dim": dim, "first s": seconds[0], "repeats s": seconds[1:],
                     "status": report.status})  # fmt: skip
        log(rows[-1])
    return rows


def sharding_child(steps, repeats=3):
    ula, rows, count = rs.ula(lambda x: -x, 0.1), [], len(jax.devices())

    def run(starts, num_steps, devices, seed):
        return rs.run(ula, jax.random.key(seed), starts, num_steps, thin=num_steps, devices=devices)

    for dim, chains, num_steps in ((2, 1000, steps), (100, 1000, max(steps // 60, 10))):
        starts = jnp.zeros((chains, dim))
        for call, devices in (("devices=None", None), ("devices=jax.devices()", jax.devices())):
            times = [timed(partial(run, starts, num_steps, devices, s)) for s in range(repeats + 1)]
            wall, cpu = min((t["wall_s"], t["cpu_s"]) for t in times[1:])
            rows.append({"dim": dim, "chains": chains, "steps": num_steps, "devices": count,
                         "call": call, "first s": times[0]["wall_s"], "run s": wall,
                         "cpu per wall": cpu / wall})  # fmt: skip
    return rows


def sharding(steps, counts=(1, 2)):
    rows = []
    for count in counts:
        flag = f"--xla_force_host_platform_device_count={count}"
        env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip())
        rows += child_json("costs", "sharding", steps, env=env)
    base = {r["dim"]: r["run s"] for r in rows if r["devices"] == 1 and r["call"] == "devices=None"}
    return [{**r, "speed-up": base[r["dim"]] / r["run s"]} for r in rows]


def main(quick=False):
    trap = trap_cost((10, 100) if quick else (10, 1000))
    shards, worst = sharding(2000 if quick else 12_000), trap[-1]
    text = f"`trap_report` ≤ 10 s at d = {worst['dim']} (a repeat call)"
    measured = f"{min(worst['repeats s']):.1f} s (first call {worst['first s']:.1f} s)"
    goals = [goal(text, min(worst["repeats s"]), 10.0, worst["repeats s"], measured)]
    fields = {"costs_trap": table(trap), "costs_sharding": table(shards)}
    return {"trap": trap, "sharding": shards, "goals": goals, "fields": fields}


if __name__ == "__main__":
    script(main, __doc__, children={"sharding": sharding_child})
