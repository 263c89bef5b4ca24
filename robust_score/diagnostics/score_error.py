"""Score error along the chain: how wrong the user's score is where the chain sits, against a
trusted log density, and against the same where the target has mass."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_callable, check_count
from robust_score.diagnostics._data import Draws, as_datatree, as_sample_matrix, posterior_draws
from robust_score.diagnostics._shared import check_dim, kept_points, numpy_rng
from robust_score.diagnostics.result import SCORE_ERROR, CheckResult, skip_if_missing
from robust_score.diagnostics.statistics import kernel_stein_discrepancy, subsample
from robust_score.diagnostics.thresholds import (
    SCORE_ERROR_CONCENTRATION,
    SCORE_ERROR_FAIL,
    SCORE_ERROR_WARN,
)

__all__ = ["score_error_along_chain"]

# the kernel Stein discrepancy is quadratic in its points: at most this many
_KSD_POINTS = 300


def score_error_along_chain(
    data,
    score_fn,
    logdensity_fn,
    *,
    reference=None,
    rng_key=None,
    max_points: int = 500,
) -> CheckResult:
    """Relative score error ``E||s_hat - grad log p||^2 / E||grad log p||^2`` on the chain's
    draws, against the same under ``reference`` draws when given (the trap signature: tiny
    under the target, large where the chain sits), plus the IMQ kernel Stein discrepancy of
    the draws under the trusted score."""
    skipped = skip_if_missing(SCORE_ERROR, score_fn, logdensity_fn)
    if skipped is not None:
        return skipped
    check_callable(score_fn, "score_fn", "score_fn(position)")
    check_callable(logdensity_fn, "logdensity_fn", "logdensity_fn(position)")
    check_count(max_points, "max_points", minimum=2)
    draws = posterior_draws(as_datatree(data))
    _, rng = numpy_rng(rng_key)
    errors = _error_function(draws, score_fn, logdensity_fn)
    chain_points = subsample(kept_points(draws), max_points, rng)
    chain_errors, chain_error, ksd = _measure(chain_points, errors, rng, max_points)
    details = {
        "chain_relative_error": chain_error,
        "max_points": max_points,
        "chain_errors": chain_errors,  # per draw, relative to E||grad log p||^2 there
        "ksd_chain": ksd,
    }
    reference_error = None
    if reference is not None:
        matrix = check_dim(as_sample_matrix(reference, "reference"), draws.dim, "reference")
        reference_points = subsample(matrix, max_points, rng)
        per_draw, reference_error, ksd = _measure(reference_points, errors, rng, max_points)
        details["reference_errors"] = per_draw
        details["reference_relative_error"] = reference_error
        details["ksd_reference"] = ksd
    status, explanation = _verdict(chain_error, reference_error)
    return CheckResult(SCORE_ERROR, status, chain_error, SCORE_ERROR_FAIL, explanation, details)


def _error_function(draws: Draws, score_fn, logdensity_fn):
    """``errors(points) -> (||s_hat - grad log p||^2, ||grad log p||^2, grad log p)`` per row
    of a flat ``(n, dim)`` matrix, evaluated at the positions the rows stand for."""
    trusted = jax.grad(logdensity_fn)
    flatten = jax.vmap(lambda tree: ravel_pytree(tree)[0])

    def errors(points):
        positions = jax.vmap(draws.unravel)(jnp.asarray(points, jnp.result_type(float)))
        try:
            estimate = jax.vmap(score_fn)(positions)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"`score_fn` does not accept the posterior's draws ({draws.dim} entries per "
                f"draw, variables {draws.var_names}): {err}"
            ) from err
        flat_estimate, flat_exact = flatten(estimate), flatten(jax.vmap(trusted)(positions))
        if flat_estimate.shape != flat_exact.shape:
            raise ValueError(
                f"`score_fn` returns {flat_estimate.shape[-1]} entries per draw but the "
                f"posterior has {draws.dim}."
            )
        squared = np.asarray(jnp.sum((flat_estimate - flat_exact) ** 2, axis=1))
        norms = np.asarray(jnp.sum(flat_exact**2, axis=1))
        return squared, norms, np.asarray(flat_exact)

    return errors


def _measure(points, errors, rng, max_points: int):
    """``(per-draw relative errors, relative error, KSD)`` on ``points``; the KSD on a
    subsample of them (drawn from ``rng``) under the trusted score."""
    squared, norms, _ = errors(points)
    scale = max(norms.mean(), 1e-300)
    ksd_points = subsample(points, min(max_points, _KSD_POINTS), rng)
    _, _, ksd_scores = errors(ksd_points)
    ksd = kernel_stein_discrepancy(ksd_points, ksd_scores)
    return squared / scale, float(squared.mean() / scale), ksd


def _verdict(chain_error: float, reference_error: float | None) -> tuple[str, str]:
    """``(status, explanation)``: a fail needs the error to be large where the chain sits
    and, with reference draws, concentrated there (far above the error under the target)."""
    concentrated = (
        reference_error is None or chain_error > SCORE_ERROR_CONCENTRATION * reference_error
    )
    if chain_error > SCORE_ERROR_FAIL and concentrated:
        explanation = f"your score is {chain_error:.0%} wrong (relative L2) where the chain sits"
        if reference_error is not None:
            explanation += f", against {reference_error:.1e} under the target: the trap signature"
        return "fail", explanation + "."
    if chain_error > SCORE_ERROR_WARN:
        return "warn", f"your score has {chain_error:.1%} relative L2 error where the chain sits."
    return "ok", "your score agrees with the trusted score where the chain sits."
