"""``ScoreDiffusion``: reverse-diffusion draws as a NumPyro ``MCMCKernel``.

A thin adapter over the kernels behind ``rs.reverse_diffusion`` and ``rs.annealed_langevin``
(:mod:`robust_score.kernels`), run in the model's unconstrained space: every NumPyro iteration
is one path from noise, and NumPyro's ``postprocess_fn`` maps its end point to the model's
constrained sites and deterministic values.
"""

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import random
from numpyro.infer.initialization import init_to_uniform

from robust_score._checks import (
    check_callable,
    check_finite_start,
    check_model_or_potential,
    check_site_fn,
)
from robust_score.kernels._annealing import AnnealingPath
from robust_score.kernels.annealed_langevin import AnnealedLangevin
from robust_score.numpyro._common import ScoreKernelBase
from robust_score.numpyro.posterior import DPS, AnnealedLikelihood, posterior_time_score
from robust_score.numpyro.score_prior import check_posterior_sites

__all__ = ["ScoreDiffusion", "ScoreDiffusionState"]


class ScoreDiffusionState(NamedTuple):
    """State of :class:`ScoreDiffusion` (one chain).

    - **i**: iteration (warm-up and sampling alike: nothing is tuned).
    - **z**: the latest draw, unconstrained values at the latent sites.
    - **potential_energy**: ``-log p(z)`` of the model at the draw (a diagnostic: the
      reverse diffusion never uses it).
    - **diverging**: the trajectory hit a non-finite position or score; the draw was not
      taken and the previous one is repeated.
    - **num_diverging**: divergences so far.
    - **rng_key**: the chain's PRNG key.
    """

    i: jax.Array
    z: Any
    potential_energy: jax.Array
    diverging: jax.Array
    num_diverging: jax.Array
    rng_key: jax.Array


