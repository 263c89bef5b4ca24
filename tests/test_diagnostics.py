"""Trap and memorization diagnostics: they flag what R-hat cannot, and stay quiet on
healthy runs."""

import math

import arviz_stats
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
import xarray as xr

import robust_score as rs
from robust_score.diagnostics import (
    ANNEALED,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    annealed_cross_check,
    memorization_report,
    reference_comparison,
    restart_sensitivity,
    score_error_along_chain,
)

matplotlib.use("Agg")

DIM = 200
TARGET_LOGDENSITY = rs.scores.gaussian_logdensity(jnp.zeros(DIM), 1.0)
EXACT = rs.scores.gaussian(jnp.zeros(DIM), 1.0)
# the measured case: target N(0, I); a trap inside 0.6 sqrt(d) holds ULA at 0.5 sqrt(d).
# The shell reaches 0.8 sqrt(d) so the radial barrier (where the pull stops beating the
# r^(d-1) volume growth, ~0.75 sqrt(d)) sits far from the well: no chain escapes in 2000 steps.
TRAPPED = rs.scores.center_trap(
    EXACT, r_in=0.6 * math.sqrt(DIM), r_out=0.8 * math.sqrt(DIM), stiffness=4.0
)


@pytest.fixture(scope="module")
def runs():
    starts = jnp.zeros((4, DIM))  # every chain at the trap's center
    out = {}
    for name, score in (("exact", EXACT), ("trapped", TRAPPED)):
        sampler = rs.ula(score, 0.05)
        tree = rs.run(sampler, jax.random.key(1), starts, 2000, thin=2)
        out[name] = (tree, sampler, score)
    return out


@pytest.fixture(scope="module")
def reference():
    return jax.random.normal(jax.random.key(9), (1000, DIM))


def test_center_trap_fails_the_report_while_rhat_passes(runs):
    tree, sampler, _ = runs["trapped"]
    norms = np.linalg.norm(tree.posterior["x"].values[:, -100:], axis=-1) / math.sqrt(DIM)
    assert 0.45 < norms.mean() < 0.6  # trapped at half the target's radius
    assert float(arviz_stats.rhat(tree)["x"].max()) < 1.05  # R-hat sees nothing
    report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=jax.random.key(2))
    assert report.status == "fail"
    assert report[RESTART].status == "fail"


def test_exact_score_run_from_the_same_start_is_ok(runs):
    tree, sampler, _ = runs["exact"]
    report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=jax.random.key(2))
    assert report.status == "ok", repr(report)


def test_restart_sensitivity_alone_and_with_reference(runs, reference):
    tree, sampler, _ = runs["trapped"]
    trapped = restart_sensitivity(tree, sampler, rng_key=jax.random.key(3), reference=reference)
    assert trapped.status == "fail" and "reference draws" in trapped.details["groups"]
    # the escaped restarts agree with each other far more than with the trapped chains
    assert trapped.statistic > 0.5
    clean_tree, clean_sampler, _ = runs["exact"]
    clean = restart_sensitivity(clean_tree, clean_sampler, rng_key=jax.random.key(3))
    assert clean.status == "ok"
    groups = clean.details["groups"].values()
    assert max(group["statistics"]["joint"]["effect"] for group in groups) < 0.06
    assert restart_sensitivity(clean_tree, None).status == "skipped"


def test_reference_comparison_alone(runs, reference):
    assert reference_comparison(runs["exact"][0], reference).status == "ok"
    assert reference_comparison(runs["trapped"][0], reference).status == "fail"
    assert reference_comparison(runs["exact"][0], None).status == "skipped"


def test_score_error_along_the_chain_shows_the_trap_signature(runs, reference):
    trapped_tree, _, _ = runs["trapped"]
    with_reference = score_error_along_chain(
        trapped_tree, TRAPPED, TARGET_LOGDENSITY, reference=reference
    )
    assert with_reference.status == "fail"
    assert with_reference.details["reference_relative_error"] < 1e-3
    assert with_reference.statistic > 1.0  # the score is wrong by more than its own size there
    assert with_reference.details["ksd_chain"] > 10 * abs(with_reference.details["ksd_reference"])
    alone = score_error_along_chain(trapped_tree, TRAPPED, TARGET_LOGDENSITY)
    assert alone.status == "fail"
    clean = score_error_along_chain(runs["exact"][0], EXACT, TARGET_LOGDENSITY, reference=reference)
    assert clean.status == "ok" and clean.statistic == 0.0
    assert score_error_along_chain(trapped_tree, None, TARGET_LOGDENSITY).status == "skipped"


