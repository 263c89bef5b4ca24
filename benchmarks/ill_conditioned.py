"""Minimum ESS of ``rs.mala`` on an ill-conditioned Gaussian, with and without an adapted mass.

The target: d = 100, variances log-spaced over [1, 1000] (condition number 1000), either
axis-aligned or randomly rotated (a Haar rotation from a fixed seed). Each row runs
``rs.mala_adaptation`` for ``--warmup`` steps from the origin (``adapt_mass_matrix=False`` for
the identity: the step only), then 4 chains x ``--draws`` steps of ``rs.mala`` from the
adapted state, and reports the minimum bulk ESS over coordinates (ArviZ) and how far the
adapted mass is from the covariance: the extreme eigenvalues of ``M⁻¹ Σ⁻¹`` (all 1 for the
exact mass), whose ratio is the condition number the sampler still sees.

Run: .venv/bin/python benchmarks/ill_conditioned.py [--warmup 1000] [--draws 4000]
[--seed 0] [--out ill_conditioned.json]
"""

import argparse
import json
import time

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

DIM, CONDITION, CHAINS = 100, 1000.0, 4
MASSES = {"identity": None, "diagonal": False, "dense": True}  # name: dense_mass


def covariance(rotated: bool, dim=DIM, condition=CONDITION, seed=0):
    """``Q diag(λ) Qᵀ`` with ``λ`` log-spaced over ``[1, condition]``; ``Q`` Haar-random from
    ``seed`` when ``rotated``, else the identity."""
    variances = np.geomspace(1.0, condition, dim)
    if not rotated:
        return np.diag(variances)
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))
    return (q * variances) @ q.T


def whitened_spectrum(inverse_mass_matrix, cov):
    """Smallest and largest eigenvalue of ``M⁻¹ Σ⁻¹`` (1 and 1 for the exact mass)."""
    imm = np.asarray(inverse_mass_matrix, np.float64)
    lower = np.linalg.cholesky(np.diag(imm) if imm.ndim == 1 else imm)
    values = np.linalg.eigvalsh(lower.T @ np.linalg.solve(cov, lower))
    return float(values.min()), float(values.max())


def run(cov, dense_mass, warmup, draws, seed):
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(len(cov)), jnp.asarray(cov, jnp.float32))
    adaptation = rs.mala_adaptation(
        logdensity, adapt_mass_matrix=dense_mass is not None, dense_mass=dense_mass
    )
    key_warmup, key_draws = jax.random.split(jax.random.key(seed))
    started = time.perf_counter()
    (state, parameters), _ = adaptation.run(key_warmup, jnp.zeros(len(cov)), warmup)
    starts = jnp.tile(state.position, (CHAINS, 1))
    tree = rs.run(rs.mala(logdensity, **parameters), key_draws, starts, draws)
    row = {
        "min_ess": float(arviz_stats.ess(tree)["x"].min()),
        "step_size": float(parameters["step_size"]),
        "acceptance_rate": float(tree.sample_stats["acceptance_rate"].mean()),
        "wall_s": time.perf_counter() - started,
    }
    if "inverse_mass_matrix" in parameters:
        low, high = whitened_spectrum(parameters["inverse_mass_matrix"], cov)
        row.update(whitened_min=low, whitened_max=high, whitened_condition=high / low)
    return row


def main(warmup=1000, draws=4000, seed=0):
    rows = []
    for layout in ("axis-aligned", "rotated"):
        cov = covariance(layout == "rotated")
        for mass, dense_mass in MASSES.items():
            row = {"target": layout, "mass": mass, **run(cov, dense_mass, warmup, draws, seed)}
            rows.append(row)
            identity = next(r for r in rows if r["target"] == layout and r["mass"] == "identity")
            row["min_ess_over_identity"] = row["min_ess"] / identity["min_ess"]
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return {"dim": DIM, "condition": CONDITION, "chains": CHAINS, "warmup": warmup,
            "draws": draws, "seed": seed, "rows": rows}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=1000, help="rs.mala_adaptation steps")
    parser.add_argument("--draws", type=int, default=4000, help="rs.mala steps per chain")
    parser.add_argument("--seed", type=int, default=0, help="the PRNG key (the rotation is fixed)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    result = main(args.warmup, args.draws, args.seed)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