class ScoreDiffusion(ScoreKernelBase):
    """Reverse-diffusion (or annealed-Langevin) draws behind NumPyro's ``MCMC``, driven by a
    time score.

    .. code::

        settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=100)
        kernel = rs.numpyro.ScoreDiffusion(model, time_score_fn=score, settings=settings)
        mcmc = MCMC(kernel, num_warmup=0, num_samples=1000, num_chains=4)

    Each iteration runs one path of ``settings`` (a :class:`robust_score.ReverseDiffusion` or
    :class:`robust_score.AnnealedLangevin`) from ``t_start`` down to ``t_min`` in NumPyro's
    unconstrained space. With ``t_start`` at the schedule's ``T`` (the default) every path
    starts from fresh noise: an independence kernel, so draws are independent, there is
    nothing to warm up, and a wrong score cannot trap a chain the way it traps Langevin (the
    error it causes is bounded by the score's L2 error at each noise level). A ``t_start``
    below ``T`` renoises the current draw and denoises it back.

    The model supplies the sites, their transforms (``get_samples()`` holds constrained values
    and deterministic sites) and ``potential_energy`` for diagnostics; the draws come from
    ``time_score_fn`` alone. A path that hits a non-finite value is not taken: the chain
    repeats its last draw and the iteration is flagged ``diverging``.

    :param model: Python callable with NumPyro primitives (continuous latent sites only).
    :param potential_fn: instead of ``model``: ``z -> -log p(z)``, reported as
        ``potential_energy``; then ``init_params`` (a template of the position) must be given.
    :param time_score_fn: ``(z, t) -> grad log p_t(z)`` over the unconstrained sites
        (``{site: array}`` for a model) for the forward process of the settings' schedule;
        ``t`` is a scalar array of the position's dtype. Leave it out for a model whose
        latent sites are all :class:`~robust_score.numpyro.ScorePrior` sites: the posterior
        is then sampled with their time scores and the likelihood, through ``guidance``.
    :param guidance: how the likelihood enters at each noise level (a ``ScorePrior`` model
        only): :class:`~robust_score.numpyro.AnnealedLikelihood` (Jalal et al. 2021; the
        default with ``rs.AnnealedLangevin``, exact at the last level) or
        :class:`~robust_score.numpyro.DPS` (Chung et al. 2023; the default with
        ``rs.ReverseDiffusion``, an approximation at every level).
    :param settings: a :class:`robust_score.ReverseDiffusion` or
        :class:`robust_score.AnnealedLangevin`.
    :param init_strategy: NumPyro initialization strategy (it only fixes the sites' shapes,
        and the draw repeated if the first path diverges).
    """

    _transient = ("_sample_fn", "_posterior_gen")

    def __init__(
        self,
        model=None,
        potential_fn=None,
        *,
        time_score_fn: Callable | None = None,
        settings: AnnealingPath,
        guidance: AnnealedLikelihood | DPS | None = None,
        init_strategy=init_to_uniform,
    ):
        check_model_or_potential(model, potential_fn)
        if not isinstance(settings, AnnealingPath):
            raise TypeError(
                "`settings` must be a robust_score.ReverseDiffusion or "
                f"robust_score.AnnealedLangevin, got {type(settings).__name__}."
            )
        self._algorithm = None  # a posterior's is built per call, from the model's arguments
        if time_score_fn is not None:
            check_callable(time_score_fn, "time_score_fn", "time_score_fn(z, t)")
            if guidance is not None:
                raise ValueError(
                    "`guidance` guides a ScorePrior model's posterior; with `time_score_fn` "
                    "the time score is the whole target's: drop one of them."
                )
            self._algorithm = settings.sampling_algorithm(time_score_fn)
        elif model is None:
            raise ValueError(
                "`time_score_fn` is required with `potential_fn`: only a model's ScorePrior "
                "sites give a time score."
            )
        if guidance is None:
            guidance = AnnealedLikelihood() if isinstance(settings, AnnealedLangevin) else DPS()
        elif not isinstance(guidance, AnnealedLikelihood | DPS):
            raise TypeError(
                "`guidance` must be rs.numpyro.AnnealedLikelihood() or rs.numpyro.DPS(scale), "
                f"got {type(guidance).__name__}."
            )
        self._guidance = guidance
        self._posterior_gen = None
        self._model = model
        self._potential_fn = potential_fn
        self._time_score_fn = time_score_fn
        self._settings = settings
        self._init_strategy = init_strategy
        self._potential_fn_gen = None
        self._postprocess_fn = None
        # MCMC re-runs `init` while this is None; set by `init`
        self._sample_fn = None

    def get_diagnostics_str(self, state):
        return f"divergences={int(state.num_diverging)}"

    def init(self, rng_key, num_warmup, init_params=None, model_args=(), model_kwargs=None):
        del num_warmup  # nothing to tune
        model_kwargs = {} if model_kwargs is None else model_kwargs
        setup = self._setup_model(rng_key, init_params, model_args, model_kwargs)
        prototype = setup.prototype
        dtype = jnp.result_type(*jax.tree.leaves(prototype))
        t_min = jnp.asarray(self._settings.schedule.t_min, dtype)
        if self._time_score_fn is None:
            check_posterior_sites(setup.priors, prototype, self._settings.schedule)
            self._posterior_gen = partial(self._posterior_time_score, setup.model)
        time_score_fn = self._time_score(model_args, model_kwargs)
        check_site_fn(time_score_fn, prototype, "time_score_fn", t_min)
        potential_fn = self._get_potential_fn(model_args, model_kwargs)
        init_one = partial(_init_state, potential_fn=potential_fn)
        if setup.vectorized:
            init_one = jax.vmap(init_one)
        # one compiled program, not op-by-op dispatch of the potential (seconds on first use)
        state = jax.jit(init_one)(setup.rng_key, setup.init_params)
        check_finite_start(state.potential_energy, None, setup.vectorized)
        self._sample_fn = self._sample_one
        if setup.vectorized:
            self._sample_fn = jax.vmap(self._sample_one, in_axes=(0, None, None))
        return state

    def _time_score(self, model_args, model_kwargs):
        if self._time_score_fn is not None:
            return self._time_score_fn
        return self._posterior_gen(model_args, model_kwargs)

    def _posterior_time_score(self, run_model, model_args, model_kwargs):
        """The posterior time score of a ``ScorePrior`` model at these arguments: the
        priors' time scores and the likelihood through ``guidance``."""
        return posterior_time_score(
            run_model,
            self._get_potential_fn(model_args, model_kwargs),
            model_args,
            model_kwargs or {},
            self._settings.schedule,
            self._guidance,
        )

    def _sample_one(self, state, model_args, model_kwargs):
        potential_fn = self._get_potential_fn(model_args, model_kwargs)
        rng_key, key_draw = random.split(state.rng_key)
        algorithm = self._algorithm
        if algorithm is None:
            algorithm = self._settings.sampling_algorithm(
                self._time_score(model_args, model_kwargs)
            )
        drawn, info = algorithm.step(key_draw, algorithm.init(state.z))
        potential = potential_fn(drawn.position)
        z, potential = jax.tree.map(
            lambda old, new: jnp.where(info.is_divergent, old, new),
            (state.z, state.potential_energy),
            (drawn.position, potential),
        )
        return ScoreDiffusionState(
            i=state.i + 1,
            z=z,
            potential_energy=potential,
            diverging=info.is_divergent,
            num_diverging=state.num_diverging + info.is_divergent,
            rng_key=rng_key,
        )


def _init_state(rng_key, z, *, potential_fn):
    return ScoreDiffusionState(
        i=jnp.array(0),
        z=z,
        potential_energy=potential_fn(z),
        diverging=jnp.array(False),
        num_diverging=jnp.array(0),
        rng_key=rng_key,
    )
