"""Diagnostics for learned scores: exact nearest distances, the Langevin-vs-annealed check at
the noise level of the chains' score, and memorization verdicts that tell training starts
that hold chains from a score that pulls every chain to the training set."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs
from robust_score.diagnostics import ANNEALED, MEMORIZATION, annealed_cross_check

SCHEDULE = rs.schedules.vp()


def _brute_force(points, data, k, exclude=None):
    points, data = np.asarray(points, np.float64), np.asarray(data, np.float64)
    distances = np.sqrt(((points[:, None, :] - data[None, :, :]) ** 2).sum(-1))
    if exclude is not None:
        distances[np.arange(len(points)), exclude] = np.inf
    return np.sort(distances, axis=1)[:, :k]


def test_nearest_distances_are_exact_in_float32():
    # pixels far from 0 make |p|^2 - 2 p.x + |x|^2 cancel: in float32 a point's distance to
    # itself came out ~3e-3 on the digits; here it must be 0, and every distance match a
    # float64 brute force
    rng = np.random.default_rng(0)
    data = (100 + 10 * rng.standard_normal((300, 64))).astype(np.float32)
    own = rs.diagnostics.nearest_distances(data, data, k=2)
    assert np.all(own[:, 0] <= 1e-5)
    np.testing.assert_allclose(own, _brute_force(data, data, 2), rtol=1e-12, atol=1e-12)
    points = (100 + 10 * rng.standard_normal((50, 64))).astype(np.float32)
    found, index = rs.diagnostics.nearest_distances(points, data, k=3, return_indices=True)
    np.testing.assert_allclose(found, _brute_force(points, data, 3), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(points - data[index[:, 0]], axis=1), found[:, 0])


def test_leave_one_out_excludes_by_index_so_duplicates_still_count():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((40, 5)).astype(np.float32)
    data[7] = data[3]  # a duplicated training point is its twin's nearest neighbour, at 0
    rows = np.arange(40)
    loo = rs.diagnostics.nearest_distances(data, data, k=2, exclude=rows)
    np.testing.assert_allclose(loo, _brute_force(data, data, 2, exclude=rows), rtol=1e-12)
    assert loo[3, 0] == 0.0 and loo[7, 0] == 0.0 and np.all(np.delete(loo[:, 0], [3, 7]) > 0)
    with pytest.raises(ValueError, match="`exclude`"):
        rs.diagnostics.nearest_distances(data, data, exclude=rows[:5])
    with pytest.raises(ValueError, match="`k`"):
        rs.diagnostics.nearest_distances(data, data, k=40, exclude=rows)


def test_a_score_at_a_fixed_time_carries_its_level():
    time_score = rs.scores.gaussian(jnp.zeros(3), 1.0, schedule=SCHEDULE)
    t = float(SCHEDULE.t_of_sigma(0.5))
    score = rs.scores.at_time(time_score, SCHEDULE, t)
    assert score == rs.scores.at_time(time_score, SCHEDULE, t)  # hashable, cache-friendly
    assert hash(score) == hash(rs.scores.at_time(time_score, SCHEDULE, t))
    assert math.isclose(score.sigma, 0.5, rel_tol=1e-5)
    np.testing.assert_allclose(score(jnp.ones(3)), time_score(jnp.ones(3), t))
    with pytest.raises(ValueError, match="`t`"):
        rs.scores.at_time(time_score, SCHEDULE, 5.0)


@pytest.fixture(scope="module")
def noised_level_run():
    """ULA with the exact time score of N(0, 0.5^2 I) (d = 4) frozen at sigma = 0.5, where
    the noised law has sd sqrt(0.75 * 0.25 + 0.25) = 0.66: 1.3x the data's."""
    time_score = rs.scores.gaussian(jnp.zeros(4), 0.25, schedule=SCHEDULE)
    score = rs.scores.at_time(time_score, SCHEDULE, float(SCHEDULE.t_of_sigma(0.5)))
    sampler = rs.ula(score, 0.01)
    tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, 4)), 4000, thin=4)
    return tree, sampler, score, time_score


def test_cross_check_compares_at_the_level_of_the_chains_score(noised_level_run):
    tree, sampler, score, time_score = noised_level_run
    # the level comes from the score itself: time score and schedule too
    report = rs.diagnostics.trap_report(tree, score_fn=score, rng_key=jax.random.key(1))
    check = report[ANNEALED]
    assert check.status == "ok", check.explanation
    assert check.details.score_time == score.time
    assert check.details.compared_at.startswith("the score's level t =")
    # against the denoised data, the same clean run reads as a different law: what the
    # report did before it knew the level
    at_data = annealed_cross_check(tree, time_score, SCHEDULE, rng_key=jax.random.key(1))
    assert at_data.status == "fail" and at_data.details.score_time is None
    explicit = rs.diagnostics.trap_report(
        tree,
        time_score_fn=time_score,
        schedule=SCHEDULE,
        score_time=score.time,
        rng_key=jax.random.key(1),
    )
    assert explicit[ANNEALED].status == "ok"
    with pytest.raises(ValueError, match="`score_time`"):
        annealed_cross_check(tree, time_score, SCHEDULE, score_time=9.0)


def _split_score(low, high, t_split):
    """``low`` at times up to ``t_split``, ``high`` above."""

    def time_score(x, t):
        return jnp.where(t <= t_split, low(x, t), high(x, t))

    return time_score


