"""Trap and memorization diagnostics: they flag what R-hat cannot, and stay quiet on
healthy runs. Tests read the typed result (``status``, ``finding``, ``details``); each
explanation template is checked in words at most once."""

import dataclasses
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
    CHECKS,
    FINDINGS,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    STEP_SIZE,
    Settings,
    annealed_cross_check,
    memorization_report,
    reference_comparison,
    restart_sensitivity,
    score_error_along_chain,
)
from robust_score.diagnostics.annealed import AnnealedDetails
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.memorization import MemorizationDetails
from robust_score.diagnostics.reference import SampleDetails
from robust_score.diagnostics.restart import RestartDetails
from robust_score.diagnostics.result import CHECK_NAMES
from robust_score.diagnostics.score_error import ScoreErrorDetails
from robust_score.diagnostics.step_size import DoubledStepsDetails

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


def _groups(result) -> dict:
    """A restart result's groups by label."""
    return {group.label: group for group in result.details.groups}


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


@pytest.fixture(scope="module")
def trapped_report(runs):
    tree, sampler, _ = runs["trapped"]
    return rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=jax.random.key(2))


def test_center_trap_fails_the_report_while_rhat_passes(runs, trapped_report):
    tree, _, _ = runs["trapped"]
    norms = np.linalg.norm(tree.posterior["x"].values[:, -100:], axis=-1) / math.sqrt(DIM)
    assert 0.45 < norms.mean() < 0.6  # trapped at half the target's radius
    assert float(arviz_stats.rhat(tree)["x"].max()) < 1.05  # R-hat sees nothing
    assert trapped_report.status == "fail" and trapped_report.finding == "trapped"
    restart = trapped_report[RESTART]
    assert restart.status == "fail" and restart.finding == "trapped"
    assert isinstance(restart.details, RestartDetails) and restart.details.sampler == "blackjax"


def test_exact_score_run_from_the_same_start_is_ok(runs):
    tree, sampler, _ = runs["exact"]
    report = rs.diagnostics.trap_report(tree, sampler=sampler, rng_key=jax.random.key(2))
    assert report.status == "ok", repr(report)
    assert report.finding == "none" and report.unrun_requests == ()


def test_restart_sensitivity_alone_and_with_reference(runs, reference):
    tree, sampler, _ = runs["trapped"]
    trapped = restart_sensitivity(tree, sampler, rng_key=jax.random.key(3), reference=reference)
    assert trapped.status == "fail" and trapped.finding == "trapped"
    assert "reference draws" in _groups(trapped)
    # the escaped restarts agree with each other far more than with the trapped chains: the
    # deciding statistic (radial KS) measured 1.0 on keys 3, 13 and 23, twice the bound
    assert trapped.statistic > 0.5
    clean_tree, clean_sampler, _ = runs["exact"]
    clean = restart_sensitivity(clean_tree, clean_sampler, rng_key=jax.random.key(3))
    assert clean.status == "ok" and clean.finding == "none"
    # every group's joint energy coefficient measured at most 1e-4 on keys 3, 13 and 23
    # (three groups each): the bound, the warn level, leaves a margin of 0.06
    assert max(group.comparison.joint.effect for group in clean.details.groups) < 0.06


def test_reference_comparison_alone(runs, reference):
    clean = reference_comparison(runs["exact"][0], reference)
    assert clean.status == "ok" and isinstance(clean.details, SampleDetails)
    trapped = reference_comparison(runs["trapped"][0], reference)
    assert trapped.status == "fail" and trapped.finding == "trapped"
    assert trapped.details.comparison.coverage.chains_off == 4  # every chain off the target


