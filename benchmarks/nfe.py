"""Sample quality per score evaluation (NFE) of ``rs.sample_batch`` with the reverse SDE, the
Heun PF-ODE, predictor-corrector, DPM-Solver++(2M) and EDM's stochastic sampler under
``vp()`` with exact noised scores: sliced W2 and energy distance to exact draws, beside their
values between two exact samples (the floor).

Run: .venv/bin/python benchmarks/nfe.py [--quick] [--out nfe.json]
"""

import math

import jax
import numpy as np
from timing import compare, log, script

import robust_score as rs

SCHEDULE = rs.schedules.vp()
NFE_GRID = (5, 10, 20, 50, 200, 1000)
NUM_SAMPLES, NUM_ENERGY, NUM_DIRECTIONS, FLOOR_SEEDS = 8192, 2000, 256, 5
MOVES = {  # method: moves within `nfe` score evaluations, the Tweedie step included
    "sde": lambda nfe: nfe - 1,
    "ode": lambda nfe: (nfe - 1) // 2,  # Heun: two evaluations per move
    "pc": lambda nfe: (nfe - 1) // 2,  # one predictor and one corrector evaluation per move
    "dpmpp_2m": lambda nfe: nfe - 1,  # one evaluation per move, on its log-SNR grid
    "edm": lambda nfe: (nfe - 1) // 2,  # EDM's Heun on the Karras grid, no churn
    "edm_churn": lambda nfe: (nfe - 1) // 2,  # the same with churn
}
# the few-step goal (DPM-Solver++(2M) at <= 10 NFE against the 1000-step SDE and Heun) is
# decided on sample pairs this far apart: on the narrow ring, one pair's sliced W2 has a
# sampling sd (~0.05) of the size of the gap between the methods, so each method is measured
# on GOAL_REPEATS independent (draw key, reference sample) pairs and compared on the means
GOAL_TARGETS, GOAL_REPEATS = ("narrow_ring", "anisotropic_16"), 6
GOAL_BUDGETS = {"dpmpp_2m": 10, "ode": 10, "sde": 1000}  # the largest NFE <= each budget
# EDM's churn raises the noise level by gamma = s_churn / num_steps per step: a fixed 10 %
EDM_GAMMA = 0.1


def settings_for(method, moves):
    if method == "edm_churn":
        return rs.ReverseDiffusion(SCHEDULE, moves, "edm", s_churn=EDM_GAMMA * moves)
    return rs.ReverseDiffusion(SCHEDULE, moves, method)


def unbalanced_pair():
    """0.9 N(0, 0.5 I) + 0.1 N(m, 0.3 I) in d = 8, ||m|| = 6."""
    means = np.zeros((2, 8))
    means[1] = 6.0 / math.sqrt(8)
    return np.array([0.9, 0.1]), means, np.array([0.5, 0.3])


def ring():
    """8 modes on a circle of radius 4 in 2-D, std 0.2, weights 1/36, ..., 8/36."""
    angles = 2 * np.pi * np.arange(8) / 8
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.arange(1, 9) / 36.0, means, np.full(8, 0.04)


def narrow_ring():
    """The ring with narrow modes: std 0.05, weights 1/36, ..., 8/36."""
    weights, means, _ = ring()
    return weights, means, np.full(8, 0.05**2)


def anisotropic_16():
    """Three components in d = 16, weights 0.5 / 0.3 / 0.2, means N(0, 9 I) (seed 0), each
    with the same diagonal covariance, standard deviations log-spaced from 0.1 to 2."""
    means = 3.0 * np.random.default_rng(0).standard_normal((3, 16))
    variances = np.tile(np.geomspace(0.1, 2.0, 16) ** 2, (3, 1))
    return np.array([0.5, 0.3, 0.2]), means, variances


# targets run with a DSM-learned time score instead of the exact one (trained on TRAIN_DRAWS
# exact draws): every method then carries the network's error too, against exact draws
LEARNED = ("pair_learned",)
TRAIN_DRAWS, TRAIN_STEPS, TRAIN_HIDDEN = 4096, 4000, (128, 128)

TARGETS = {
    "pair": unbalanced_pair(),
    "pair_learned": unbalanced_pair(),
    "ring": ring(),
    "narrow_ring": narrow_ring(),
    "anisotropic_16": anisotropic_16(),
}


def exact_draws(mixture, seed):
    weights, means, variances = mixture
    rng = np.random.default_rng(seed)
    component = rng.choice(len(weights), size=NUM_SAMPLES, p=weights / weights.sum())
    noise = rng.standard_normal((NUM_SAMPLES, means.shape[1]))
    scale = np.sqrt(variances[component])
    return means[component] + (scale[:, None] if scale.ndim == 1 else scale) * noise


