"""Chains over two processes (``jax.distributed``, one CPU device each, gloo collectives)
against one process, at a fixed total number of chains: ``rs.sample_chains`` with
``gather=True`` and ``gather=False``. See docs/benchmarks.md.

Run: .venv/bin/python benchmarks/distributed.py [--quick] [--out distributed.json]

Each configuration runs in fresh processes: ``python benchmarks/distributed.py child
PROCESS_ID NUM_PROCESSES PORT REPEATS`` prints one JSON line of its timings. In each, every
call is timed after a barrier across processes (so both start together), after one compiling
call; over two processes a call's time is the slower process's (a run is done when both are).
The one- and two-process configurations are launched in turn, ``ROUNDS`` times each, so that
a change in the machine's load hits both alike; a cell's time is its fastest call over all
rounds. ``cores`` is the process-CPU seconds of that call, summed over processes, over its
wall seconds: near 2, the run had both cores of the machine.
"""

import json
import os
import socket
import subprocess
import sys
import time

import jax

# rough sizes: compute-bound with nothing kept but the last draw, then every draw kept and
# gathered (d = 100, 1000 chains, 300 draws: 114 MiB of float32)
CELLS = (
    {"dim": 2, "chains": 1000, "steps": 20_000, "thin": 20_000},
    {"dim": 100, "chains": 1000, "steps": 300, "thin": 1},
)
QUICK_CELLS = (
    {"dim": 2, "chains": 1000, "steps": 2_000, "thin": 2_000},
    {"dim": 100, "chains": 1000, "steps": 30, "thin": 1},
)
ROUNDS, REPEATS = 2, 5
TIMEOUT_S = 600


def child(process_id, num_processes, port, repeats, cells):
    """Time ``rs.sample_chains`` on every cell in this process; returns its rows. Not
    ``rs.run``: its DataTree and the checks on it cost the same in one process or two."""
    if num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=num_processes,
            process_id=process_id,
        )
    import jax.numpy as jnp
    from jax.experimental import multihost_utils

    import robust_score as rs

    ula, rows = rs.ula(lambda x: -x, 0.1), []
    calls = {"one process": {"devices": None}}
    if num_processes > 1:
        calls = {
            "gather=True": {"devices": jax.devices(), "gather": True},
            "gather=False": {"devices": jax.devices(), "gather": False},
        }
    for cell in cells:
        starts = jnp.zeros((cell["chains"], cell["dim"]))
        steps = {"num_steps": cell["steps"], "thin": cell["thin"]}
        for call, options in calls.items():
            times = []
            for seed in range(repeats + 1):
                multihost_utils.sync_global_devices(f"{cell} {call} {seed}")
                started, started_cpu = time.perf_counter(), time.process_time()
                draws = rs.sample_chains(ula, jax.random.key(seed), starts, **steps, **options)
                jax.block_until_ready(draws[:2])  # gather=False returns before the work ends
                times.append((time.perf_counter() - started, time.process_time() - started_cpu))
            rows.append({**cell, "processes": num_processes, "call": call})
            rows[-1].update({"first_s": times[0][0], "times": times[1:]})
    return rows


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawn(num_processes, repeats, quick):
    """Rows of one configuration: per cell and call, the slower process's times."""
    port, env = _free_port(), dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    command = [sys.executable, os.path.abspath(__file__), "child"]
    mode = ["quick"] if quick else []
    processes = [
        subprocess.Popen(
            [*command, str(i), str(num_processes), str(port), str(repeats), *mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(num_processes)
    ]
    try:
        outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    finally:
        for process in processes:  # a process whose peer failed waits at the coordinator
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        if process.returncode:
            raise RuntimeError(f"a benchmark process failed:\n{stderr[-3000:]}")
    per_process = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    rows = []
    for cell_rows in zip(*per_process, strict=True):
        row = {k: v for k, v in cell_rows[0].items() if k != "times"}
        row["first_s"] = max(r["first_s"] for r in cell_rows)
        # (wall, cpu) of each call: the slower process's wall, every process's CPU
        calls = zip(*(r["times"] for r in cell_rows), strict=True)
        row["calls"] = [(max(w for w, _ in call), sum(c for _, c in call)) for call in calls]
        rows.append(row)
    return rows


def main(quick=False):
    rounds, repeats = (1, 2) if quick else (ROUNDS, REPEATS)
    launched = [_spawn(count, repeats, quick) for _ in range(rounds) for count in (1, 2)]
    cells = {}
    for row in (row for rows in launched for row in rows):
        key = (row["dim"], row["processes"], row["call"])
        if key in cells:
            cells[key]["first_s"] = min(cells[key]["first_s"], row["first_s"])
            cells[key]["calls"] += row["calls"]
        else:
            cells[key] = row
    one = {}
    rows = []
    for row in cells.values():
        wall, cpu = min(row.pop("calls"))
        row.update({"run_s": wall, "cores": cpu / wall})
        one.setdefault(row["dim"], wall)  # the one-process rows come first
        rows.append({**row, "speedup": one[row["dim"]] / wall})
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        process_id, num_processes, port, repeats = (int(a) for a in sys.argv[2:6])
        cells = QUICK_CELLS if sys.argv[6:7] == ["quick"] else CELLS
        print(json.dumps(child(process_id, num_processes, port, repeats, cells)))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from timing import script

        script(main, __doc__, "distributed.json")