def test_score_error_along_the_chain_shows_the_trap_signature(runs, reference):
    trapped_tree, _, _ = runs["trapped"]
    with_reference = score_error_along_chain(
        trapped_tree, TRAPPED, TARGET_LOGDENSITY, reference=reference
    )
    assert with_reference.status == "fail" and with_reference.finding == "trapped"
    details = with_reference.details
    assert isinstance(details, ScoreErrorDetails)
    assert details.reference_relative_error < 1e-3
    assert with_reference.statistic > 1.0  # the score is wrong by more than its own size there
    assert details.ksd_chain > 10 * abs(details.ksd_reference)
    alone = score_error_along_chain(trapped_tree, TRAPPED, TARGET_LOGDENSITY)
    assert alone.status == "fail" and alone.details.reference_relative_error is None
    clean = score_error_along_chain(runs["exact"][0], EXACT, TARGET_LOGDENSITY, reference=reference)
    assert clean.status == "ok" and clean.statistic == 0.0


def test_annealed_cross_check_with_a_time_score(runs):
    schedule = rs.schedules.vp()
    time_score = rs.scores.gaussian(jnp.zeros(DIM), 1.0, schedule=schedule)
    key = jax.random.key(4)
    trapped = annealed_cross_check(runs["trapped"][0], time_score, schedule, rng_key=key)
    clean = annealed_cross_check(runs["exact"][0], time_score, schedule, rng_key=key)
    assert trapped.status == "fail" and trapped.finding == "trapped"
    assert clean.status == "ok" and clean.finding == "none"
    assert isinstance(clean.details, AnnealedDetails) and clean.details.score_time is None
    assert clean.details.sample.grade.status == "ok"


@pytest.mark.parametrize("wrapper", ["restart", "reference", "score", "annealed", "memorization"])
def test_a_wrapper_without_its_input_is_skipped(runs, wrapper):
    tree = runs["exact"][0]
    call = {
        "restart": lambda: restart_sensitivity(tree, None),
        "reference": lambda: reference_comparison(tree, None),
        "score": lambda: score_error_along_chain(tree, None, None),
        "annealed": lambda: annealed_cross_check(tree, None, None),
        "memorization": lambda: memorization_report(tree, None),
    }[wrapper]
    assert call().status == "skipped"


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
    assert bad.status == "fail" and bad.finding == "memorizing"
    assert good.status == "ok" and good.finding == "none"
    assert isinstance(bad.details, MemorizationDetails) and bad.details.on_points == "fail"
    assert bad.details.nearest.fraction_on_points > 0.9
    assert good.details.nearest.fraction_on_points < 0.05
    assert bad.details.nearest.baseline == "holdout"
    # through the full report, with the sampler too
    report = rs.diagnostics.trap_report(from_train, sampler=sampler, train_data=train)
    assert report.status == "fail" and report[MEMORIZATION].status == "fail"
    assert report[MEMORIZATION].finding == "memorizing"
    fine = rs.diagnostics.trap_report(from_fresh, sampler=sampler, train_data=train)
    assert fine[MEMORIZATION].status == "ok"


def test_memorization_drift_compares_training_and_fresh_starts(memorization_runs):
    train, _, _, (from_train, train_starts), (from_fresh, fresh_starts) = memorization_runs
    parts = [run["posterior"].to_dataset() for run in (from_train, from_fresh)]
    both = xr.concat(parts, dim="chain").assign_coords(chain=np.arange(8))
    tree = xr.DataTree.from_dict({"posterior": both})
    starts = jnp.concatenate([train_starts, fresh_starts])
    result = memorization_report(tree, train, starts=starts)
    contrast = result.details.contrast
    assert contrast.train_starts == 4
    assert contrast.drift_ratio < 0.5  # chains at training points do not move
    assert result.status == "fail" and result.details.held == "fail"


def test_memorization_accepts_plain_arrays_and_uses_a_train_baseline():
    train = np.random.default_rng(0).normal(size=(50, 10))
    fresh = np.random.default_rng(1).normal(size=(400, 10))
    copies = train[np.arange(400) % 50] + 0.01 * np.random.default_rng(2).normal(size=(400, 10))
    assert memorization_report(fresh, train).status == "ok"
    result = memorization_report(copies, train)
    assert result.status == "fail" and result.finding == "memorizing"
    assert result.details.nearest.baseline.startswith("train-to-train")


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
    assert report[RESTART].details.sampler == "numpyro"  # the MCMC's own kernel, re-run
    shifted = rs.diagnostics.trap_report(mcmc, reference={"theta": draws + 3.0})
    assert shifted.status == "fail" and shifted[REFERENCE].status == "fail"


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
    per_variable = moved.details.comparison.per_variable
    assert per_variable["b"] > 0.5 > 0.1 > per_variable["a"]
    # restart sensitivity rebuilds dict positions (one entry per site) from the flat draws
    restarts = restart_sensitivity(tree, rs.mala(logdensity, 0.5), rng_key=key)
    assert restarts.status == "ok" and len(restarts.details.groups) == 3
    assert all(len(group.starts) == Settings().restart_chains for group in restarts.details.groups)


