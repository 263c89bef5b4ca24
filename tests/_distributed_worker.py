"""One process of the runs that tests/test_distributed.py launches.

Run: python tests/_distributed_worker.py PROCESS_ID NUM_PROCESSES COORDINATOR_PORT OUT_DIR

With ``NUM_PROCESSES`` > 1 it joins the loopback coordinator first (``jax.distributed``, gloo
collectives on CPU); with 1 it is the one-process reference and joins nothing. Either way it
calls ``rs.run``, ``rs.sample_chains`` and ``rs.sample_batch`` over every device of every
process and saves what this process got to ``OUT_DIR/process_<id>.npz``.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

NUM_CHAINS, NUM_SAMPLES, DIM = 8, 8, 3


def sample_everything(devices) -> dict[str, np.ndarray]:
    """What the test compares, by name. Every run has the same static settings, so the two
    halves of the resumed run and the whole runs share one compiled program (the test's time
    is mostly compilation)."""
    algorithm = rs.ula(rs.scores.gaussian(jnp.arange(DIM, dtype=float), 2.0), step_size=0.2)
    key, starts = jax.random.key(7), jax.random.normal(jax.random.key(8), (NUM_CHAINS, DIM))
    settings = {"thin": 2, "devices": devices}
    results = {}

    tree = rs.run(algorithm, key, starts, 20, **settings)
    results["x"] = tree.posterior["x"].values
    results["diverging"] = tree.sample_stats["diverging"].values
    results["chain"] = tree.posterior["chain"].values

    positions, _, _ = rs.sample_chains(algorithm, key, starts, 20, **settings)
    results["chains_x"] = np.asarray(positions)

    local = rs.run(algorithm, key, starts, 20, gather=False, **settings)
    results["local_x"] = local.posterior["x"].values
    results["local_chain"] = local.posterior["chain"].values

    _, state = rs.run(algorithm, key, starts, 20, return_state=True, **settings)
    resumed = rs.run(algorithm, key, state, 20, **settings)
    results["resumed_x"] = resumed.posterior["x"].values
    results["resumed_draw"] = resumed.posterior["draw"].values
    if jax.process_count() > 1:  # a state spread over processes needs its `devices` back
        try:
            rs.run(algorithm, key, state, 20, thin=2)
            results["refused_state"] = np.array("")
        except ValueError as err:
            results["refused_state"] = np.array(str(err))

    diffusion = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=4, method="ode")
    score = rs.scores.gaussian(jnp.arange(DIM, dtype=float), 2.0, schedule=diffusion.schedule)
    batch = (jax.random.key(9), score, diffusion, NUM_SAMPLES, (DIM,))
    results["batch"] = np.asarray(rs.sample_batch(*batch, devices=devices))
    shards = rs.sample_batch(*batch, devices=devices, gather=False).addressable_shards
    rows = [np.arange(*shard.index[0].indices(NUM_SAMPLES)) for shard in shards]
    results["local_batch"] = np.concatenate([np.asarray(shard.data) for shard in shards])
    results["local_batch_rows"] = np.concatenate(rows)
    return results


def main(process_id, num_processes, port, out_dir):
    if num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=60,
        )
    assert jax.process_count() == num_processes, jax.devices()
    results = sample_everything(devices=jax.devices())
    np.savez(f"{out_dir}/process_{process_id}.npz", **results)
    if num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    process_id, num_processes, port = (int(arg) for arg in sys.argv[1:4])
    main(process_id, num_processes, port, sys.argv[4])
