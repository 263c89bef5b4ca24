"""Sample quality per score evaluation (NFE) of ``rs.sample_batch`` under ``vp()`` with exact
noised scores: sliced W2 and energy distance to exact draws, for each method of
``rs.ReverseDiffusion``, beside their values between two exact samples (the floor).

Run: .venv/bin/python -m benchmarks.nfe [--quick] [--out FILE]
"""

import math
import time

import jax
import numpy as np

import robust_score as rs

from .timing import goal, log, script, table

SCHEDULE = rs.schedules.vp()
NUM_SAMPLES, NUM_ENERGY, NUM_DIRECTIONS, FLOOR_SEEDS = 8192, 2000, 256, 5
METHODS = ("sde", "ode", "pc", "dpmpp_2m", "edm", "edm_churn")
GOAL_TARGETS, GOAL_BUDGETS = ("narrow_ring", "anisotropic_16"), {"dpmpp_2m": 10, "ode": 10}


def settings_for(method, nfe):
    # moves within `nfe` score evaluations, the Tweedie step included (Heun, PC, EDM: two
    # evaluations per move; EDM's churn raises the noise level 10 % per step)
    moves = nfe - 1 if method in ("sde", "dpmpp_2m") else (nfe - 1) // 2
    if method == "edm_churn":
        return rs.ReverseDiffusion(SCHEDULE, moves, "edm", s_churn=0.1 * moves)
    return rs.ReverseDiffusion(SCHEDULE, moves, method)


def targets():
    """``{name: (weights, means, variances)}`` of the Gaussian mixtures."""
    pair_means = np.stack([np.zeros(8), np.full(8, 6.0 / math.sqrt(8))])  # ||m|| = 6
    angles = 2 * np.pi * np.arange(8) / 8  # 8 modes on a circle of radius 4, weights 1..8 / 36
    ring_means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    aniso = (np.array([0.5, 0.3, 0.2]), 3.0 * np.random.default_rng(0).standard_normal((3, 16)),
             np.tile(np.geomspace(0.1, 2.0, 16) ** 2, (3, 1)))  # sds 0.1 .. 2  # fmt: skip
    return {"pair": (np.array([0.9, 0.1]), pair_means, np.array([0.5, 0.3])),
            "ring": (np.arange(1, 9) / 36.0, ring_means, np.full(8, 0.2**2)),
            "narrow_ring": (np.arange(1, 9) / 36.0, ring_means, np.full(8, 0.05**2)),
            "anisotropic_16": aniso}  # fmt: skip


def exact_draws(mixture, seed):
    weights, means, variances = mixture
    rng = np.random.default_rng(seed)
    component = rng.choice(len(weights), size=NUM_SAMPLES, p=weights / weights.sum())
    scale = np.sqrt(variances[component])
    noise = rng.standard_normal((NUM_SAMPLES, means.shape[1]))
    return means[component] + (scale[:, None] if scale.ndim == 1 else scale) * noise


def metrics(x, y, theta, seed):
    """Sliced W2 and energy distance between two samples (inf when ``x`` is not finite)."""
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        return math.inf, math.inf
    px, py = (np.sort(np.asarray(a, np.float64) @ theta.T, axis=0) for a in (x, y))
    test = {"rng_key": jax.random.key(seed), "num_permutations": 10}
    energy = rs.diagnostics.energy_test(x[:NUM_ENERGY], y[:NUM_ENERGY], **test)[0]
    return float(np.sqrt(np.mean((px - py) ** 2))), float(energy)


