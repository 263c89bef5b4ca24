"""Score error along the chain: how wrong the user's score is where the chain sits, against a
trusted log density, and against the same where the target has mass."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from robust_score.diagnostics.draws import Draws
from robust_score.diagnostics.inputs import Inputs
from robust_score.diagnostics.result import SCORE_ERROR, CheckResult
from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import kernel_stein_discrepancy, numpy_rng, subsample

__all__ = ["ScoreErrorDetails", "check_score_error"]

# the kernel Stein discrepancy is quadratic in its points: at most this many
_KSD_POINTS = 300


class ScoreErrorDetails(NamedTuple):
    """Relative score errors per draw (against ``E||grad log p||^2`` there) and overall, and
    the KSD of the draws under the trusted score; the same under reference draws when
    given (else ``None``)."""

    chain_relative_error: float
    chain_errors: np.ndarray
    ksd_chain: float
    reference_relative_error: float | None = None
    reference_errors: np.ndarray | None = None
    ksd_reference: float | None = None


def check_score_error(draws: Draws, inputs: Inputs, settings: Settings, rng_key) -> CheckResult:
    _, rng = numpy_rng(rng_key)
    errors = _error_function(draws, inputs.score_fn, inputs.logdensity_fn)
    points = subsample(draws.points, settings.max_points, rng)
    chain = _measure(points, errors, rng, settings.max_points)
    details = ScoreErrorDetails(*chain)
    if inputs.reference is not None:
        reference = subsample(inputs.reference, settings.max_points, rng)
        error, per_draw, ksd = _measure(reference, errors, rng, settings.max_points)
        details = details._replace(
            reference_relative_error=error, reference_errors=per_draw, ksd_reference=ksd
        )
    status, explanation = _verdict(
        details.chain_relative_error, details.reference_relative_error, settings
    )
    return CheckResult(
        SCORE_ERROR,
        status,
        details.chain_relative_error,
        settings.score_error_fail,
        explanation,
        details,
        {"fail": "trapped", "warn": "inconclusive"}.get(status, "none"),
    )


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
    """``(relative error, per-draw relative errors, KSD)`` on ``points``; the KSD on a
    subsample of them (drawn from ``rng``) under the trusted score."""
    squared, norms, _ = errors(points)
    scale = max(norms.mean(), 1e-300)
    ksd_points = subsample(points, min(max_points, _KSD_POINTS), rng)
    _, _, ksd_scores = errors(ksd_points)
    ksd = kernel_stein_discrepancy(ksd_points, ksd_scores)
    return float(squared.mean() / scale), squared / scale, ksd


def _verdict(chain_error: float, reference_error: float | None, settings) -> tuple[str, str]:
    """``(status, explanation)``: a fail needs the error to be large where the chain sits
    and, with reference draws, concentrated there (far above the error under the target)."""
    concentrated = (
        reference_error is None
        or chain_error > settings.score_error_concentration * reference_error
    )
    if chain_error > settings.score_error_fail and concentrated:
        explanation = f"your score is {chain_error:.0%} wrong (relative L2) where the chain sits"
        if reference_error is not None:
            explanation += f", against {reference_error:.1e} under the target: the trap signature"
        return "fail", explanation + "."
    if chain_error > settings.score_error_warn:
        return "warn", f"your score has {chain_error:.1%} relative L2 error where the chain sits."
    return "ok", "your score agrees with the trusted score where the chain sits."
