"""Diffusion sample quality per score evaluation: reverse SDE, PF-ODE (Heun) and
predictor-corrector under ``rs.schedules.vp()`` with *exact* noised scores, on the two mixtures
of ``tests/test_diffusion.py``; the number of score evaluations (NFE) per sample is read from
``Info.num_score_evals``.

Metrics against fresh exact draws of the mixture:

- energy distance, ``rs.diagnostics.energy_test`` (coordinates standardised by the pooled
  standard deviation; unbiased U-statistic, so it is ~0 +- noise for the same law), on
  ``NUM_ENERGY`` draws from each side;
- sliced W2: ``sqrt(mean_k W2^2(<theta_k, X>, <theta_k, Y>))`` over ``NUM_DIRECTIONS`` fixed
  directions uniform on the sphere, each 1-D W2 from sorted projections of ``NUM_SAMPLES``
  draws on each side (plug-in estimate: positive even for the same law).

The noise floor of each metric is the same statistic between two independent exact samples
of the same sizes (mean and standard deviation over ``FLOOR_SEEDS`` pairs).
"""

import math

import jax
import numpy as np
from bench_common import compare, log

import robust_score as rs

SCHEDULE = rs.schedules.vp()
NFE_GRID = (10, 20, 50, 200, 1000)
NUM_SAMPLES = 8192
NUM_ENERGY = 2000
NUM_DIRECTIONS = 256
FLOOR_SEEDS = 5
GOAL = 1.5
METHODS = {  # label: (method, moves for at most `nfe` evaluations incl. the Tweedie step)
    "reverse SDE": ("sde", lambda nfe: nfe - 1),
    "PF-ODE Heun": ("ode", lambda nfe: (nfe - 1) // 2),
    "PC (1 corrector)": ("pc", lambda nfe: (nfe - 1) // 2),
}


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


TARGETS = {"0.9/0.1 pair, d = 8": unbalanced_pair(), "8-mode ring, d = 2": ring()}


def exact_draws(mixture, num, seed):
    weights, means, variances = mixture
    rng = np.random.default_rng(seed)
    component = rng.choice(len(weights), size=num, p=weights / weights.sum())
    noise = rng.standard_normal((num, means.shape[1]))
    return means[component] + np.sqrt(variances[component])[:, None] * noise


def directions(dim, seed=0):
    theta = np.random.default_rng(seed).standard_normal((NUM_DIRECTIONS, dim))
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


def sliced_w2(x, y, theta):
    px = np.sort(np.asarray(x, np.float64) @ theta.T, axis=0)
    py = np.sort(np.asarray(y, np.float64) @ theta.T, axis=0)
    return float(np.sqrt(np.mean((px - py) ** 2)))


def energy(x, y, seed):
    value, _, _ = rs.diagnostics.energy_test(
        x[:NUM_ENERGY], y[:NUM_ENERGY], rng_key=jax.random.key(seed), num_permutations=10
    )
    return value


def floors(mixture, theta):
    sw, en = [], []
    for seed in range(FLOOR_SEEDS):
        a = exact_draws(mixture, NUM_SAMPLES, 1000 + 2 * seed)
        b = exact_draws(mixture, NUM_SAMPLES, 1001 + 2 * seed)
        sw.append(sliced_w2(a, b, theta))
        en.append(energy(a, b, seed))
    return (np.mean(sw), np.std(sw)), (np.mean(en), np.std(en))


def main(nfe_grid=NFE_GRID, repeats=2):
    results, floor = [], {}
    for target, mixture in TARGETS.items():
        weights, means, variances = mixture
        dim = means.shape[1]
        score = rs.scores.gaussian_mixture(weights, means, variances, schedule=SCHEDULE)
        theta = directions(dim)
        reference = exact_draws(mixture, NUM_SAMPLES, 7)
        floor[target] = floors(mixture, theta)
        log(target, "floor", floor[target])
        for label, (method, moves_for) in METHODS.items():
            for budget in nfe_grid:
                moves = moves_for(budget)
                key = jax.random.key(budget)

                def draw(key=key, moves=moves, method=method, score=score, dim=dim):
                    return rs.diffusion.sample(
                        key,
                        score,
                        SCHEDULE,
                        NUM_SAMPLES,
                        (dim,),
                        method=method,
                        num_steps=moves,
                        return_info=True,
                    )

                timing = compare({"sample": draw}, repeats)["sample"]
                samples, info = draw()
                nfe = int(info.num_score_evals[0])
                samples = np.asarray(samples)
                finite = bool(np.all(np.isfinite(samples)))
                results.append(
                    {
                        "target": target,
                        "method": label,
                        "budget": budget,
                        "moves": moves,
                        "nfe": nfe,
                        "sw2": sliced_w2(samples, reference, theta) if finite else math.inf,
                        "energy": energy(samples, reference, budget) if finite else math.inf,
                        "run": timing.run,
                        "compile": timing.compile,
                        "first": timing.first,
                    }
                )
                log(*results[-1].values())
    return results, floor


HEADER = [
    "target",
    "method",
    "moves",
    "NFE",
    "sliced W2",
    "energy distance",
    "run s",
    "compile s",
]


def rows(results):
    return [
        [
            r["target"],
            r["method"],
            r["moves"],
            r["nfe"],
            r["sw2"],
            r["energy"],
            r["run"],
            r["compile"],
        ]
        for r in results
    ]


def goal_rows(results, floor, low=20, high=1000):
    """At <= ``low`` NFE against the largest budget, per target and method."""
    out = []
    for target in TARGETS:
        (sw_floor, sw_sd), (en_floor, en_sd) = floor[target]
        for method in METHODS:
            cells = [r for r in results if r["target"] == target and r["method"] == method]
            at_low = next(r for r in cells if r["budget"] == low)
            at_high = next(r for r in cells if r["budget"] == high)
            sw_ratio = at_low["sw2"] / at_high["sw2"]
            en_ratio = at_low["energy"] / at_high["energy"]
            en_noise = 2 * en_sd
            if en_ratio <= GOAL and at_high["energy"] > 0:
                en_verdict = "met"
            elif abs(at_low["energy"]) <= en_noise and abs(at_high["energy"]) <= en_noise:
                en_verdict = "met (both within the noise)"
            else:
                en_verdict = "**missed**"
            out.append(
                [
                    target,
                    method,
                    f"{at_low['nfe']} / {at_high['nfe']}",
                    f"{at_low['sw2']:.4f} / {at_high['sw2']:.4f} (floor {sw_floor:.4f})",
                    sw_ratio,
                    "met" if sw_ratio <= GOAL else "**missed**",
                    f"{at_low['energy']:.2e} / {at_high['energy']:.2e} (noise ±{en_noise:.1e})",
                    en_ratio,
                    en_verdict,
                ]
            )
    return out


GOAL_HEADER = [
    "target",
    "method",
    "NFE low / high",
    "sliced W2 low / high",
    "**SW2 ratio**",
    f"SW2 goal ≤ {GOAL}",
    "energy low / high",
    "energy ratio",
    f"energy goal ≤ {GOAL}",
]


def plot(results, floor, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(TARGETS), figsize=(5.2 * len(TARGETS), 7.5), squeeze=False)
    for column, target in enumerate(TARGETS):
        (sw_floor, sw_sd), (en_floor, en_sd) = floor[target]
        for row, (metric, label) in enumerate((("sw2", "sliced W2"), ("energy", "energy dist."))):
            ax = axes[row][column]
            for method in METHODS:
                cells = [r for r in results if r["target"] == target and r["method"] == method]
                ax.plot([r["nfe"] for r in cells], [r[metric] for r in cells], "o-", label=method)
            if metric == "sw2":
                ax.axhspan(sw_floor - sw_sd, sw_floor + sw_sd, color="grey", alpha=0.3)
                ax.axhline(sw_floor, color="grey", lw=1, label="exact vs exact (floor)")
                ax.set_yscale("log")
            else:
                ax.axhspan(-2 * en_sd, 2 * en_sd, color="grey", alpha=0.3, label="±2 sd noise")
                ax.set_yscale("symlog", linthresh=max(4 * en_sd, 1e-6))
            ax.axvline(20, color="k", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel("score evaluations per sample (Info.num_score_evals)")
            ax.set_ylabel(label)
            ax.set_title(f"{target}: {label}")
            ax.grid(alpha=0.3, which="both")
            if row == 0 and column == 0:
                ax.legend(fontsize=8)
    fig.suptitle("Exact noised scores under rs.schedules.vp(): quality vs NFE")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