def test_report_renders_stores_and_plots(runs, reference, trapped_report):
    tree, _, _ = runs["trapped"]
    report = trapped_report
    assert "FAIL" in repr(report) and RESTART in repr(report)
    markdown = report.to_markdown()
    assert markdown.count("\n|") >= 6 and "skipped" in markdown
    stored = report.to_datatree()["trap_diagnostics"]
    assert stored.attrs["overall_status"] == "fail"
    assert stored.attrs["finding"] == report.finding
    assert list(stored["status"].values) == [c.status for c in report.checks]
    assert list(stored["finding"].values) == [c.finding for c in report.checks]
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
    assert report.status == "skipped" and report.finding == "skipped"
    names = [RESTART, REFERENCE, ANNEALED, SCORE_ERROR, MEMORIZATION, STEP_SIZE]
    assert [check.name for check in report.checks] == names == list(CHECK_NAMES)
    assert all(check.status == "skipped" and check.details is None for check in report.checks)
    assert report.unrun_requests == ()  # nothing was asked for
    assert report.get("no such check") is None and report.draws.tree is tree
    with pytest.raises(KeyError):
        report["no such check"]
    # a check skips itself, and says what it needs, when an input is missing
    assert report[MEMORIZATION].explanation == "needs `train_data=`."


def test_bad_inputs_are_named(runs):
    tree, sampler, _ = runs["exact"]
    with pytest.raises(ValueError, match="no `posterior` group"):
        rs.diagnostics.trap_report(xr.DataTree.from_dict({"sample_stats": xr.Dataset()}))
    # neither a run nor draws: the error names `data` and what it may be
    with pytest.raises(TypeError, match=r"`data` must be .*independent draws"):
        rs.diagnostics.trap_report("not draws")
    with pytest.raises(ValueError, match="dimension 5"):
        score_error_along_chain(tree, EXACT, rs.scores.gaussian_logdensity(jnp.zeros(5), 1.0))
    with pytest.raises(ValueError, match="`reference` has 3 entries per point"):
        reference_comparison(tree, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="`train_data` must be"):
        memorization_report(tree, np.zeros((0, DIM)))
    with pytest.raises(ValueError, match="`train_data` has 3 entries per point but the draws"):
        memorization_report(tree, np.zeros((10, 3)))
    with pytest.raises(TypeError, match="`sampler` must be a blackjax.SamplingAlgorithm"):
        restart_sensitivity(tree, object())
    # independent draws take only the annealing settings that drew them as `sampler=`
    with pytest.raises(TypeError, match="rs.ReverseDiffusion or rs.AnnealedLangevin"):
        rs.diagnostics.trap_report(np.zeros((10, 3)), sampler=sampler)


def test_settings_with_too_few_points_raise(runs):
    with pytest.raises(ValueError, match="`max_points`"):
        reference_comparison(runs["exact"][0], np.zeros((10, DIM)), settings=Settings(max_points=1))


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
        assert check.status == "unconverged" and check.finding == "too few draws", check
    assert report.status == "unconverged" and report.finding == "too few draws"
    restart = report[RESTART]
    assert "ESS" in restart.explanation
    floor = Settings().min_ess
    assert restart.statistic < restart.threshold == floor  # the ESS, against the floor
    assert all(group.comparison.ess < floor for group in restart.details.groups)


def _ring(num_modes=8, radius=3.0):
    angles = 2 * math.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


