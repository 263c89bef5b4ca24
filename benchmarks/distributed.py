"""Chains over two processes (``jax.distributed``, one CPU device each, gloo) against one
process at a fixed total of chains: ``rs.sample_chains`` with ``gather=True`` and ``False``.
Fresh processes per configuration (``python -m benchmarks.distributed child ...``); each call
after a barrier, its time the slower process's; ``cores``: CPU seconds over wall seconds.

Run: .venv/bin/python -m benchmarks.distributed [--quick] [--out FILE]
"""

import json
import os
import socket
import subprocess
import sys
import time

import jax

from .timing import log, script, table


def cells(steps):
    """Compute only (last draw kept), then every draw kept and gathered (d = 100, 1000 chains,
    ``steps // 60`` draws: 114 MiB of float32 at 300)."""
    return ({"dim": 2, "chains": 1000, "steps": steps, "thin": steps},
            {"dim": 100, "chains": 1000, "steps": steps // 60, "thin": 1})  # fmt: skip


def child(process_id, num_processes, port, repeats, steps):
    if num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    import jax.numpy as jnp
    from jax.experimental import multihost_utils

    import robust_score as rs

    ula, rows, calls = rs.ula(lambda x: -x, 0.1), [], {"one process": {"devices": None}}
    if num_processes > 1:
        calls = {f"gather={g}": {"devices": jax.devices(), "gather": g} for g in (True, False)}
    for cell in cells(steps):
        starts = jnp.zeros((cell["chains"], cell["dim"]))
        for call, options in calls.items():
            times = []
            for seed in range(repeats + 1):
                multihost_utils.sync_global_devices(f"{cell} {call} {seed}")
                started, started_cpu = time.perf_counter(), time.process_time()
                draws = rs.sample_chains(ula, jax.random.key(seed), starts, cell["steps"],
                                         thin=cell["thin"], **options)  # fmt: skip
                jax.block_until_ready(draws[:2])  # gather=False returns before the work ends
                times.append((time.perf_counter() - started, time.process_time() - started_cpu))
            rows.append({**cell, "processes": num_processes, "call": call})
            rows[-1].update({"first s": times[0][0], "times": times[1:]})
    return rows


def spawn(num_processes, repeats, steps):
    """Rows of one configuration: per cell and call, the slower process's times."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    args = [str(num_processes), str(port), str(repeats), str(steps)]
    command = [sys.executable, "-m", "benchmarks.distributed", "child"]
    processes = [subprocess.Popen([*command, str(i), *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
                 for i in range(num_processes)]  # fmt: skip
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:  # a process whose peer failed waits at the coordinator
            if process.poll() is None:
                process.kill()
                process.wait()
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a benchmark process failed:\n{outputs[-1][1][-3000:]}")
    rows = []
    for cells in zip(
        *(json.loads(out.strip().splitlines()[-1]) for out, _ in outputs), strict=True
    ):
        calls = zip(*(r.pop("times") for r in cells), strict=True)
        rows.append({**cells[0], "first s": max(r["first s"] for r in cells)})
        rows[-1]["calls"] = [(max(w for w, _ in call), sum(c for _, c in call)) for call in calls]
    return rows


def main(quick=False):
    rounds, repeats, steps = (1, 2, 1800) if quick else (2, 3, 12_000)
    merged = {}  # the two configurations launched in turn, `rounds` times each
    for row in (r for _ in range(rounds) for n in (1, 2) for r in spawn(n, repeats, steps)):
        key = (row["dim"], row["processes"], row["call"])
        if key in merged:
            merged[key]["calls"] += row["calls"]
            merged[key]["first s"] = min(merged[key]["first s"], row["first s"])
        else:
            merged[key] = row
    one, rows = {}, []
    for row in merged.values():
        wall, cpu = min(row.pop("calls"))
        one.setdefault(row["dim"], wall)  # the one-process rows come first
        rows.append({**row, "run s": wall, "cores": cpu / wall})
        rows[-1]["speed-up"] = one[row["dim"]] / wall
        log(rows[-1])
    return {"rows": rows, "goals": [], "fields": {"distributed": table(rows)}}


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(child(*(int(a) for a in sys.argv[2:7]))))
    else:
        script(main, __doc__)
