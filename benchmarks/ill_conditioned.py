"""Minimum ESS of ``rs.mala`` on an ill-conditioned Gaussian (d = 100, variances log-spaced
over [1, 1000]), axis-aligned or randomly rotated, after ``rs.mala_adaptation`` with an
identity, diagonal or dense mass; and how far the adapted mass is from the covariance: the
extreme eigenvalues of ``M⁻¹ Σ⁻¹`` (1 and 1 for the exact mass).

Run: .venv/bin/python -m benchmarks.ill_conditioned [--quick] [--out FILE]
(``--warmup 2000``: the longer warm-up of docs/guide.md; ``--draws`` steps per chain)
"""

import time

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

from .timing import log, rotated, script, table

DIM, CONDITION, CHAINS = 100, 1000.0, 4
MASSES = {"identity": None, "diagonal": False, "dense": True}  # name: dense_mass


def run(cov, dense_mass, warmup, draws):
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(DIM), jnp.asarray(cov, jnp.float32))
    adaptation = rs.mala_adaptation(logdensity, adapt_mass_matrix=dense_mass is not None,
                                    dense_mass=dense_mass)  # fmt: skip
    key_warmup, key_draws = jax.random.split(jax.random.key(0))
    started = time.perf_counter()
    (state, parameters), _ = adaptation.run(key_warmup, jnp.zeros(DIM), warmup)
    starts = jnp.tile(state.position, (CHAINS, 1))
    tree = rs.run(rs.mala(logdensity, **parameters), key_draws, starts, draws)
    row = {"min ESS": float(arviz_stats.ess(tree)["x"].min()),
           "step": float(parameters["step_size"]),
           "acceptance": float(tree.sample_stats["acceptance_rate"].mean()),
           "wall s": time.perf_counter() - started}  # fmt: skip
    if "inverse_mass_matrix" in parameters:
        imm = np.asarray(parameters["inverse_mass_matrix"], np.float64)
        lower = np.linalg.cholesky(np.diag(imm) if imm.ndim == 1 else imm)
        values = np.linalg.eigvalsh(lower.T @ np.linalg.solve(cov, lower))
        row["M⁻¹Σ⁻¹ eigenvalues"] = [float(values.min()), float(values.max())]
    return row


def main(quick=False, warmup=1000, draws=4000):
    warmup, draws = (300, 500) if quick else (warmup, draws)
    rows, variances = [], np.geomspace(1.0, CONDITION, DIM)
    for layout in ("axis-aligned", "rotated"):
        cov = rotated(variances) if layout == "rotated" else np.diag(variances)
        for mass, dense_mass in MASSES.items():
            rows.append({"target": layout, "mass": mass, **run(cov, dense_mass, warmup, draws)})
            rows[-1]["÷ identity"] = rows[-1]["min ESS"] / rows[-1 - (len(rows) - 1) % 3]["min ESS"]
            log(rows[-1])
    fields = {"ill_rows": table(rows), "ill_warmup": warmup, "ill_draws": draws}
    return {"rows": rows, "goals": [], "fields": fields}


if __name__ == "__main__":
    script(main, __doc__, warmup=1000, draws=4000)