def metrics(x, y, theta, seed):
    """Sliced W2 and energy distance between two samples (inf when ``x`` is not finite)."""
    if not np.all(np.isfinite(x)):
        return {"sw2": math.inf, "energy": math.inf}
    px, py = (np.sort(np.asarray(a, np.float64) @ theta.T, axis=0) for a in (x, y))
    energy, _, _ = rs.diagnostics.energy_test(
        x[:NUM_ENERGY], y[:NUM_ENERGY], rng_key=jax.random.key(seed), num_permutations=10
    )
    return {"sw2": float(np.sqrt(np.mean((px - py) ** 2))), "energy": float(energy)}


def main(quick=False):
    grid = (20, 1000) if quick else NFE_GRID
    rows, goal_rows, floors = (
        [],
        [],
        {},
    )  # floors: {target: sw2 / energy mean and sd, exact vs exact}
    for target, mixture in TARGETS.items():
        weights, means, variances = mixture
        dim = means.shape[1]
        if target in LEARNED:
            trained = rs.learn.train_dsm(
                exact_draws(mixture, 3)[:TRAIN_DRAWS],
                SCHEDULE,
                rng_key=jax.random.key(4),
                num_steps=TRAIN_STEPS,
                hidden=TRAIN_HIDDEN,
            )
            score = trained.time_score_fn
        else:
            score = rs.scores.gaussian_mixture(weights, means, variances, schedule=SCHEDULE)
        theta = np.random.default_rng(0).standard_normal((NUM_DIRECTIONS, dim))
        theta /= np.linalg.norm(theta, axis=1, keepdims=True)
        reference = exact_draws(mixture, 7)
        pairs = [
            metrics(
                exact_draws(mixture, 1000 + 2 * s), exact_draws(mixture, 1001 + 2 * s), theta, s
            )
            for s in range(FLOOR_SEEDS)
        ]
        floors[target] = {
            f"{name}_{stat.__name__}": float(stat([p[name] for p in pairs]))
            for name in ("sw2", "energy")
            for stat in (np.mean, np.std)
        }
        log(target, floors[target])
        for method, moves_for in MOVES.items():
            for budget in grid:
                moves = moves_for(budget)
                if moves < 1:
                    continue
                settings = settings_for(method, moves)
                key = jax.random.key(budget)

                def draw(settings=settings, key=key, score=score, dim=dim):
                    return rs.sample_batch(key, score, settings, NUM_SAMPLES, (dim,))

                timing = compare({"draw": draw}, repeats=1)["draw"]
                rows.append(
                    {
                        "target": target,
                        "method": method,
                        "budget": budget,
                        "moves": moves,
                        "nfe": settings.num_score_evals,
                        **metrics(np.asarray(draw()), reference, theta, budget),
                        "run_s": timing["run_s"],
                        "compile_s": timing["compile_s"],
                    }
                )
                log(*rows[-1].values())
        if target in GOAL_TARGETS and not quick:
            goal_rows.extend(repeated(target, mixture, score, theta))
    return {"rows": rows, "floors": floors, "goal_targets": GOAL_TARGETS, "goal_rows": goal_rows}


def repeated(target, mixture, score, theta):
    """Sliced W2 of each goal method over GOAL_REPEATS fresh (draw key, reference) pairs:
    mean and standard error, beside exact draws against the same references (the floor)."""
    dim = mixture[1].shape[1]
    references = [exact_draws(mixture, 7 + 100 * r) for r in range(GOAL_REPEATS)]
    samplers = {
        method: settings_for(method, MOVES[method](budget))
        for method, budget in GOAL_BUDGETS.items()
    }
    samplers["exact"] = None
    rows = []
    for method, settings in samplers.items():
        values = []
        for r, reference in enumerate(references):
            if settings is None:
                draws = exact_draws(mixture, 5000 + r)
            else:
                draws = rs.sample_batch(
                    jax.random.key(10 + r), score, settings, NUM_SAMPLES, (dim,)
                )
            values.append(metrics(np.asarray(draws), reference, theta, r)["sw2"])
        rows.append(
            {
                "target": target,
                "method": method,
                "nfe": 0 if settings is None else settings.num_score_evals,
                "sw2_mean": float(np.mean(values)),
                "sw2_se": float(np.std(values, ddof=1) / math.sqrt(GOAL_REPEATS)),
                "repeats": GOAL_REPEATS,
            }
        )
        log(*rows[-1].values())
    return rows


if __name__ == "__main__":
    script(main, __doc__, "nfe.json")