def test_held_out_data_say_which_side_of_a_disagreement_is_right():
    # the data are N(0, 0.5^2 I), d = 4; Langevin runs at sigma = 0.5. A score exact at that
    # level but shifted by 1.5 per coordinate above it sends reverse diffusion elsewhere,
    # while the chains are right: held-out data side with them, a warn. The score the other
    # way round (wrong at the level, exact above) traps the chains: held-out data side with
    # reverse diffusion, and the check still fails
    exact = rs.scores.gaussian(jnp.zeros(4), 0.25, schedule=SCHEDULE)
    shifted = rs.scores.gaussian(jnp.full(4, 1.5), 0.25, schedule=SCHEDULE)
    t_level = float(SCHEDULE.t_of_sigma(0.5))
    holdout = 0.5 * np.asarray(jax.random.normal(jax.random.key(7), (800, 4)))
    outcomes, trees = {}, {}
    for name, low, high in (("diffusion wrong", exact, shifted), ("chains wrong", shifted, exact)):
        time_score = _split_score(low, high, t_level)
        score = rs.scores.at_time(time_score, SCHEDULE, t_level)
        tree = rs.run(rs.ula(score, 0.01), jax.random.key(0), jnp.zeros((4, 4)), 4000, thin=4)
        trees[name] = (tree, score)
        outcomes[name] = annealed_cross_check(
            tree,
            time_score,
            SCHEDULE,
            score_time=t_level,
            holdout=holdout,
            rng_key=jax.random.key(1),
        )
    right, trapped = outcomes["diffusion wrong"], outcomes["chains wrong"]
    margin = rs.diagnostics.Settings().holdout_side_margin
    assert right.status == "warn" and right.finding == "inconclusive", right
    assert "side with your chains" in right.explanation
    effects = right.details.holdout_effects
    assert margin * effects["chains"] < effects["reverse diffusion"]
    assert trapped.status == "fail", trapped
    assert "side with reverse diffusion" in trapped.explanation
    effects = trapped.details.holdout_effects
    assert effects["chains"] > margin * effects["reverse diffusion"]
    # the report hands its holdout to the check
    tree, score = trees["diffusion wrong"]
    train = 0.5 * np.asarray(jax.random.normal(jax.random.key(8), (200, 4)))
    report = rs.diagnostics.trap_report(
        tree, score_fn=score, train_data=train, holdout=holdout, rng_key=jax.random.key(1)
    )
    assert report[ANNEALED].status == "warn", report[ANNEALED].explanation


DIM, NUM_TRAIN = 10, 100


@pytest.fixture(scope="module")
def data():
    key_train, key_holdout = jax.random.split(jax.random.key(5))
    train = np.asarray(jax.random.normal(key_train, (NUM_TRAIN, DIM)))
    holdout = np.asarray(jax.random.normal(key_holdout, (200, DIM)))
    return train, holdout


def _memorization(score, step, starts, train, holdout, num_steps=1000):
    sampler = rs.ula(score, step)
    tree = rs.run(sampler, jax.random.key(2), jnp.asarray(starts), num_steps, thin=5)
    report = rs.diagnostics.trap_report(
        tree,
        sampler=sampler,
        train_data=train,
        holdout=holdout,
        starts=np.asarray(starts),
        rng_key=jax.random.key(3),
    )
    return report[MEMORIZATION]


def test_training_starts_alone_are_contrasted_with_fresh_reruns(data):
    train, holdout = data
    exact = rs.scores.gaussian(jnp.zeros(DIM), 1.0)
    wells = rs.scores.memorization_trap(exact, jnp.asarray(train), stiffness=400.0)
    held = _memorization(wells, 0.0005, train[:4], train, holdout)
    assert held.status == "fail" and held.finding == "memorizing", held.explanation
    assert held.details.held == "fail"
    assert held.details.pulled == "ok"
    assert held.details.contrast.train_starts == 4
    assert held.details.contrast.fresh_source.startswith("4 held-out points")
    # measured: training starts end 0.01x as far from the training set as the reruns from
    # held-out points do; a score that held nobody gives ~1
    assert held.details.contrast.held_ratio < 0.2
    assert "held by training points" in held.explanation
    clean = _memorization(exact, 0.05, train[:4], train, holdout)
    assert clean.status == "ok", clean.explanation
    assert 0.7 < clean.details.contrast.held_ratio < 1.5


def test_a_score_that_pulls_every_chain_is_named_apart_from_training_starts(data):
    # the empirical score at sigma = 0.1 (what DSM converges to on finite data): every
    # chain, wherever it starts, ends on a training point
    train, holdout = data
    t = float(SCHEDULE.t_of_sigma(0.1))
    empirical = rs.scores.at_time(
        rs.scores.empirical_score(jnp.asarray(train), SCHEDULE), SCHEDULE, t
    )
    from_train = _memorization(empirical, 0.001, train[:4], train, holdout)
    from_holdout = _memorization(empirical, 0.001, holdout[:4], train, holdout)
    for result in (from_train, from_holdout):
        assert result.status == "fail" and result.finding == "memorizing", result.explanation
        assert result.details.pulled == "fail"
        assert result.details.contrast.fresh_distance_ratio < 0.5
    assert "pulls every sampler" in from_holdout.explanation
    assert from_train.details.held == "ok"
    assert from_holdout.details.held is None  # no chain started at a training point
    assert from_holdout.details.contrast.train_starts == 0
