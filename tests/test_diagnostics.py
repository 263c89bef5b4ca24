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
    assert clean.status == "ok" and clean.statistic < 0.06
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
    key = jax.random.key(1)
    reference = {"a": jax.random.normal(key, (800, 3)), "b": jax.random.normal(key, (800, 2))}
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
    assert [check.name for check in report.checks] == names
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
