"""Calibrate the trap-report thresholds: false alarms on exact-score runs, detection on traps.

Each case builds a target, a sampler and chain starts as a user would; the user's run and the
report use seed-dependent keys. A false alarm is an overall status ``fail`` on an exact-score
case; a detection is ``fail`` on a trap case. ``warn`` rates are reported too.

Run: .venv/bin/python benchmarks/calibrate_diagnostics.py --seeds 20 --out docs/calibration.md
"""

import argparse
import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

NUM_CHAINS, NUM_STEPS = 4, 1000
RING_SD = 0.8


def normal_starts(dim, scale=1.0, center=0.0):
    return lambda key: center + scale * jax.random.normal(key, (NUM_CHAINS, dim))


def ring(num_modes=8, radius=3.0):
    angles = 2 * math.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def gaussian_case(dim):
    score = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    return {"sampler": rs.ula(score, 0.05), "starts": normal_starts(dim)}


def gmm_case():
    score = rs.scores.gaussian_mixture(np.ones(8), ring(), RING_SD**2)
    # modes 2.9 sd apart: ULA hops between them, given 4000 steps
    return {"sampler": rs.ula(score, 0.05), "starts": normal_starts(2, 4.0), "num_steps": 4000}


def funnel_case(dim=10):
    def logdensity(z):
        v, x = z[0], z[1:]
        return -(v**2) / 18.0 - 0.5 * jnp.sum(x**2) * jnp.exp(-v) - 0.5 * (dim - 1) * v

    return {"sampler": rs.mala(logdensity, 0.1), "starts": normal_starts(dim)}


def thm1_case(dim=200):
    trapped = rs.scores.center_trap(rs.scores.gaussian(jnp.full(dim, 7.0), 1.0))
    return {"sampler": rs.ula(trapped, 0.1), "starts": normal_starts(dim)}  # Thm 1: N(0, I)


def thm7_case(dim=200, num_train=100):
    train = jax.random.normal(jax.random.key(123), (num_train, dim))
    memorizing = rs.scores.memorization_trap(rs.scores.gaussian(jnp.zeros(dim), 1.0), train)

    def starts(key):
        return train[jax.random.choice(key, num_train, (NUM_CHAINS,), replace=False)]

    return {"sampler": rs.ula(memorizing, 0.005), "starts": starts, "train_data": train}


def off_center_case(dim=50):
    center = jnp.full(dim, 2.0)  # ||c|| = 2 sqrt(d): the target never goes there
    # well spread sqrt(d / stiffness) = 0.33 sqrt(d), inside r_in = 0.6 sqrt(d)
    radii = {"r_in": 0.6 * math.sqrt(dim), "r_out": 0.8 * math.sqrt(dim), "stiffness": 9.0}
    trapped = rs.scores.center_trap(rs.scores.gaussian(jnp.zeros(dim), 1.0), center, **radii)
    return {"sampler": rs.ula(trapped, 0.05), "starts": normal_starts(dim, 0.1, center)}


def spurious_well_case():
    exact = rs.scores.gaussian_mixture(np.ones(8), ring(), RING_SD**2)
    # in 2-D nothing concentrates: the well must be deep (spread 0.1) to hold a chain
    well = rs.scores.center_trap(exact, jnp.zeros(2), r_in=0.8, r_out=1.2, stiffness=100.0)
    return {"sampler": rs.ula(well, 0.005), "starts": normal_starts(2, 0.1)}


CASES = {  # name: (build, its arguments, is a trap)
    "Gaussian d=2 (exact)": (gaussian_case, (2,), False),
    "Gaussian d=50 (exact)": (gaussian_case, (50,), False),
    "Gaussian d=500 (exact)": (gaussian_case, (500,), False),
    "8-mode GMM ring (exact)": (gmm_case, (), False),
    "Neal's funnel d=10, MALA": (funnel_case, (), False),
    "Thm 1 center trap d=200": (thm1_case, (), True),
    "Thm 7 memorization d=200": (thm7_case, (), True),
    "off-center trap d=50": (off_center_case, (), True),
    "spurious well in GMM ring": (spurious_well_case, (), True),
}


def run_case(case, seed):
    key_start, key_run, key_report = jax.random.split(jax.random.key(seed), 3)
    starts = case["starts"](key_start)
    num_steps = case.get("num_steps", NUM_STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = rs.run(case["sampler"], key_run, starts, num_steps, thin=num_steps // NUM_STEPS)
    started = time.perf_counter()
    report = rs.diagnostics.trap_report(
        tree,
        sampler=case["sampler"],
        train_data=case.get("train_data"),
        starts=starts if "train_data" in case else None,
        rng_key=key_report,
    )
    return report, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", default=None, help="substring of a case name")
    args = parser.parse_args(argv)
    rows = [
        f"| case | kind | fail rate ({args.seeds} seeds) | warn rate | restart energy "
        "coefficient, median [min, max] | report s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (build, build_args, is_trap) in CASES.items():
        if args.only and args.only not in name:
            continue
        case = build(*build_args)
        runs = [run_case(case, seed) for seed in range(args.seeds)]
        statuses = [report.status for report, _ in runs]
        stats = [report["restart sensitivity"].statistic for report, _ in runs]
        seconds = [elapsed for _, elapsed in runs]
        fail = np.mean([s == "fail" for s in statuses])
        rate = f"detection {fail:.0%}" if is_trap else f"false alarm {fail:.0%}"
        rows.append(
            f"| {name} | {'trap' if is_trap else 'exact'} | {rate} "
            f"| {np.mean([s == 'warn' for s in statuses]):.0%} "
            f"| {np.median(stats):.3f} [{np.min(stats):.3f}, {np.max(stats):.3f}] "
            f"| {np.median(seconds[1:] or seconds):.1f} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(
                "# Trap-report calibration\n\nGenerated by `benchmarks/calibrate_diagnostics.py"
                f" --seeds {args.seeds}`: {NUM_CHAINS} chains x {NUM_STEPS} steps per run; "
                "the report gets the sampler (and, for Thm 7, the training data and starts).\n\n"
                + table
                + "\n"
            )
    return table


if __name__ == "__main__":
    main()