def main(quick=False):
    budgets, reference_nfe, repeats = ((10, 20), 200, 2) if quick else ((10, 20, 50), 1000, 6)
    grid = [(m, b) for m in METHODS for b in budgets] + [("sde", reference_nfe)]
    sw2_rows, energy_rows, floors, goals, few = {}, {}, {}, [], []  # few: few-step goal rows
    for target, mixture in targets().items():
        dim, score = mixture[1].shape[1], rs.scores.gaussian_mixture(*mixture, schedule=SCHEDULE)
        theta = np.random.default_rng(0).standard_normal((NUM_DIRECTIONS, dim))
        theta /= np.linalg.norm(theta, axis=1, keepdims=True)
        pairs = np.array([metrics(exact_draws(mixture, 1000 + 2 * s),
                                  exact_draws(mixture, 1001 + 2 * s), theta, s)
                          for s in range(FLOOR_SEEDS)])  # fmt: skip
        floors[target] = {"target": target, "sw2 mean": pairs[:, 0].mean(),
                          "sw2 sd": pairs[:, 0].std(), "energy mean": pairs[:, 1].mean(),
                          "energy sd": pairs[:, 1].std()}  # fmt: skip
        reference, values = exact_draws(mixture, 7), {}
        for method, budget in grid:
            settings, key = settings_for(method, budget), jax.random.key(budget)
            started = time.perf_counter()  # compile included: one call per setting
            x = jax.block_until_ready(rs.sample_batch(key, score, settings, NUM_SAMPLES, (dim,)))
            seconds, nfe = time.perf_counter() - started, settings.num_score_evals
            values[method, budget] = sw2, energy = metrics(x, reference, theta, budget)
            row = sw2_rows.setdefault((method, nfe), {"method": method, "NFE": nfe})
            row.update({target: sw2, f"{target} s": seconds})
            energy_rows.setdefault((method, nfe), {"method": method, "NFE": nfe})[target] = energy
            log(target, method, nfe, sw2, energy, f"{seconds:.2f} s")
        if target in ("pair", "ring"):  # <= 20 NFE within 1.5 x the reference SDE's sliced W2
            high, sd = values["sde", reference_nfe][0], floors[target]["sw2 sd"]
            for method in ("sde", "ode", "pc"):
                low = values[method, 20][0]
                text = f"{method}, {target}: sliced W2 at 20 NFE ≤ 1.5 × SDE at {reference_nfe} NFE"
                goals.append(goal(text, low / high, 1.5, [(low + k * sd) / high for k in (-2, 2)]))
        if target in GOAL_TARGETS:
            goals.append(few_step_goal(target, mixture, score, theta, repeats, reference_nfe, few))
    sw2, energy = list(sw2_rows.values()), list(energy_rows.values())
    fields = {"nfe_floors": table(list(floors.values())), "nfe_sw2": table(sw2)}
    fields.update(nfe_energy=table(energy), nfe_repeated=table(few))
    return {"floors": floors, "sw2": sw2, "energy": energy, "goals": goals, "fields": fields}


def few_step_goal(target, mixture, score, theta, repeats, reference_nfe, rows):
    """The few-step goal, on the means over ``repeats`` fresh (draw key, reference) pairs: one
    pair's sliced W2 has a sampling sd the size of the gap between the methods."""
    dim, budgets = mixture[1].shape[1], {**GOAL_BUDGETS, "sde": reference_nfe}
    references, stats = [exact_draws(mixture, 7 + 100 * r) for r in range(repeats)], {}
    for method, budget in [*budgets.items(), ("exact", 0)]:
        settings, values = None if method == "exact" else settings_for(method, budget), []
        for r, reference in enumerate(references):
            draws = exact_draws(mixture, 5000 + r) if settings is None else rs.sample_batch(
                jax.random.key(10 + r), score, settings, NUM_SAMPLES, (dim,))  # fmt: skip
            values.append(metrics(draws, reference, theta, r)[0])
        stats[method] = mean, se = np.mean(values), np.std(values, ddof=1) / math.sqrt(repeats)
        nfe = settings.num_score_evals if settings else 0
        rows.append({"target": target, "method": method, "NFE": nfe, "sw2 mean": mean, "se": se})
    (few, few_se), (sde, sde_se) = stats["dpmpp_2m"], stats["sde"]
    ratio_se = (ratio := few / sde) * math.hypot(few_se / few, sde_se / sde)
    ok = ratio if few < stats["ode"][0] else math.inf
    text = (f"dpmpp_2m, {target}: 10 NFE within 1.2 × the {reference_nfe}-NFE SDE's sliced W2 "
            f"and below Heun's at 9 (means of {repeats} pairs)")  # fmt: skip
    measured = f"{ratio:.2f} ± {ratio_se:.2f}"
    return goal(text, ok, 1.2, [ratio - 2 * ratio_se, ratio + 2 * ratio_se], measured)


if __name__ == "__main__":
    script(main, __doc__)
