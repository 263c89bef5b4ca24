"""Posterior scores from a learned prior and the model's likelihood: what the score kernels
run on a model with :class:`~robust_score.numpyro.ScorePrior` sites.

- :func:`plug_and_play_drift`: the posterior score at the data level, each prior site's
  score plus the gradient of the rest of the model's log density (plug-and-play Langevin,
  Laumont et al. 2022). Exact wherever the prior's score is.
- :class:`AnnealedLikelihood` and :class:`DPS`: a posterior *time* score for the samplers
  that anneal from noise. At noise level ``t`` the prior's time score ``s_t`` is known; the
  likelihood of ``y`` given the noised ``x_t`` is not, and each method approximates it:

  - :class:`AnnealedLikelihood` (Jalal et al. 2021): the likelihood's gradient at ``x_t``
    itself. At ``t_min`` the sum is the exact posterior score, so annealed Langevin that
    equilibrates down to the levels where the posterior's own spread dominates samples the
    posterior.
  - :class:`DPS` (diffusion posterior sampling, Chung et al. 2023): the likelihood at
    Tweedie's denoised estimate ``x0(x_t) = (x_t + sigma^2 s_t(x_t)) / alpha``, its
    gradient taken through the prior's score and multiplied by ``scale``. An approximation
    at every level, the last included: it is not exact for any number of steps.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from robust_score._checks import check_positive_scalar
from robust_score.kernels import mala, ula
from robust_score.numpyro.score_prior import SCORE_KERNELS, prior_scores

__all__ = [
    "AnnealedLikelihood",
    "DPS",
    "annealed_reference",
    "plug_and_play_drift",
    "plug_and_play_move",
    "plug_and_play_prior",
    "posterior_time_score",
]


@dataclass(frozen=True)
class AnnealedLikelihood:
    """Jalal et al. (2021)'s annealed posterior: at level ``t`` the prior's time score plus
    the gradient of the log likelihood at ``x_t``. Exact at ``t_min`` (up to the prior's own
    noise there); between, the likelihood of ``y`` given the noised ``x_t`` is taken as that
    given ``x_t``. Jalal et al. inflate a Gaussian likelihood's variance by the level's
    noise; a NumPyro likelihood has no such general form, so none is added. Evaluating it at
    ``x_t / alpha(t)`` instead, the natural guess under a variance-preserving schedule, blew
    up at the first levels (``1 / alpha(T)`` is 150 for ``rs.schedules.vp()``). The default
    guidance of ``rs.AnnealedLangevin``."""

    def time_score(self, log_likelihood, prior_time_score, x, t, alpha, sigma):
        """The posterior time score at ``x``, level ``t``."""
        weight = alpha**2 / (alpha**2 + sigma**2)
        pull = jax.grad(log_likelihood)(x)
        return jax.tree.map(lambda s, g: s + weight * g, prior_time_score(x, t), pull)


@dataclass(frozen=True)
class DPS:
    """Diffusion posterior sampling (Chung et al. 2023): at level ``t`` the prior's time
    score plus ``scale`` times the weighted gradient in ``x_t`` of the log likelihood at
    Tweedie's estimate of ``x_0``. The default guidance of ``rs.ReverseDiffusion``.

    Chung et al. tame the first levels, where Tweedie's estimate divides by ``alpha(T)``
    (1/150 under ``rs.schedules.vp()``) and a learned score's error there is amplified, by
    normalising their step by the residual norm, which needs a Gaussian likelihood. Here the
    gradient is weighted by ``(alpha^2 / (alpha^2 + sigma^2))^2``, 1 at ``t_min``: the
    square of :class:`AnnealedLikelihood`'s weight, as both the estimate's residual and its
    Jacobian carry ``1 / alpha``. With a network trained on scikit-learn's digits, every
    path diverged unweighted (at any ``scale`` down to 1e-3) and with the weight taken once;
    with it squared none did, and the observed pixels' error fell from 0.16 (once, at
    ``scale`` 0.1) to 0.02."""

    scale: float = 1.0

    def __post_init__(self):
        check_positive_scalar(self.scale, "scale")

    def time_score(self, log_likelihood, prior_time_score, x, t, alpha, sigma):
        """The posterior time score at ``x``, level ``t``: the prior's score is the one the
        Tweedie estimate is differentiated through, evaluated once."""

        def denoised(u):
            s = prior_time_score(u, t)
            return jax.tree.map(lambda a, b: (a + sigma**2 * b) / alpha, u, s), s

        estimate, pullback, score = jax.vjp(denoised, x, has_aux=True)
        (guidance,) = pullback(jax.grad(log_likelihood)(estimate))
        weight = self.scale * (alpha**2 / (alpha**2 + sigma**2)) ** 2
        return jax.tree.map(lambda s, g: s + weight * g, score, guidance)


def plug_and_play_drift(log_likelihood: Callable, prior_score: Callable) -> Callable:
    """``z -> grad log L(z) + s(z)``: the gradient of the rest of the model's log density
    plus each prior site's score (zero at the other sites)."""
    grad_rest = jax.grad(log_likelihood)

    def drift(z):
        return jax.tree.map(jnp.add, grad_rest(z), prior_score(z))

    return drift