@pytest.fixture(scope="module")
def ring_run():
    # d = 2: eight modes with sd 0.3 on a ring of radius 3 (7.6 sd apart: ULA never hops);
    # the user's chains all start in mode 0
    score = rs.scores.gaussian_mixture(np.ones(8), _ring(), 0.3**2)
    sampler = rs.ula(score, 0.01)
    starts = jnp.asarray(_ring()[0]) + 0.1 * jax.random.normal(jax.random.key(0), (4, 2))
    return rs.run(sampler, jax.random.key(1), starts, 1000), sampler


def test_restart_groups_all_far_fail_the_run_even_when_they_disagree(ring_run):
    # restarts from 10 and 100 standardized radii away settle in other modes, each group in
    # several: every group is far from the user (evidence "fail") on every key, but a group
    # alone is often inconclusive (its halves disagree, or its chains have not mixed among
    # themselves, after running on). Measured on keys 3-8: all far and fail on all six;
    # every group inconclusive alone on keys 3, 5 and 7, at least one on 3, 5, 6 and 7.
    tree, sampler = ring_run
    settings = Settings(restart_scales=(10.0, 100.0))
    results = [
        restart_sensitivity(tree, sampler, rng_key=jax.random.key(key), settings=settings)
        for key in (3, 4, 5)
    ]
    for far in results:
        assert far.status == "fail" and far.finding == "trapped", far
        assert far.details.all_groups_far
        assert all(group.evidence == "fail" for group in far.details.groups)
    # the all-far rule decides where no group could alone
    alone = [far for far in results if all(g.status == "warn" for g in far.details.groups)]
    assert alone
    assert all(group.note for group in alone[0].details.groups)
    assert "every restart group ends away from them" in alone[0].explanation


def test_restart_chains_settled_elsewhere_fail_the_run(ring_run):
    # with a group started nearby (3 radii), its restarts fall back into the user's mode and
    # agree with the user, so not every group is far; the x10 group, inconclusive alone on
    # most keys, still fails the run by its chains settled in other modes (run on, they
    # stay there; the user's chains' own split offsets are under a third of theirs).
    # Measured on keys 4-9: fail on all six; the x3 group ok on 4, 7, 8 and 9 (warn on 5
    # and 6: joint coefficient 0.06-0.07); x10 inconclusive on 4-7, with 1, 5, 2 and 3
    # chains settled elsewhere: on 4 the pooled restarts fail the run ("differs"), on 5-7
    # the chains settled elsewhere do ("trapped"); x10 fails alone on 8 and 9.
    tree, sampler = ring_run
    settings = Settings(restart_scales=(3.0, 10.0))
    results = {
        key: restart_sensitivity(tree, sampler, rng_key=jax.random.key(key), settings=settings)
        for key in (4, 5, 6)
    }
    for near in results.values():
        assert near.status == "fail", near
        assert not near.details.all_groups_far
        assert _groups(near)["overdispersed x3"].evidence != "fail"
    assert _groups(results[4])["overdispersed x3"].status == "ok"
    # the rule on chains settled elsewhere decides where the x10 group could not alone
    by_chains = [
        near
        for near in results.values()
        if _groups(near)["overdispersed x10"].status == "warn"
        and near.details.chains_elsewhere >= settings.min_chains_elsewhere
    ]
    assert by_chains
    assert all(near.finding == "trapped" for near in by_chains)
    assert "settled where none of your chains go" in by_chains[0].explanation