def test_annealed_cross_check_with_a_time_score(runs):
    schedule = rs.schedules.vp()
    time_score = rs.scores.gaussian(jnp.zeros(DIM), 1.0, schedule=schedule)
    key = jax.random.key(4)
    trapped = annealed_cross_check(runs["trapped"][0], time_score, schedule, rng_key=key)
    clean = annealed_cross_check(runs["exact"][0], time_score, schedule, rng_key=key)
    assert trapped.status == "fail" and clean.status == "ok"
    assert annealed_cross_check(runs["exact"][0], None, None).status == "skipped"


@pytest.fixture(scope="module")
def memorization_runs():
    key_train, key_fresh, key_holdout, key_run = jax.random.split(jax.random.key(5), 4)
    train = jax.random.normal(key_train, (100, DIM))
    sampler = rs.ula(rs.scores.memorization_trap(EXACT, train), 0.005)
    from_train = rs.run(sampler, key_run, train[:4], 1000, thin=5)
    fresh_starts = jax.random.normal(key_fresh, (4, DIM))
    from_fresh = rs.run(sampler, key_run, fresh_starts, 1000, thin=5)
    holdout = jax.random.normal(key_holdout, (200, DIM))
    return train, holdout, sampler, (from_train, train[:4]), (from_fresh, fresh_starts)


def test_memorization_flags_training_starts_not_fresh_ones(memorization_runs):
    train, holdout, sampler, (from_train, train_starts), (from_fresh, fresh_starts) = (
        memorization_runs
    )
    bad = memorization_report(from_train, train, holdout=holdout, starts=train_starts)
    good = memorization_report(from_fresh, train, holdout=holdout, starts=fresh_starts)
    assert bad.status == "fail" and good.status == "ok"
    assert bad.details["fraction_nn_ratio_below_third"] > 0.9
    assert good.details["fraction_nn_ratio_below_third"] < 0.05
    # through the full report, with the sampler too
    report = rs.diagnostics.trap_report(from_train, sampler=sampler, train_data=train)
    assert report.status == "fail" and report[MEMORIZATION].status == "fail"
    fine = rs.diagnostics.trap_report(from_fresh, sampler=sampler, train_data=train)
    assert fine[MEMORIZATION].status == "ok"


def test_memorization_drift_compares_training_and_fresh_starts(memorization_runs):
    train, _, _, (from_train, train_starts), (from_fresh, fresh_starts) = memorization_runs
    parts = [run["posterior"].to_dataset() for run in (from_train, from_fresh)]
    both = xr.concat(parts, dim="chain").assign_coords(chain=np.arange(8))
    tree = xr.DataTree.from_dict({"posterior": both})
    starts = jnp.concatenate([train_starts, fresh_starts])
    result = memorization_report(tree, train, starts=starts)
    assert result.details["drift_ratio"] < 0.5  # chains at training points do not move
    assert result.status == "fail"


def test_memorization_accepts_plain_arrays_and_uses_a_train_baseline():
    train = np.random.default_rng(0).normal(size=(50, 10))
    fresh = np.random.default_rng(1).normal(size=(400, 10))
    copies = train[np.arange(400) % 50] + 0.01 * np.random.default_rng(2).normal(size=(400, 10))
    assert memorization_report(fresh, train).status == "ok"
    result = memorization_report(copies, train)
    assert result.status == "fail" and result.details["baseline"].startswith("train-to-train")


def test_numpyro_mcmc_input(reference):
    numpyro = pytest.importorskip("numpyro")
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    def model():
        numpyro.sample("theta", dist.Normal(jnp.zeros(3), 1.0))

    mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=400, num_chains=2, progress_bar=False)
    mcmc.run(jax.random.key(0))
    draws = jax.random.normal(jax.random.key(1), (500, 3))
    report = rs.diagnostics.trap_report(mcmc, reference={"theta": draws})
    assert report[REFERENCE].status == "ok"
    shifted = rs.diagnostics.trap_report(mcmc, reference={"theta": draws + 3.0})
    assert shifted.status == "fail"


