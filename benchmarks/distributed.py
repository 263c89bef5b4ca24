"""Chains over two processes (``jax.distributed``, one CPU device each, gloo) against one
process at a fixed total of chains: ``rs.sample_chains`` with ``gather=True`` and ``False``.
Fresh processes per configuration (``python -m benchmarks.distributed child ...``); each call
after a barrier, its time the slower process's; ``cores``: CPU seconds over wall seconds.

Run: .venv/bin/python -m benchmarks.distributed [--quick] [--out FILE]
"""

import os
import socket
import subprocess
import sys
from functools import partial

import jax

from .timing import last_json, log, script, table, timed


def child(process_id, num_processes, port, repeats, steps):
    if num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    from jax.experimental import multihost_utils

    import robust_score as rs

    ula, rows, calls = rs.ula(lambda x: -x, 0.1), [], {"one process": {"devices": None}}
    if num_processes > 1:
        calls = {f"gather={g}": {"devices": jax.devices(), "gather": g} for g in (True, False)}

    def run(starts, cell, options, seed):  # waited on: gather=False returns before the work ends
        return rs.sample_chains(ula, jax.random.key(seed), starts, cell["steps"],
                                thin=cell["thin"], **options)[:2]  # fmt: skip

    # compute only (last draw kept), then every draw kept and gathered (114 MiB at 300 draws)
    for cell in ({"dim": 2, "chains": 1000, "steps": steps, "thin": steps},
                 {"dim": 100, "chains": 1000, "steps": steps // 60, "thin": 1}):  # fmt: skip
        starts = jax.numpy.zeros((cell["chains"], cell["dim"]))
        for call, options in calls.items():
            times = []
            for seed in range(repeats + 1):
                multihost_utils.sync_global_devices(f"{cell} {call} {seed}")
                times.append(timed(partial(run, starts, cell, options, seed)))
            rows.append({**cell, "processes": num_processes, "call": call,
                         "first s": times[0]["wall_s"],
                         "times": [(t["wall_s"], t["cpu_s"]) for t in times[1:]]})  # fmt: skip
    return rows


def spawn(num_processes, repeats, steps):
    """Rows of one configuration: per cell and call, the slower process's times."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    command = [sys.executable, "-m", "benchmarks.distributed", "child"]
    args = (num_processes, port, repeats, steps)
    processes = [subprocess.Popen([*command, *map(str, (i, *args))], stdout=subprocess.PIPE,
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
    for same in zip(*(last_json(out) for out, _ in outputs), strict=True):  # one row a process
        calls = zip(*(r.pop("times") for r in same), strict=True)
        rows.append({**same[0], "first s": max(r["first s"] for r in same)})
        rows[-1]["calls"] = [(max(w for w, _ in call), sum(c for _, c in call)) for call in calls]
    return rows


def main(quick=False):
    rounds, repeats, steps = (1, 2, 1800) if quick else (2, 3, 12_000)
    # the two configurations launched in turn, `rounds` times each
    runs = [[r for n in (1, 2) for r in spawn(n, repeats, steps)] for _ in range(rounds)]
    one, rows = {}, []
    for same in zip(*runs, strict=True):  # a row's runs over the rounds
        wall, cpu = min(call for r in same for call in r.pop("calls"))
        one.setdefault(same[0]["dim"], wall)  # the one-process rows come first
        rows.append({**same[0], "first s": min(r["first s"] for r in same), "run s": wall,
                     "cores": cpu / wall, "speed-up": one[same[0]["dim"]] / wall})  # fmt: skip
        log(rows[-1])
    return {"rows": rows, "goals": [], "fields": {"distributed": table(rows)}}


if __name__ == "__main__":
    script(main, __doc__, children={"child": child})