def test_restart_chains_on_their_way_in_are_not_settled_elsewhere():
    # clean MALA on an anisotropic Gaussian (sd 0.3-3, d = 10) at a step that relaxes the
    # widest coordinates over about the run's length: restarts from 100 standardized radii
    # have covered most of the way but still close in when run on, so none counts as settled
    # elsewhere (measured on keys 2, 12 and 22: none, and the run reads unconverged, ESS 5)
    scale = jnp.asarray(np.geomspace(0.3, 3.0, 10))
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(10), scale**2)
    sampler = rs.mala(logdensity, 0.5 * 0.3**2 * 10 ** (-1 / 3))
    starts = scale * jax.random.normal(jax.random.key(0), (4, 10))
    tree = rs.run(sampler, jax.random.key(1), starts, 1000)
    for key in (2, 12, 22):
        check = restart_sensitivity(tree, sampler, rng_key=jax.random.key(key))
        assert check.details.chains_elsewhere == 0, (key, check)
        assert check.status != "fail", (key, check)


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
    # ks_fail = 0.1 at p < 1e-8. Measured 0.17 on these keys (p = 1e-8), 0.13 and 0.21 on
    # keys 10-12 and 20-22: the 0.15 bound leaves 0.02. The joint energy coefficient,
    # spread over 100 dimensions, stays near 0.0005.
    dim = 100
    draws = _two_modes(jax.random.key(0), 2000, dim, 0.55).reshape(4, 500, dim)
    posterior = xr.Dataset({"x": (("chain", "draw", "x_dim_0"), draws)})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    reference = _two_modes(jax.random.key(1), 1000, dim, 0.35)
    wrong = reference_comparison(tree, reference, rng_key=jax.random.key(2))
    assert wrong.status == "fail" and wrong.finding == "differs"
    assert wrong.details.grade.decided_by == "mode mass"
    assert wrong.statistic > 0.15 and wrong.details.grade.p_value < 1e-6
    assert wrong.details.comparison.joint.effect < 0.01  # what used to decide
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
    assert result.status == "fail" and result.details.grade.decided_by == "radial"


@pytest.mark.parametrize(
    "num_steps",
    [
        1,
        2,
        10,
    ],
)
def test_too_short_runs_are_unconverged(num_steps):
    dim = 20
    sampler = rs.ula(rs.scores.gaussian(jnp.zeros(dim), 1.0), 0.05)
    reference = np.random.default_rng(0).normal(size=(200, dim))
    tree = rs.run(sampler, jax.random.key(0), jnp.zeros((4, dim)), num_steps)
    report = rs.diagnostics.trap_report(
        tree, sampler=sampler, reference=reference, settings=Settings(restart_steps=20)
    )
    assert report.status == "unconverged" and report.finding == "too few draws", report
    for name in (RESTART, REFERENCE):
        check = report[name]
        assert check.status == "unconverged" and check.finding == "too few draws", check
        # the statistic is the kept draws per chain, against the floor
        assert check.statistic == num_steps - num_steps // 2
        assert check.threshold == Settings().min_kept_draws


def test_chains_held_apart_at_training_points_fail_without_training_data():
    # Thm 7's memorizing score (wells of stiffness 400 at 100 training points, d = 10): the
    # four chains start at four training points and each stays in its well, mixing there
    # (hundreds of effective draws per chain) while sitting about sqrt(d) from the others.
    # Restarts cannot tell (the user's pooled draws span the training cloud), and before
    # this rule the report read the disagreement as too few effective draws (unconverged).
    # The wells are far narrower than where the restarts go: trapped, not a mode.
    dim = 10
    train = jax.random.normal(jax.random.key(123), (100, dim))
    score = rs.scores.memorization_trap(
        rs.scores.gaussian(jnp.zeros(dim), 1.0), train, stiffness=400.0
    )
    sampler = rs.ula(score, 0.001)
    tree = rs.run(sampler, jax.random.key(1), train[:4], 1000)
    check = restart_sensitivity(tree, sampler, rng_key=jax.random.key(2))
    assert check.status == "fail" and check.finding == "trapped", check
    assert check.details.apart.held == 4 and check.details.apart.in_modes == 0
    assert "wells far narrower" in check.explanation
    # the same sampler started at fresh target draws: the chains agree (none apart)
    fresh = rs.run(sampler, jax.random.key(1), jax.random.normal(jax.random.key(9), (4, dim)), 1000)
    assert restart_sensitivity(fresh, sampler, rng_key=jax.random.key(2)).details.apart.held == 0


