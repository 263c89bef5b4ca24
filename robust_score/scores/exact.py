"""Exact scores of Gaussians and Gaussian mixtures, optionally noised under a schedule.

Every covariance is stored by its eigendecomposition ``cov = U diag(lam) U^T``: then the
covariance of the noised marginal, ``alpha^2 cov + sigma^2 I = U diag(alpha^2 lam + sigma^2) U^T``,
has a closed-form inverse at every noise level, so the plain score (alpha=1, sigma=0) and the
noised time score share one code path.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_callable
from robust_score.schedules import Schedule, check_schedule

__all__ = [
    "from_logdensity",
    "gaussian",
    "gaussian_logdensity",
    "gaussian_mixture",
    "gaussian_mixture_logdensity",
]


def from_logdensity(logdensity_fn: Callable) -> Callable:
    """The score ``x -> grad log p(x)`` of a (possibly unnormalized) log density, by autodiff."""
    check_callable(logdensity_fn, "logdensity_fn", "logdensity_fn(x)")
    return jax.grad(logdensity_fn)


class _Components(NamedTuple):
    """K Gaussian components in eigen form (float64 numpy, cast to the input's dtype on use)."""

    log_weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, d)
    eigvecs: np.ndarray | None  # (K, d, d); None when every covariance is diagonal
    eigvals: np.ndarray  # (K, d)


def _as_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 NumPy array, or a ``TypeError`` naming the argument."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be an array of numbers, got {value!r}.") from err


def _as_covariances(covs, num_components: int, dim: int, name: str) -> np.ndarray:
    """Accept scalar / (K,) isotropic, (K, d) diagonal or (K, d, d) full covariances. Isotropic
    and diagonal ones come back as (K, d) variances, never as d x d matrices: O(d) memory and
    time at the dimensions learned scores live at (d = 3,072 and up); full ones as (K, d, d),
    symmetrized."""
    covs = _as_array(covs, name)
    if covs.ndim == 0:
        covs = np.broadcast_to(covs, (num_components,))
    if covs.shape == (num_components,):
        covs = np.repeat(covs[:, None], dim, axis=1)
    if covs.shape not in ((num_components, dim), (num_components, dim, dim)):
        k, d = num_components, dim
        raise ValueError(
            f"`{name}` must match `means` ({k} components in dimension {d}): a scalar (one "
            f"isotropic variance for all), shape ({k},) (an isotropic variance per component), "
            f"({k}, {d}) (a diagonal per component) or ({k}, {d}, {d}) (a full matrix per "
            f"component); got shape {covs.shape}."
        )
    if not np.all(np.isfinite(covs)):
        raise ValueError(f"`{name}` has non-finite entries.")
    if covs.ndim == 2:
        return covs
    transposed = np.swapaxes(covs, -1, -2)
    # float32 products such as Q diag Q^T are symmetric only to rounding
    if not np.allclose(covs, transposed, rtol=1e-4, atol=1e-6 * np.abs(covs).max()):
        raise ValueError(f"`{name}` must be symmetric.")
    return 0.5 * (covs + transposed)


def _components(weights, means, covs, *, cov_name: str) -> _Components:
    means = _as_array(means, "means")
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        hint = (
            f" For one component in dimension {means.shape[0]}, pass `means[None]` (or use "
            "rs.scores.gaussian)."
            if means.ndim == 1
            else ""
        )
        raise ValueError(
            "`means` must be shaped (num_components, dim), one row per component; got shape "
            f"{means.shape}.{hint}"
        )
    if not np.all(np.isfinite(means)):
        raise ValueError("`means` has non-finite entries.")
    num_components, dim = means.shape
    weights = _as_array(weights, "weights")
    if weights.shape != (num_components,):
        raise ValueError(
            f"`weights` must have one entry per component: `means` has {num_components} "
            f"rows (components), so shape ({num_components},); got shape {weights.shape}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError("`weights` must be finite, non-negative and not all zero.")
    covs = _as_covariances(covs, num_components, dim, cov_name)
    if covs.ndim == 2:  # variances: no rotation, no d x d matrix
        eigvals, eigvecs = covs.copy(), None
    elif np.array_equal(covs, np.diagonal(covs, axis1=-2, axis2=-1)[..., None] * np.eye(dim)):
        # a diagonal given in full: skipping two (d, d) products per evaluation matters at d ~ 1000
        eigvals, eigvecs = np.diagonal(covs, axis1=-2, axis2=-1).copy(), None
    else:
        eigvals, eigvecs = np.linalg.eigh(covs)
    if np.any(eigvals <= 0):
        raise ValueError(f"`{cov_name}` must be positive definite (smallest eigenvalue <= 0).")
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights / weights.sum())
    return _Components(log_weights, means, eigvecs, eigvals)