def posterior_time_score(
    run_model, potential_fn: Callable, model_args, model_kwargs, schedule, guidance
) -> Callable:
    """``(z, t) ->`` the posterior time score of a model whose latent sites are all
    ``ScorePrior`` sites, as ``guidance`` (:class:`AnnealedLikelihood` or :class:`DPS`)
    approximates it: ``run_model`` is the model with their densities left out, and
    ``potential_fn`` its potential energy (the likelihood's) at these arguments."""
    prior_time_score = partial(prior_scores, run_model, model_args, model_kwargs)

    def log_likelihood(z):
        return -potential_fn(z)

    def time_score(x, t):
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        return guidance.time_score(log_likelihood, prior_time_score, x, t, alpha, sigma)

    return time_score


def plug_and_play_prior(setup, adjust: bool, score_fn) -> Callable | None:
    """For ``ScoreLangevin`` on a model with ``ScorePrior`` sites (``setup.priors``):
    ``(model_args, model_kwargs) -> z ->`` the prior sites' scores; ``None`` without such
    sites. MALA needs the density those sites lack, and a ``score_fn`` would replace the
    score they give: both are refused, naming the sites."""
    if not setup.priors:
        return None
    names = ", ".join(f"'{name}'" for name in setup.priors)
    if adjust:
        raise ValueError(
            f"ScoreLangevin(adjust=True) (MALA) needs the model's log density, and the "
            f"ScorePrior site(s) {names} have none. Use {SCORE_KERNELS}."
        )
    if score_fn is not None:
        raise ValueError(
            f"`score_fn` would replace the score of the ScorePrior site(s) {names}: drop "
            "`score_fn`, and the posterior score is their scores plus the gradient of the "
            "rest of the model."
        )

    def prior_score_gen(model_args, model_kwargs):
        return partial(prior_scores, setup.model, model_args, model_kwargs)

    return prior_score_gen


def plug_and_play_move():
    """ULA on the plug-and-play drift, on the NumPyro kernel's ``MALAState``: ``kernel(key,
    state, logdensity_fn, step_size, drift, inverse_mass_matrix=None) -> (state,
    MALAInfo)``. Every finite move is taken (acceptance 1); ``logdensity_fn`` (the rest of
    the model's) is only reported, never used to accept. A move to a non-finite position,
    score or rest density is refused and flagged divergent, a stiff one taken and flagged,
    as :func:`robust_score.kernels.ula.build_kernel` does."""
    move = ula.build_kernel()

    def kernel(rng_key, state, logdensity_fn, step_size, drift, inverse_mass_matrix=None):
        moved, info = move(
            rng_key,
            ula.ULAState(state.position, state.score),
            drift,
            step_size,
            inverse_mass_matrix,
        )
        value = logdensity_fn(moved.position)
        refused = ~jnp.isfinite(value)
        new = jax.tree.map(
            lambda old, new: jnp.where(refused, old, new),
            state,
            mala.MALAState(moved.position, value, moved.score),
        )
        one = jnp.ones_like(state.logdensity)
        return new, mala.MALAInfo(one, ~refused, info.is_divergent | refused)

    return kernel


# the trap report's annealed reference for a ScorePrior model: 30 levels x 100 moves, the
# budget at which AnnealedLikelihood recovered a linear-Gaussian posterior's means within
# 0.06 sd (docs/numpyro.md, "Learned priors"); 100 x 10 left 0.16-0.21 sd
REFERENCE_LEVELS, REFERENCE_MOVES = 30, 100


def annealed_reference(model, model_args=(), model_kwargs=None):
    """``(time_score_fn, schedule, settings)`` of annealed Langevin on the posterior of a
    model whose latent sites are all ``ScorePrior`` sites over one schedule, guided by
    :class:`AnnealedLikelihood`: what the trap report compares a plug-and-play chain with.
    ``None`` for any other model (a site with no score at the noise levels)."""
    from numpyro.infer.util import potential_energy

    from robust_score.kernels.annealed_langevin import AnnealedLangevin
    from robust_score.numpyro.score_prior import score_prior_sites, without_prior_densities
    from robust_score.numpyro.transforms import latent, model_sites

    model_kwargs = {} if model_kwargs is None else model_kwargs
    sites = model_sites(model, model_args, model_kwargs)
    priors = score_prior_sites(sites)
    schedules = {prior.schedule for prior in priors.values()}
    if not priors or set(latent(sites)) != set(priors) or len(schedules) != 1:
        return None
    (schedule,) = schedules
    run_model = without_prior_densities(model)
    time_score_fn = posterior_time_score(
        run_model,
        partial(potential_energy, run_model, model_args, model_kwargs),
        model_args,
        model_kwargs,
        schedule,
        AnnealedLikelihood(),
    )
    settings = AnnealedLangevin(
        schedule, num_levels=REFERENCE_LEVELS, steps_per_level=REFERENCE_MOVES
    )
    return time_score_fn, schedule, settings