def _held_apart(width: float, seed: int = 0):
    """Four chains of 500 independent draws, two at each of modes 10 e_0 and -10 e_0 (sd
    ``width``), and 1000 reference draws of three unit modes 10 e_0, -10 e_0 (weight 0.4
    each) and 10 e_1 (0.2): a mode no chain visits."""
    rng = np.random.default_rng(seed)
    modes = 10.0 * np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    chains = modes[[0, 0, 1, 1]][:, None, :] + width * rng.standard_normal((4, 500, 2))
    posterior = xr.Dataset({"x": (("chain", "draw", "x_dim_0"), chains)})
    which = rng.choice(3, 1000, p=[0.4, 0.4, 0.2])
    reference = modes[which] + rng.standard_normal((1000, 2))
    return xr.DataTree.from_dict({"posterior": posterior}), reference


def test_chains_held_apart_in_real_modes_inherit_their_weights():
    # each chain mixes in a real mode of the target, but none crosses: the draws weight the
    # modes as the starts did and miss the third, which no longer fails by itself
    # ("unconverged": more chains from fresh draws, not a longer run). The same chains in
    # wells 20x narrower than the modes are trapped. Measured on seeds 0-5: all alike, the
    # unvisited mode's share 0.18-0.23 against uncovered_fraction = 0.08.
    tree, reference = _held_apart(1.0)
    result = reference_comparison(tree, reference, rng_key=jax.random.key(0))
    assert result.status == "unconverged" and result.finding == "inherited weights", result
    assert result.details.apart.held == result.details.apart.in_modes == 4
    assert result.details.comparison.coverage.uncovered >= Settings().uncovered_fraction
    tree, reference = _held_apart(0.05)
    narrow = reference_comparison(tree, reference, rng_key=jax.random.key(0))
    assert narrow.status == "fail" and narrow.finding == "trapped", narrow
    assert narrow.details.apart.held > narrow.details.apart.in_modes == 0


# ---- independent draws ---------------------------------------------------------------

INDEPENDENT_DIM = 4
SCHEDULE = rs.schedules.vp()
TIME_SCORE = rs.scores.gaussian(jnp.zeros(INDEPENDENT_DIM), 1.0, schedule=SCHEDULE)
DIFFUSION = rs.ReverseDiffusion(SCHEDULE, 100)


@pytest.fixture(scope="module")
def independent():
    """400 reverse-diffusion draws of N(0, I_4), with reference and training draws."""
    draws = rs.sample_batch(jax.random.key(0), TIME_SCORE, DIFFUSION, 400, (INDEPENDENT_DIM,))
    reference = np.asarray(jax.random.normal(jax.random.key(1), (500, INDEPENDENT_DIM)))
    train = np.asarray(jax.random.normal(jax.random.key(2), (100, INDEPENDENT_DIM)))
    return draws, reference, train


def _as_dict(points):
    return {"a": points[:, :1], "b": points[:, 1:]}


def _independent_checks(report, num_draws):
    """What every report on independent draws shows: nothing dropped as burn-in, and the
    checks that need chains skipped as not applying, not as unrun requests."""
    assert report.draws.independent and report.draws.kept.shape[0] == num_draws
    assert report.draws.points.shape == (num_draws, INDEPENDENT_DIM)
    for name in (RESTART, ANNEALED):
        assert report[name].status == "skipped" and name not in report.unrun_requests
    assert report[RESTART].explanation == "does not apply to independent draws."


def test_independent_draws_run_the_checks_that_apply(independent):
    draws, reference, train = independent
    report = rs.diagnostics.trap_report(
        draws,
        reference=reference,
        train_data=train,
        sampler=DIFFUSION,
        time_score_fn=TIME_SCORE,
        rng_key=jax.random.key(3),
    )
    _independent_checks(report, len(draws))
    for name in (REFERENCE, MEMORIZATION, STEP_SIZE):
        assert report[name].ran, report[name]
    assert report.status == "ok" and report.unrun_requests == (), report
    # the step check compares with the same settings at twice the steps
    step = report[STEP_SIZE].details
    assert isinstance(step, DoubledStepsDetails) and step.num_steps == 2 * DIFFUSION.num_steps
    # shifted draws are far from the reference
    shifted = rs.diagnostics.trap_report(draws + 3.0, reference=reference)
    assert shifted.status == "fail" and shifted[REFERENCE].status == "fail"


