"""Step-size sensitivity: an unadjusted sampler's O(h) bias is named as such, not as a trap.
Input handling of trap reports: half-given pairs and degenerate training data raise; the
score-error figure reads on a trap."""

import jax
import jax.numpy as jnp
import pytest

import robust_score as rs
from robust_score.diagnostics.step_size import StepSizeDetails

DIM = 1000
SCORE = rs.scores.gaussian(jnp.zeros(DIM), 1.0)


def _ula(step_size):
    return rs.ula(SCORE, step_size)


@pytest.fixture(scope="module")
def biased_report():
    # ULA at h = 0.1 on N(0, I): stationary variance 1 / (1 - h/2) = 1.053 per coordinate,
    # i.e. log-spread bias 0.051, 0.025 at h/2 and 0.013 at h/4: slope ~0.5 in h. With 8
    # chains of 500 kept draws (ESS ~ 26 per chain and coordinate) the mean log variance over
    # 1000 coordinates has a standard error of ~0.003 per run, so the fitted slope is ~10
    # standard errors from 0 and the extrapolated bias (0.051) is known to about +-0.02.
    starts = jax.random.normal(jax.random.key(1), (8, DIM))
    biased_run = rs.run(_ula(0.1), jax.random.key(2), starts, 1000)
    return rs.diagnostics.trap_report(
        biased_run,
        time_score_fn=rs.scores.gaussian(jnp.zeros(DIM), 1.0, schedule=rs.schedules.vp()),
        schedule=rs.schedules.vp(),
        step_size=0.1,
        sampler_at=_ula,
        rng_key=jax.random.key(3),
    )


def test_ula_bias_is_named(biased_report):
    step = biased_report[rs.diagnostics.STEP_SIZE]
    assert step.status == "warn" and step.finding == "discretization", step
    assert isinstance(step.details, StepSizeDetails) and step.details.bias
    assert step.statistic == step.details.z > rs.diagnostics.Settings().bias_z
    assert "discretization bias" in step.explanation
    # the extrapolated log-spread bias (first gap) estimates the true 0.051 (measured
    # 0.058-0.061 on keys 3, 13 and 23)
    assert 0.02 < step.details.extrapolated_bias < 0.09


def test_the_annealed_check_on_a_clean_ula_run_names_the_bias(biased_report):
    # the exact score, run at too large a step: reverse diffusion sees the draws' 5 % wider
    # variance (radial KS 0.39-0.44 on keys 3, 13 and 23), which the step check explains as
    # discretization bias, not a trap: corrected for that bias (within two of its standard
    # errors) the draws no longer fail against reverse diffusion, so the run warns
    annealed = biased_report[rs.diagnostics.ANNEALED]
    assert annealed.status == "warn", annealed
    assert biased_report.status == "warn" and biased_report.finding == "discretization"


def test_an_unbiased_sampler_passes_the_step_check():
    # MALA is exact at every step: halving it moves the spread by Monte-Carlo error only
    # (|z| < bias_z = 4 with probability ~0.995 for 8 chains; fixed keys, measured z = 3.2)
    dim = 100
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(dim), 1.0)
    starts = jax.random.normal(jax.random.key(4), (8, dim))
    tree = rs.run(rs.mala(logdensity, 0.5), jax.random.key(5), starts, 1000)
    result = rs.diagnostics.step_size_sensitivity(
        tree, lambda h: rs.mala(logdensity, h), 0.5, rng_key=jax.random.key(6)
    )
    assert result.status == "ok" and result.finding == "none", result
    assert not result.details.bias and len(result.details.spreads) == 3


def test_too_few_chains_are_unconverged_with_a_reason():
    starts = jax.random.normal(jax.random.key(7), (2, 3))
    tree = rs.run(rs.ula(rs.scores.gaussian(jnp.zeros(3), 1.0), 0.1), jax.random.key(8), starts, 40)
    result = rs.diagnostics.step_size_sensitivity(tree, lambda h: rs.ula(SCORE, h), 0.1)
    assert result.status == "unconverged" and result.finding == "too few draws", result
    assert "at least 4 chains" in result.explanation


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"time_score_fn": lambda x, t: -x}, "schedule"),
        ({"schedule": rs.schedules.vp()}, "time_score_fn"),
        ({"score_fn": lambda x: -x}, "logdensity_fn"),
        ({"logdensity_fn": lambda x: -0.5 * jnp.sum(x**2)}, "score_fn"),
        ({"step_size": 0.1}, "sampler_at"),
        ({"sampler_at": _ula}, "step_size"),
        ({"starts": jnp.zeros((2, 3))}, "train_data"),
        ({"holdout": jnp.zeros((4, 3))}, "train_data"),
    ],
)
def test_an_input_without_its_partner_raises(given, missing):
    starts = jnp.zeros((2, 3))
    tree = rs.run(rs.ula(rs.scores.gaussian(jnp.zeros(3), 1.0), 0.1), jax.random.key(0), starts, 8)
    with pytest.raises(ValueError, match=f"without `{missing}=`"):
        rs.diagnostics.trap_report(tree, **given)


def test_degenerate_training_data_raises():
    draws = jax.random.normal(jax.random.key(9), (50, 3))
    with pytest.raises(ValueError, match="at least 2 distinct points"):
        rs.diagnostics.memorization_report(draws, jnp.zeros((20, 3)))


def test_score_error_plot_has_one_labelled_axis_even_when_errors_are_constant():
    # on a trap every draw can have the same score error: a histogram still shows it
    tree = rs.run(rs.ula(lambda x: 0.0 * x, 0.1), jax.random.key(0), jnp.zeros((2, 3)), 20)
    report = rs.diagnostics.trap_report(
        tree, score_fn=lambda x: 0.0 * x, logdensity_fn=lambda x: -0.5 * jnp.sum(x**2)
    )
    assert report[rs.diagnostics.SCORE_ERROR].status == "fail"
    ax = report.plot_score_errors()
    assert ax.get_xlabel().startswith("log10 relative score error")
    assert ax.get_legend() is not None


def test_an_unconverged_report_prints():
    # ULA at a tiny step from one point: a handful of effective draws (ESS 5), nothing to
    # judge by
    score = rs.scores.gaussian(jnp.zeros(50), 1.0)
    starts = jax.random.normal(jax.random.key(10), (4, 50))
    tree = rs.run(rs.ula(score, 1e-4), jax.random.key(11), starts, 200)
    report = rs.diagnostics.trap_report(
        tree, reference=jax.random.normal(jax.random.key(12), (400, 50))
    )
    assert report.status == "unconverged" and report.finding == "too few draws", report
    assert report[rs.diagnostics.REFERENCE].statistic < rs.diagnostics.Settings().min_ess
    assert report.status.upper() in repr(report) and report.to_markdown()