def test_checks_break_down_by_variable():
    def logdensity(p):
        return -0.5 * (jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2))

    starts = {"a": jnp.zeros((4, 3)), "b": jnp.zeros((4, 2))}
    tree = rs.run(rs.mala(logdensity, 0.5), jax.random.key(0), starts, 1000)
    key, key_a, key_b = jax.random.split(jax.random.key(1), 3)
    # independent draws of each site (drawn with one key, b would copy a's first columns: a
    # different law, which the mode-mass comparison sees along the direction a_0 + b_0)
    reference = {"a": jax.random.normal(key_a, (800, 3)), "b": jax.random.normal(key_b, (800, 2))}
    fine = reference_comparison(tree, reference)
    moved = reference_comparison(tree, {"a": reference["a"], "b": reference["b"] + 4.0})
    assert fine.status == "ok" and moved.status == "fail"
    # the per-variable breakdown names the variable that differs
    assert moved.details["per_variable"]["b"] > 0.5 > 0.1 > moved.details["per_variable"]["a"]
    # restart sensitivity rebuilds dict positions (one entry per site) from the flat draws
    restarts = restart_sensitivity(tree, rs.mala(logdensity, 0.5), rng_key=key)
    assert restarts.status == "ok" and len(restarts.details["groups"]) == 3


def test_report_renders_stores_and_plots(runs, reference):
    tree, sampler, _ = runs["trapped"]
    report = rs.diagnostics.trap_report(tree, sampler=sampler)
    assert "FAIL" in repr(report) and RESTART in repr(report)
    markdown = report.to_markdown()
    assert markdown.count("\n|") >= 6 and "skipped" in markdown
    stored = report.to_datatree()["trap_diagnostics"]
    assert stored.attrs["overall_status"] == "fail"
    assert list(stored["status"].values) == [c.status for c in report.checks]
    tree = tree.copy()
    tree["trap_diagnostics"] = stored  # ArviZ-compatible: a plain DataTree group
    assert "trap_diagnostics" in tree.children
    collection = report.plot()
    assert collection is not None
    with pytest.raises(ValueError, match="no score-error check"):
        report.plot_score_errors()
    with_scores = rs.diagnostics.trap_report(
        tree, score_fn=TRAPPED, logdensity_fn=TARGET_LOGDENSITY, reference=reference
    )
    assert with_scores.plot_score_errors() is not None


def test_worst_status_and_skipped_checks(runs):
    assert rs.diagnostics.worst_status(["ok", "skipped", "warn"]) == "warn"
    assert rs.diagnostics.worst_status(["fail", "warn", "ok"]) == "fail"
    assert rs.diagnostics.worst_status(["skipped", "skipped"]) == "skipped"
    tree = runs["exact"][0]
    report = rs.diagnostics.trap_report(tree)
    assert report.status == "skipped"
    names = [RESTART, REFERENCE, ANNEALED, SCORE_ERROR, MEMORIZATION]
    assert [check.name for check in report.checks][: len(names)] == names
    assert [check.name for check in report.checks] == list(rs.diagnostics.result.CHECK_NAMES)
    assert report.get("no such check") is None and report.draws is tree
    # every check skips itself, and says what it needs, when an input is missing
    assert memorization_report(tree, None).explanation == "needs `train_data=`."
    assert "time_score_fn" in annealed_cross_check(tree, None, rs.schedules.vp()).explanation