def test_independent_draws_as_a_dict_pytree(independent):
    draws, reference, train = independent
    report = rs.diagnostics.trap_report(
        _as_dict(draws), reference=_as_dict(reference), train_data=train
    )
    _independent_checks(report, len(draws))
    assert report.draws.var_names == ("a", "b")
    assert report[REFERENCE].ran and report[MEMORIZATION].ran
    assert report.status == "ok", report


def test_independent_dict_draws_with_their_sampler_settings(independent):
    # rs.sample_batch draws arrays: the check at twice the steps cannot redraw a dict, says
    # so, and the report, asked for it, is not ok
    draws, _, _ = independent
    report = rs.diagnostics.trap_report(
        _as_dict(draws), sampler=DIFFUSION, time_score_fn=TIME_SCORE, rng_key=jax.random.key(3)
    )
    assert not report[STEP_SIZE].ran and report.unrun_requests == (STEP_SIZE,)
    assert report.status == "warn" and report.finding == "inconclusive"


def test_an_asked_check_that_cannot_run_keeps_the_report_from_ok(independent):
    draws, reference, _ = independent
    # step_size= and sampler_at= continue chains: on independent draws they do not apply,
    # and do not count as an unrun request
    chains_only = rs.diagnostics.trap_report(
        draws,
        reference=reference,
        step_size=0.1,
        sampler_at=lambda h: rs.ula(lambda x: -x, h),
    )
    assert chains_only[STEP_SIZE].status == "skipped"
    assert chains_only.unrun_requests == () and chains_only.status == "ok"
    # a time score for independent draws asks for the check at twice the steps, which also
    # needs the settings that drew them: asked, not run, and the report is not ok
    report = rs.diagnostics.trap_report(
        draws, reference=reference, time_score_fn=TIME_SCORE, schedule=SCHEDULE
    )
    assert report[REFERENCE].status == "ok" and report[STEP_SIZE].status == "skipped"
    assert report.unrun_requests == (STEP_SIZE,)
    assert report.status == "warn" and report.finding == "inconclusive"
    assert STEP_SIZE in report.headline and not report.headline.startswith("OK")


def test_sampler_settings_without_a_time_score_are_an_unrun_request(independent):
    draws, reference, _ = independent
    report = rs.diagnostics.trap_report(draws, reference=reference, sampler=DIFFUSION)
    assert report.unrun_requests == (STEP_SIZE,) and report.status != "ok"


# ---- settings and registry -----------------------------------------------------------


@pytest.fixture(scope="module")
def small_run():
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(3), 1.0)
    sampler = rs.mala(logdensity, 0.5)
    starts = jax.random.normal(jax.random.key(20), (4, 3))
    return rs.run(sampler, jax.random.key(21), starts, 400), sampler


def test_settings_are_frozen_and_reach_the_checks(small_run):
    settings = Settings(restart_chains=4, restart_steps=200)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.restart_chains = 2
    assert Settings() == rs.diagnostics.DEFAULT_SETTINGS and Settings().restart_chains == 8
    tree, sampler = small_run
    report = rs.diagnostics.trap_report(
        tree, sampler=sampler, settings=settings, rng_key=jax.random.key(22)
    )
    details = report[RESTART].details
    assert details.num_steps == 200
    assert len(details.groups) == len(settings.restart_scales)
    assert all(len(group.starts) == len(group.chains) == 4 for group in details.groups)


def test_every_check_name_has_a_registry_entry():
    assert {check.name for check in CHECKS} == set(CHECK_NAMES)
    for check in CHECKS:
        assert check.name in CHECK_NAMES and callable(check.run)
        assert check.draws in ("chains", "independent", "both")
        assert check.needs and all(hasattr(Inputs(), need) for need in check.needs)
    # every check reads chains, and the step check has a form for independent draws
    for name in CHECK_NAMES:
        kinds = {check.draws for check in CHECKS if check.name == name}
        assert kinds & {"chains", "both"}, name
    assert {check.draws for check in CHECKS if check.name == STEP_SIZE} == {
        "chains",
        "independent",
    }
    assert {"none", "trapped", "inherited weights", "too few draws"} <= set(FINDINGS)
