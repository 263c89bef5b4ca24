"""The paper's phenomena as regression tests (Cao, Chen, Sridharan & Wu, ICML 2026).

Thm 1: a score with exponentially small L2 error under the target traps ULA started at the
trap's center; the exact score from the same start reaches the target. Thm 7: a score that
pulls towards training points near each of them keeps chains started at training points there.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs

DIM = 200
NUM_CHAINS = 8


def _final_distance(tree, center, last=20):
    """Mean over chains and the last ``last`` kept draws of ||x - center||."""
    x = tree.posterior["x"].values[:, -last:]
    return float(np.linalg.norm(x - np.asarray(center), axis=-1).mean())


@pytest.mark.parametrize(
    "case",
    [
        # Thm 1 defaults: target N(mu, I), ||mu|| = 7 sqrt(d); trap -x inside 4 sqrt(d)
        {"mean": 7.0, "trap": {}, "step_size": 0.1, "target_distance": math.sqrt(50 * DIM)},
        # target N(0, I) itself, with a trap inside 0.6 sqrt(d) pulling at rate 4
        {
            "mean": 0.0,
            "trap": {"r_in": 0.6 * math.sqrt(DIM), "r_out": 0.7 * math.sqrt(DIM), "stiffness": 4.0},
            "step_size": 0.05,
            "target_distance": math.sqrt(DIM),
        },
    ],
    ids=["thm1-defaults", "standard-normal-target"],
)
def test_center_trap_holds_ula_while_exact_score_escapes(case):
    mean = jnp.full(DIM, case["mean"])
    exact = rs.scores.gaussian(mean, 1.0)
    trapped = rs.scores.center_trap(exact, **case["trap"])
    center = jnp.zeros(DIM)
    starts = jnp.zeros((NUM_CHAINS, DIM))  # every chain at the trap's center

    target_draws = mean + jax.random.normal(jax.random.key(0), (2000, DIM))
    assert float(rs.scores.l2_error(trapped, exact, target_draws)) < 1e-3

    key = jax.random.key(1)
    runs = {
        name: rs.run(rs.ula(score, case["step_size"]), key, starts, 1000, thin=10)
        for name, score in (("exact", exact), ("trapped", trapped))
    }
    target = case["target_distance"]
    # exact ULA: within 3 % (its O(h) variance bias moves ||x|| by < 0.5 %, MC error < 0.2 %)
    assert abs(_final_distance(runs["exact"], center) / target - 1) < 0.03
    # trapped ULA: stays near the center, well below 0.6x the target's distance
    assert _final_distance(runs["trapped"], center) < 0.6 * target


def test_memorization_trap_keeps_chains_at_training_points_but_not_fresh_ones():
    key_train, key_fresh, key_run = jax.random.split(jax.random.key(3), 3)
    train = jax.random.normal(key_train, (100, DIM))
    # the paper's general-position assumption holds for these draws
    pairwise = jnp.linalg.norm(train[:, None] - train[None], axis=-1)
    assert float(jnp.min(pairwise + 1e9 * jnp.eye(100))) > 0.4 * math.sqrt(DIM)

    exact = rs.scores.gaussian(jnp.zeros(DIM), 1.0)
    radius = 0.16 * math.sqrt(DIM)
    memorizing = rs.scores.memorization_trap(exact, train, radius=radius, stiffness=100.0)
    target_draws = jax.random.normal(jax.random.key(4), (2000, DIM))
    assert float(rs.scores.l2_error(memorizing, exact, target_draws)) < 1e-3

    # step 0.005 << 2 / stiffness: the well's ULA spread sqrt(d / (k (1 - k h / 2))) with
    # k = stiffness = 100 is 0.115 sqrt(d), inside the radius 0.16 sqrt(d)
    algorithm = rs.ula(memorizing, 0.005)
    from_train = rs.run(algorithm, key_run, train[:16], 1000, thin=50)
    fresh = jax.random.normal(key_fresh, (16, DIM))
    from_fresh = rs.run(algorithm, key_run, fresh, 1000, thin=50)

    def nearest_training_distance(tree):
        x = jnp.asarray(tree.posterior["x"].values[:, -1])
        return jnp.min(jnp.linalg.norm(x[:, None] - train[None], axis=-1), axis=1)

    assert float(jnp.max(nearest_training_distance(from_train))) < radius
    assert float(jnp.min(nearest_training_distance(from_fresh))) > radius