def test_bad_inputs_are_named(runs):
    tree, sampler, _ = runs["exact"]
    with pytest.raises(ValueError, match="no `posterior` group"):
        rs.diagnostics.trap_report(xr.DataTree.from_dict({"sample_stats": xr.Dataset()}))
    with pytest.raises(TypeError, match="`data` must be an xarray.DataTree"):
        rs.diagnostics.trap_report(np.zeros((4, 10, 3)))
    with pytest.raises(ValueError, match="dimension 5"):
        score_error_along_chain(tree, EXACT, rs.scores.gaussian_logdensity(jnp.zeros(5), 1.0))
    with pytest.raises(ValueError, match="`reference` has 3 entries per point"):
        reference_comparison(tree, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="`train_data` must be shaped"):
        memorization_report(tree, np.zeros((0, DIM)))
    with pytest.raises(ValueError, match="`samples` has 200 entries per point but train_data"):
        memorization_report(tree, np.zeros((10, 3)))
    with pytest.raises(TypeError, match="`sampler` must be a blackjax.SamplingAlgorithm"):
        restart_sensitivity(tree, object())
    with pytest.raises(ValueError, match="`max_points` must be an integer >= 2"):
        reference_comparison(tree, np.zeros((10, DIM)), max_points=1)


def test_worst_status_ranks_unconverged_between_ok_and_warn():
    assert rs.diagnostics.worst_status(["ok", "unconverged", "skipped"]) == "unconverged"
    assert rs.diagnostics.worst_status(["unconverged", "warn"]) == "warn"
    assert "unconverged" in rs.diagnostics.result.STATUSES


def test_effective_sample_size_and_thinning_follow_the_autocorrelation():
    # AR(1) with rho = 0.9: integrated autocorrelation time (1 + rho) / (1 - rho) = 19, so 4
    # chains of 2000 draws hold about 8000 / 19 = 421 effective draws; the estimate's
    # relative error at this length is about 10 %, the bounds allow 30 %
    rho, noise = 0.9, np.random.default_rng(0).normal(size=(4, 2000))
    chains = np.zeros_like(noise)
    for t in range(1, noise.shape[1]):
        chains[:, t] = rho * chains[:, t - 1] + math.sqrt(1 - rho**2) * noise[:, t]
    from robust_score.diagnostics.statistics import effective_sample_size, ks_test, thin_to

    ess = effective_sample_size(chains)
    assert 300 < ess < 550
    thinned, ids = thin_to(chains[..., None], ess)
    assert 0.8 * ess <= len(thinned) <= ess and set(ids) == {0, 1, 2, 3}
    # KS at the effective sizes does not tell two independent AR(1) samples apart; at their
    # nominal sizes (8000 each) it does, p = 3e-6 for these seeds (over six pairs of seeds:
    # nominal p from 5e-2 down to 1e-11, effective p 0.45-1.0, conservative)
    other = np.zeros_like(noise)
    more = np.random.default_rng(1).normal(size=noise.shape)
    for t in range(1, noise.shape[1]):
        other[:, t] = rho * other[:, t - 1] + math.sqrt(1 - rho**2) * more[:, t]
    _, p_nominal = ks_test(chains.ravel(), other.ravel())
    _, p_effective = ks_test(chains.ravel(), other.ravel(), n_x=ess, n_y=ess)
    assert p_nominal < 1e-4 and p_effective > 0.05


def test_slowly_mixing_clean_run_is_unconverged_not_trapped():
    # exact score, chains started at target draws, h = 0.002 over 1000 steps: each chain
    # moves about sqrt(2 h n) = 2 sd in all, so its kept half holds about one effective draw
    # per chain (measured bulk ESS 5 of 2000). Before the statistics accounted for that,
    # restart and annealed checks failed it ("trapped by where they started").
    dim = 1000
    exact = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    sampler = rs.ula(exact, 0.002)
    starts = jax.random.normal(jax.random.key(100), (4, dim))
    tree = rs.run(sampler, jax.random.key(0), starts, 1000)
    schedule = rs.schedules.vp()
    time_score = rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=schedule)
    report = rs.diagnostics.trap_report(
        tree, sampler=sampler, time_score_fn=time_score, schedule=schedule,
        rng_key=jax.random.key(2),
    )  # fmt: skip
    for name in (RESTART, ANNEALED):
        check = report[name]
        assert check.status in ("unconverged", "ok"), (name, check.explanation)
    assert report.status in ("unconverged", "ok")
    restart = report[RESTART]
    assert restart.status == "unconverged" and "ESS" in restart.explanation
    assert restart.statistic < restart.threshold  # the ESS, against the floor
    floor = rs.diagnostics.thresholds.MIN_ESS
    assert all(group["ess"] < floor for group in restart.details["groups"].values())


