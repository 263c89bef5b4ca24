"""Each check on its own, as users call it: thin functions over :func:`run_checks`, so that a
check alone parses its inputs, skips, and grades exactly as it does inside ``trap_report``."""

from robust_score.diagnostics.inputs import gather
from robust_score.diagnostics.report import run_checks
from robust_score.diagnostics.result import (
    ANNEALED,
    MEMORIZATION,
    REFERENCE,
    RESTART,
    SCORE_ERROR,
    STEP_SIZE,
    CheckResult,
)
from robust_score.diagnostics.settings import DEFAULT_SETTINGS, Settings

__all__ = [
    "annealed_cross_check",
    "memorization_report",
    "reference_comparison",
    "restart_sensitivity",
    "score_error_along_chain",
    "step_size_sensitivity",
]


def _one(name: str, data, rng_key, settings: Settings, **given) -> CheckResult:
    draws, inputs = gather(data, **given)
    results, _ = run_checks(draws, inputs, settings, rng_key, only=name)
    return results[name]


def restart_sensitivity(
    data,
    sampler=None,
    *,
    reference=None,
    model_args=None,
    model_kwargs=None,
    rng_key=None,
    settings=DEFAULT_SETTINGS,
):
    """Re-run ``sampler`` from overdispersed starts (and from ``reference`` draws) and ask
    whether those chains end where the user's did.

    ``sampler``: the ``blackjax.SamplingAlgorithm`` of an ``rs.run`` tree, or a NumPyro
    ``MCMCKernel`` or ``MCMC`` (for a NumPyro ``MCMC`` as ``data`` it may be left out: the
    run's own kernel, re-run with its model arguments). Starts are ``m + scale * sqrt(d) *
    s * u`` (``m``, ``s``: the user's per-coordinate mean and sd, ``u`` a random direction),
    one group of ``settings.restart_chains`` per scale. Groups that have not settled run on
    (``settings.restart_rounds``) before the verdict."""
    return _one(
        RESTART,
        data,
        rng_key,
        settings,
        sampler=sampler,
        reference=reference,
        model_args=model_args,
        model_kwargs=model_kwargs,
    )


def reference_comparison(data, reference, *, rng_key=None, settings=DEFAULT_SETTINGS):
    """Compare the user's kept draws with independent ``reference`` draws of the target:
    joint energy, radial and mode-mass tests at the draws' effective sample size, where
    each sample has mass, and chains held apart."""
    return _one(REFERENCE, data, rng_key, settings, reference=reference)


def annealed_cross_check(
    data,
    time_score_fn,
    schedule,
    *,
    score_time=None,
    holdout=None,
    rng_key=None,
    settings=DEFAULT_SETTINGS,
):
    """Draw from the same (time) score with reverse diffusion, which starts from noise and
    so is robust to a score that is wrong only off the target, and compare with the chains.

    ``score_time``: the time of ``schedule`` whose score the chains ran with; reverse
    diffusion then stops there without denoising, so both sides target the same law
    (``None``: the data, denoised at ``t_min``). ``holdout``: held-out data of the score's
    training set; when the samples differ, it says which side is right (a learned score can
    be worse at the levels reverse diffusion passes through than where the chains go)."""
    return _one(
        ANNEALED,
        data,
        rng_key,
        settings,
        time_score_fn=time_score_fn,
        schedule=schedule,
        score_time=score_time,
        holdout=holdout,
    )


def score_error_along_chain(
    data, score_fn, logdensity_fn, *, reference=None, rng_key=None, settings=DEFAULT_SETTINGS
):
    """Relative score error ``E||s_hat - grad log p||^2 / E||grad log p||^2`` on the draws,
    against the same under ``reference`` draws when given (the trap signature: tiny under
    the target, large where the chain sits), and the kernel Stein discrepancy."""
    return _one(
        SCORE_ERROR,
        data,
        rng_key,
        settings,
        score_fn=score_fn,
        logdensity_fn=logdensity_fn,
        reference=reference,
    )


def memorization_report(
    data,
    train_data,
    holdout=None,
    starts=None,
    *,
    sampler=None,
    time_score_fn=None,
    schedule=None,
    score_time=None,
    model_args=None,
    model_kwargs=None,
    rng_key=None,
    settings=DEFAULT_SETTINGS,
):
    """Do the draws sit on training points, and is it the start or the score? With
    ``starts`` (one per chain) it contrasts chains started at training points with chains
    started elsewhere: the run's own, else the sampler run again from ``holdout`` rows or
    reverse-diffusion draws of ``time_score_fn``."""
    return _one(
        MEMORIZATION,
        data,
        rng_key,
        settings,
        train_data=train_data,
        holdout=holdout,
        starts=starts,
        sampler=sampler,
        time_score_fn=time_score_fn,
        schedule=schedule,
        score_time=score_time,
        model_args=model_args,
        model_kwargs=model_kwargs,
    )


def step_size_sensitivity(data, sampler_at, step_size, *, rng_key=None, settings=DEFAULT_SETTINGS):
    """Continue the run at ``step_size``, half and a quarter of it, and ask whether the draws
    move in proportion to the step: an unadjusted sampler's O(h) bias, not a trap.
    ``sampler_at(h)`` builds the user's sampler at step ``h``."""
    return _one(STEP_SIZE, data, rng_key, settings, sampler_at=sampler_at, step_size=step_size)
