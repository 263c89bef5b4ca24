"""Chains and diffusion draws over devices that span processes (``jax.distributed``).

Two local processes, two CPU devices each, form one four-device mesh over a loopback
coordinator (gloo collectives); a third process is the one-process reference over four devices
of its own. Every process runs tests/_distributed_worker.py and saves what it got; the draws
must be bitwise the reference's. The reference has as many devices as the mesh because XLA
compiles each device's batch of chains for its size (on CPU, vector FMA for part of it): a
chain's draws on a device holding 4 chains and on one holding 2 agree to rounding, not bit for
bit, in one process as in several.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import robust_score as rs

WORKER = Path(__file__).with_name("_distributed_worker.py")
NUM_PROCESSES, DEVICES_PER_PROCESS, NUM_CHAINS = 2, 2, 8
TIMEOUT_S = 150  # a worker takes 5-15 s on two busy cores, mostly imports and compilation


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(process_id, num_processes, num_devices, port, out_dir):
    """Start one worker, its output in ``out_dir/process_<id>.log``; returns (process, log)."""
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}",
    )
    log = out_dir / f"process_{process_id}.log"
    arguments = [str(process_id), str(num_processes), str(port), str(out_dir)]
    with open(log, "w") as output:  # the child keeps its own handle
        process = subprocess.Popen(
            [sys.executable, str(WORKER), *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return process, log


def _launch_all(tmp_path_factory):
    """``(reference, [process 0, process 1])``, each the dict of arrays its worker saved."""
    spread_dir, reference_dir = (tmp_path_factory.mktemp(n) for n in ("spread", "reference"))
    port, launched = _free_port(), []
    try:
        for process_id in range(NUM_PROCESSES):
            launched.append(
                _launch(process_id, NUM_PROCESSES, DEVICES_PER_PROCESS, port, spread_dir)
            )
        launched.append(_launch(0, 1, NUM_PROCESSES * DEVICES_PER_PROCESS, 0, reference_dir))
        deadline = time.monotonic() + TIMEOUT_S
        for process, _ in launched:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        pass  # reported below, with every worker's output
    finally:
        # a worker left running (past the deadline, or after an error here) is killed: one
        # stuck at the coordinator would otherwise wait for its peer for good
        for process, _ in launched:
            if process.poll() is None:
                process.kill()
            process.wait()
    failures = [
        f"--- {log} (exit code {process.returncode}) ---\n{log.read_text()[-4000:]}"
        for process, log in launched
        if process.returncode != 0
    ]
    assert not failures, (
        f"a worker failed, or ran past {TIMEOUT_S} s and was killed (exit code -9):\n"
        + "\n".join(failures)
    )

    def saved(folder, process_id):
        return dict(np.load(folder / f"process_{process_id}.npz"))

    return saved(reference_dir, 0), [saved(spread_dir, i) for i in range(NUM_PROCESSES)]


def test_two_processes_hold_every_chain_as_one_process_does(tmp_path_factory):
    # one test, not one per property: pytest-xdist would launch the three workers again on
    # each of its processes that a module-scoped fixture landed on
    runs = _launch_all(tmp_path_factory)
    _every_process_holds_every_chain_bitwise(runs)
    _process_local_chains_keep_their_global_coordinates(runs)
    _a_run_spread_over_processes_resumes_from_its_state(runs)


def _every_process_holds_every_chain_bitwise(runs):
    reference, processes = runs
    for process_id, got in enumerate(processes):
        for name in ("x", "diverging", "chain", "chains_x", "batch"):
            np.testing.assert_array_equal(
                got[name], reference[name], err_msg=f"process {process_id}: {name}"
            )
        np.testing.assert_array_equal(got["chain"], np.arange(NUM_CHAINS))


def _process_local_chains_keep_their_global_coordinates(runs):
    reference, processes = runs
    per_process = NUM_CHAINS // NUM_PROCESSES
    for process_id, got in enumerate(processes):
        mine = np.arange(process_id * per_process, (process_id + 1) * per_process)
        np.testing.assert_array_equal(got["local_chain"], mine)
        np.testing.assert_array_equal(got["local_x"], reference["x"][mine])
        np.testing.assert_array_equal(got["local_batch_rows"], mine)
        np.testing.assert_array_equal(got["local_batch"], reference["batch"][mine])


def _a_run_spread_over_processes_resumes_from_its_state(runs):
    reference, processes = runs
    for got in processes:
        np.testing.assert_array_equal(got["resumed_x"], reference["resumed_x"])
        np.testing.assert_array_equal(got["resumed_draw"], np.arange(10, 20))
        assert "pass the `devices` it ran on" in str(got["refused_state"])


def test_gather_must_be_true_or_false():
    algorithm = rs.ula(rs.scores.gaussian(np.zeros(2, np.float32), 1.0), step_size=0.1)
    starts = np.zeros((2, 2), np.float32)
    with pytest.raises(TypeError, match="`gather` must be True or False"):
        rs.run(algorithm, jax.random.key(0), starts, 4, gather="all")
    settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=4, method="ode")
    score = rs.scores.gaussian(np.zeros(2, np.float32), 1.0, schedule=settings.schedule)
    with pytest.raises(TypeError, match="`gather` must be True or False"):
        rs.sample_batch(jax.random.key(0), score, settings, 4, (2,), gather=None)