def _ring(num_modes=8, radius=3.0):
    angles = 2 * math.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def test_restart_groups_all_far_fail_the_run_even_when_they_disagree():
    # d = 2: eight modes with sd 0.3 on a ring of radius 3 (7.6 sd apart: ULA never hops).
    # The user's chains all start in mode 0; restarts from 10 and 100 standardized radii
    # away settle in other modes, each group in several: every group is far from the user
    # (coefficients 0.29 and 0.43, p = 0.005) but each alone is inconclusive (its halves
    # disagree, or its chains settled in a nearby mode, moving under 70 % of their offset).
    score = rs.scores.gaussian_mixture(np.ones(8), _ring(), 0.3**2)
    sampler = rs.ula(score, 0.01)
    starts = jnp.asarray(_ring()[0]) + 0.1 * jax.random.normal(jax.random.key(0), (4, 2))
    tree = rs.run(sampler, jax.random.key(1), starts, 1000)
    key = jax.random.key(3)
    far = restart_sensitivity(tree, sampler, rng_key=key, scales=(10.0, 100.0))
    groups = far.details["groups"].values()
    assert all(group["status"] == "warn" for group in groups)  # each inconclusive alone
    assert all(group["evidence"] == "fail" for group in groups)
    assert far.status == "fail" and far.details["all_groups_far"]
    assert "differ among themselves" in far.explanation
    # with a group started nearby (3 radii), its restarts fall back into the user's mode and
    # agree with the user (coefficient 0.02), so not every group is far; the chains of the
    # other group that settled in other modes (run on, they stay there; the user's chains'
    # own split offsets are under a third of theirs) still fail the run
    near = restart_sensitivity(tree, sampler, rng_key=jax.random.key(4), scales=(3.0, 10.0))
    assert not near.details["all_groups_far"]
    assert near.details["groups"]["overdispersed x3"]["status"] == "ok"
    assert near.status == "fail" and near.details["chains_elsewhere"] >= 2
    assert "settled where none of your chains go" in near.explanation


def test_restart_chains_on_their_way_in_are_not_settled_elsewhere():
    # clean MALA on an anisotropic Gaussian (sd 0.3-3, d = 10) at a step that relaxes the
    # widest coordinates over about the run's length: restarts from 100 standardized radii
    # have covered most of the way but still close in when run on, so none counts as settled
    # elsewhere (without the run-on check one chain on this key counts)
    scale = jnp.asarray(np.geomspace(0.3, 3.0, 10))
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(10), scale**2)
    sampler = rs.mala(logdensity, 0.5 * 0.3**2 * 10 ** (-1 / 3))
    starts = scale * jax.random.normal(jax.random.key(0), (4, 10))
    tree = rs.run(sampler, jax.random.key(1), starts, 1000)
    check = restart_sensitivity(tree, sampler, rng_key=jax.random.key(2))
    assert check.details["chains_elsewhere"] == 0
    assert check.status != "fail", check.explanation


def _two_modes(key, num, dim, weight, separation=4.0):
    """Draws of ``weight N(m, I) + (1 - weight) N(-m, I)``, ``m = separation / 2 e_0``."""
    key_mode, key_noise = jax.random.split(key)
    first = jax.random.uniform(key_mode, (num,)) < weight
    mean = jnp.zeros(dim).at[0].set(separation / 2)
    noise = jax.random.normal(key_noise, (num, dim))
    return np.asarray(noise + jnp.where(first[:, None], mean, -mean))


