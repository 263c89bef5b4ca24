"""Wall time of ``trap_report`` on 4 chains x 1000 draws (goal: <= 10 s at d = 1000).

The first report on a new shape compiles the restart runs and statistics; the figure that
matters to a user re-checking runs is the second. Both are printed.

Run: .venv/bin/python benchmarks/diagnostics_cost.py
"""

import time
import warnings

import jax
import jax.numpy as jnp

import robust_score as rs


def main(dims=(10, 100, 1000)):
    rows = []
    for dim in dims:
        score = rs.scores.gaussian(jnp.zeros(dim), 1.0)
        sampler = rs.ula(score, 0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), 1000)
        times = []
        for seed in (1, 2):
            started = time.perf_counter()
            report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=jax.random.key(seed))
            times.append(time.perf_counter() - started)
        rows.append((dim, times[0], times[1], report.status))
        print(f"| {dim} | {times[0]:.1f} | {times[1]:.1f} | {report.status} |", flush=True)
    return rows


if __name__ == "__main__":
    print("| d | first report s (incl. compile) | repeat report s | status |\n|---|---|---|---|")
    main()
