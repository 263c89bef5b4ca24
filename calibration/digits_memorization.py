"""The digits case of the memorization check: a DSM score learned on scikit-learn's
``load_digits`` (d = 64, 1,000 training and 797 held-out images), Langevin at the score's
lowest noise level from training images, from held-out images and from noise, and the
memorizing empirical score of the training set as the positive control. Prints, per run, the
median nearest-training distance and the trap report's verdict with the check behind it.

Run: .venv/bin/python -m calibration.digits_memorization [--quick] [--out digits.json]
(its table is the digits block of docs/calibration.md).
"""

import argparse
import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

NUM_TRAIN, SIGMA, NUM_CHAINS, NUM_STEPS, THIN = 1000, 0.1, 16, 2000, 10
# a network that memorizes: wide, trained long on 1,000 images (DSM loss on training images
# far below the held-out one at SIGMA)
HIDDEN, TRAIN_STEPS = (512, 512, 512), 8000
# the same network on a fifth of the images memorizes them: the score-pulls-everything case
NUM_TRAIN_SMALL = 200
SCHEDULE = rs.schedules.vp(t_min=float(rs.schedules.vp().t_of_sigma(SIGMA)))


@functools.cache
def digits():
    """``(train, holdout)``: pixels scaled to [-1, 1], a fixed random split."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype(np.float32) / 8.0 - 1.0
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[:NUM_TRAIN]], images[order[NUM_TRAIN:]]


@functools.cache
def learned_score(train_steps=TRAIN_STEPS, num_train=NUM_TRAIN):
    train = digits()[0][:num_train]
    return rs.learn.train_dsm(
        train, SCHEDULE, rng_key=jax.random.key(1), num_steps=train_steps, hidden=HIDDEN
    )


def dsm_loss_at(trained, images, t, seed=0):
    """DSM loss (per coordinate, 1 = predicting zero) at time ``t`` on ``images``."""
    key = jax.random.key(seed)
    eps = jax.random.normal(key, images.shape)
    alpha, sigma = SCHEDULE.alpha(t), SCHEDULE.sigma(t)
    x_t = alpha * images + sigma * eps
    predicted = -sigma * jax.vmap(lambda x: trained.time_score_fn(x, t))(x_t)
    return float(jnp.mean((predicted - eps) ** 2))


def runs(quick=False):
    """``{name: (score, starts, training images)}``: the learned score from three kinds of
    start, the same network trained on NUM_TRAIN_SMALL images from two, and the empirical
    score from training images."""
    train, holdout = digits()
    steps = 2000 if quick else TRAIN_STEPS
    trained, small = learned_score(steps), learned_score(steps, NUM_TRAIN_SMALL)
    few = train[:NUM_TRAIN_SMALL]
    empirical = rs.scores.at_time(
        rs.scores.empirical_score(jnp.asarray(train), SCHEDULE), SCHEDULE, SCHEDULE.t_min
    )
    noise = np.asarray(jax.random.normal(jax.random.key(5), (NUM_CHAINS, train.shape[1])))
    return trained, {
        "learned, training starts": (trained.score_fn, train[:NUM_CHAINS], train),
        "learned, held-out starts": (trained.score_fn, holdout[:NUM_CHAINS], train),
        "learned, noise starts": (trained.score_fn, noise, train),
        f"learned on {NUM_TRAIN_SMALL}, training starts": (small.score_fn, few[:NUM_CHAINS], few),
        f"learned on {NUM_TRAIN_SMALL}, held-out starts": (
            small.score_fn,
            holdout[:NUM_CHAINS],
            few,
        ),
        "empirical, training starts": (empirical, train[:NUM_CHAINS], train),
    }


def reference_draws(tree, score, num_samples=500):
    """What the Langevin-vs-annealed check compares with: reverse diffusion at the level."""
    # the grid ends at the chains' level, where nothing is denoised
    schedule = dataclasses.replace(score.schedule, t_min=float(score.time))
    settings = rs.ReverseDiffusion(schedule, num_steps=200, denoise=False)
    dim = tree.posterior["x"].shape[-1]
    return np.asarray(
        rs.sample_batch(jax.random.key(8), score.time_score_fn, settings, num_samples, (dim,))
    )


def main(quick=False):
    train, holdout = digits()
    sqrt_d = math.sqrt(train.shape[1])
    trained, cases = runs(quick)
    step = 0.1 * SIGMA**2
    rows = [
        {
            "run": "held-out images (baseline)",
            "median_nn": float(
                np.median(rs.diagnostics.nearest_distances(holdout, train, k=1)) / sqrt_d
            ),
        }
    ]
    losses = {
        "dsm_loss_train": dsm_loss_at(trained, train, SCHEDULE.t_min),
        "dsm_loss_holdout": dsm_loss_at(trained, holdout, SCHEDULE.t_min),
    }
    print("DSM loss at sigma", SIGMA, losses, flush=True)
    small = learned_score(2000 if quick else TRAIN_STEPS, NUM_TRAIN_SMALL)
    few = train[:NUM_TRAIN_SMALL]
    losses["dsm_loss_train_small"] = dsm_loss_at(small, few, SCHEDULE.t_min)
    losses["dsm_loss_holdout_small"] = dsm_loss_at(small, holdout, SCHEDULE.t_min)
    for name, (score, starts, training) in cases.items():
        sampler = rs.ula(score, step)
        tree = rs.run(sampler, jax.random.key(3), jnp.asarray(starts), NUM_STEPS, thin=THIN)
        report = rs.diagnostics.trap_report(
            tree,
            sampler=sampler,
            score_fn=score,
            train_data=training,
            holdout=holdout,
            starts=np.asarray(starts),
            rng_key=jax.random.key(4),
        )
        draws = tree.posterior["x"].values[:, NUM_STEPS // THIN // 2 :].reshape(-1, 64)
        memo = report[rs.diagnostics.MEMORIZATION]
        flagged = [c.name for c in report.checks if c.status in ("warn", "fail")]
        rows.append(
            {
                "run": name,
                "median_nn": float(
                    np.median(rs.diagnostics.nearest_distances(draws, training, k=1)) / sqrt_d
                ),
                "baseline_nn": memo.details.nearest.baseline_median_distance,
                "report": report.status,
                "flagged": flagged,
                "memorization": memo.status,
                "verdicts": {
                    "on training points": memo.details.on_points,
                    "held by training points": memo.details.held,
                    "pulled towards the training set": memo.details.pulled,
                },
                "memorization_explanation": memo.explanation,
                "restart": report[rs.diagnostics.RESTART].explanation,
                "median_norm_user": float(np.median(np.linalg.norm(draws, axis=1)) / sqrt_d),
                "median_norm_reference": float(
                    np.median(np.linalg.norm(reference_draws(tree, score), axis=1)) / sqrt_d
                ),
                "annealed": report[rs.diagnostics.ANNEALED].status,
                "annealed_explanation": report[rs.diagnostics.ANNEALED].explanation,
                "nearest": memo.details.nearest._asdict(),
                "contrast": None
                if memo.details.contrast is None
                else memo.details.contrast._asdict(),
            }
        )
        print(rows[-1], flush=True)
    return {"rows": rows, **losses, "sigma": SIGMA, "quick": quick}


def markdown_table(result) -> list[str]:
    """The runs as the digits table of docs/calibration.md: distance, verdict, which check."""
    lines = [
        f"DSM loss at sigma = {result['sigma']}: {result['dsm_loss_train']:.2f} on training "
        f"images, {result['dsm_loss_holdout']:.2f} on held-out ones; trained on "
        f"{NUM_TRAIN_SMALL} images: {result['dsm_loss_train_small']:.2f} and "
        f"{result['dsm_loss_holdout_small']:.2f}. Distances are to each score's own training "
        "images, beside the held-out images' (the baseline).",
        "",
        "| run | median nearest-training distance / sqrt(d) (held-out images') | report | "
        "flagged | memorization verdicts | Langevin vs annealed |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        if "report" not in row:
            lines.append(f"| {row['run']} | {row['median_nn']:.3f} | – | – | – | – |")
            continue
        verdicts = ", ".join(f"{k}: {v}" for k, v in row["verdicts"].items() if v is not None)
        lines.append(
            f"| {row['run']} | {row['median_nn']:.3f} ({row['baseline_nn']:.3f}) | "
            f"{row['report']} | "
            f"{', '.join(row['flagged']) or '–'} | {verdicts} | {row['annealed']} |"
        )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter training, a smoke test")
    parser.add_argument("--out", default="digits.json")
    args = parser.parse_args()
    result = main(args.quick)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1, default=str)
    print("\n".join(markdown_table(result)))