def test_wrong_mode_weights_fail_by_the_mode_mass_comparison():
    # d = 100, modes 4 sd apart, the first weighted 0.55 instead of 0.35: along e_0 the CDFs
    # differ by 0.2 * (1 - 2 Phi(-2)) = 0.19 at 0; with 2000 user draws and 500 reference
    # draws in the tested half, the KS distance's sd is about 0.025, so it lands far above
    # KS_FAIL = 0.1 (measured 0.19-0.25 over three seeds) at p < 1e-8. The joint energy
    # coefficient, spread over 100 dimensions, stays near 0.0005.
    dim = 100
    draws = _two_modes(jax.random.key(0), 2000, dim, 0.55).reshape(4, 500, dim)
    posterior = xr.Dataset({"x": (("chain", "draw", "x_dim_0"), draws)})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    reference = _two_modes(jax.random.key(1), 1000, dim, 0.35)
    wrong = reference_comparison(tree, reference, rng_key=jax.random.key(2))
    assert wrong.status == "fail" and wrong.details["decided_by"] == "mode mass"
    assert wrong.statistic > 0.15 and wrong.details["p_value"] < 1e-6
    assert wrong.details["statistics"]["joint"]["effect"] < 0.01  # what used to decide
    right = _two_modes(jax.random.key(3), 2000, dim, 0.35).reshape(4, 500, dim)
    tree = xr.DataTree.from_dict({"posterior": posterior.copy(data={"x": right})})
    assert reference_comparison(tree, reference, rng_key=jax.random.key(2)).status == "ok"


def test_blurry_score_in_low_dimension_does_not_read_as_a_match():
    # d = 2: four modes with sd 0.5 at (+-1, +-1); the score of the modes blurred to sd 0.71
    # (noise level 0.5), as a score learned at too high a noise level is. The energy
    # coefficient alone read this as a match (0.035, under the 0.06 warn level); the radial
    # KS distance at the draws' effective size sees the blur (measured 0.16-0.18, p < 0.005).
    means = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])

    def modes(key, num):
        key_mode, key_noise = jax.random.split(key)
        index = jax.random.randint(key_mode, (num,), 0, 4)
        return np.asarray(means[index] + 0.5 * jax.random.normal(key_noise, (num, 2)))

    blurry = rs.scores.gaussian_mixture(np.ones(4), means, 0.5**2 + 0.5**2)
    starts = jnp.asarray(modes(jax.random.key(5), 4))
    tree = rs.run(rs.ula(blurry, 0.02), jax.random.key(6), starts, 4000)
    result = reference_comparison(tree, modes(jax.random.key(7), 1000), rng_key=jax.random.key(8))
    assert result.status == "fail" and result.details["decided_by"] == "radial"


def test_too_short_runs_are_skipped():
    dim = 20
    sampler = rs.ula(rs.scores.gaussian(jnp.zeros(dim), 1.0), 0.05)
    reference = np.random.default_rng(0).normal(size=(200, dim))
    for num_steps in (1, 2):
        tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), num_steps)
        report = rs.diagnostics.trap_report(
            tree, sampler=sampler, reference=reference, num_restart_steps=20
        )
        assert report.status == "skipped"
        for name in (RESTART, REFERENCE):
            assert report[name].status == "skipped"
            assert "too few draws" in report[name].explanation


def test_chains_held_apart_at_training_points_fail_without_training_data():
    # Thm 7's memorizing score (wells of stiffness 400 at 100 training points, d = 10): the
    # four chains start at four training points and each stays in its well, mixing there
    # (hundreds of effective draws per chain) while sitting about sqrt(d) from the others.
    # Restarts cannot tell (the user's pooled draws span the training cloud), and before
    # this rule the report read the disagreement as too few effective draws (unconverged).
    dim = 10
    train = jax.random.normal(jax.random.key(123), (100, dim))
    score = rs.scores.memorization_trap(
        rs.scores.gaussian(jnp.zeros(dim), 1.0), train, stiffness=400.0
    )
    sampler = rs.ula(score, 0.001)
    tree = rs.run(sampler, jax.random.key(1), train[:4], 1000)
    check = restart_sensitivity(tree, sampler, rng_key=jax.random.key(2))
    assert check.status == "fail", check.explanation
    assert check.details["user_chains_apart"] == 4
    assert "sit apart from the others" in check.explanation
    # the same sampler started at fresh target draws: the chains agree (none apart)
    fresh = rs.run(sampler, jax.random.key(1), jax.random.normal(jax.random.key(9), (4, dim)), 1000)
    assert (
        restart_sensitivity(fresh, sampler, rng_key=jax.random.key(2)).details["user_chains_apart"]
        == 0
    )