def _log_prob_and_score(components: _Components, x, alpha, sigma):
    """log N(x; alpha mu_k, alpha^2 cov_k + sigma^2 I) for every k, and the mixture score."""
    dtype = x.dtype
    means = jnp.asarray(components.means, dtype)
    variances = alpha**2 * jnp.asarray(components.eigvals, dtype) + sigma**2  # (K, d)
    residual = x[None, :] - alpha * means  # (K, d)
    if components.eigvecs is None:
        rotated = residual
    else:
        eigvecs = jnp.asarray(components.eigvecs, dtype)
        rotated = jnp.einsum("kij,ki->kj", eigvecs, residual)
    scaled = rotated / variances
    log_probs = -0.5 * (
        jnp.sum(rotated * scaled, axis=-1)
        + jnp.sum(jnp.log(variances), axis=-1)
        + x.size * math.log(2 * math.pi)
    )
    if components.eigvecs is None:
        component_scores = -scaled
    else:
        component_scores = -jnp.einsum("kij,kj->ki", eigvecs, scaled)
    joint = jnp.asarray(components.log_weights, dtype) + log_probs
    log_prob = jax.nn.logsumexp(joint)
    responsibilities = jnp.exp(joint - log_prob)
    return log_prob, responsibilities @ component_scores


def _build(components: _Components, schedule: Schedule | None, want: str) -> Callable:
    index = 0 if want == "logdensity" else 1

    def _check(flat):
        if flat.size != components.means.shape[1]:
            raise ValueError(
                f"position has {flat.size} entries but the distribution has dimension "
                f"{components.means.shape[1]}."
            )

    if schedule is None:

        def fn(x):
            flat, unravel = ravel_pytree(x)
            _check(flat)
            out = _log_prob_and_score(components, flat, 1.0, 0.0)[index]
            return out if index == 0 else unravel(out)

        return fn
    check_schedule(schedule)

    def time_fn(x, t):
        flat, unravel = ravel_pytree(x)
        _check(flat)
        t = jnp.asarray(t, flat.dtype)
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        out = _log_prob_and_score(components, flat, alpha, sigma)[index]
        return out if index == 0 else unravel(out)

    return time_fn


def _single(mean, cov) -> _Components:
    mean = np.atleast_1d(_as_array(mean, "mean"))
    if mean.ndim != 1 or mean.size < 1:
        raise ValueError(
            f"`mean` must be a vector (shape (dim,)), got shape {mean.shape}. For several "
            "Gaussians use rs.scores.gaussian_mixture."
        )
    cov = _as_array(cov, "cov")
    (dim,) = mean.shape
    if cov.shape not in ((), (dim,), (dim, dim)):
        raise ValueError(
            f"`cov` must match `mean` (dimension {dim}): a scalar (isotropic), {dim} "
            f"variances (the diagonal, shape ({dim},)) or a {dim} x {dim} matrix; got shape "
            f"{cov.shape}."
        )
    return _components(np.ones(1), mean[None], cov[None], cov_name="cov")


def gaussian(mean, cov, *, schedule: Schedule | None = None) -> Callable:
    """Exact score of ``N(mean, cov)``.

    ``cov`` may be a scalar (isotropic), a vector (diagonal) or a full matrix. With a
    ``schedule``, returns the time score ``(x, t) -> grad log p_t(x)`` of the noised marginal
    ``N(alpha(t) mean, alpha(t)^2 cov + sigma(t)^2 I)``. Positions may be pytrees with
    ``mean.size`` entries in all.
    """
    return _build(_single(mean, cov), schedule, "score")


def gaussian_logdensity(mean, cov, *, schedule: Schedule | None = None) -> Callable:
    """Normalized log density of ``N(mean, cov)`` (noised under ``schedule`` if given)."""
    return _build(_single(mean, cov), schedule, "logdensity")


def gaussian_mixture(weights, means, covs, *, schedule: Schedule | None = None) -> Callable:
    """Exact score of ``sum_k w_k N(means_k, covs_k)``, with a stable log-sum-exp.

    ``means`` is ``(K, d)``; ``covs`` a scalar, ``(K,)`` isotropic, ``(K, d)`` diagonal or
    ``(K, d, d)`` full. ``weights`` are normalized. With a ``schedule``, the time score of the
    noised mixture (each component noised as in :func:`gaussian`).
    """
    return _build(_components(weights, means, covs, cov_name="covs"), schedule, "score")


def gaussian_mixture_logdensity(
    weights, means, covs, *, schedule: Schedule | None = None
) -> Callable:
    """Normalized log density of the mixture (noised under ``schedule`` if given)."""
    return _build(_components(weights, means, covs, cov_name="covs"), schedule, "logdensity")
