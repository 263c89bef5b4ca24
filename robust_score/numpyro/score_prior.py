"""``ScorePrior``: a prior known only through its (learned) time score, as a NumPyro
distribution, and the model plumbing that lets the score kernels sample posteriors with it.

A ``ScorePrior`` site has no log density. NumPyro's density-based kernels (NUTS, HMC, SA,
BarkerMH) would evaluate one at their first step; :meth:`ScorePrior.log_prob` refuses there,
naming the site. The kernels of :mod:`robust_score.numpyro` never ask for it: they run on
the model with each prior site's density left out (:func:`without_prior_densities`, the
likelihood and the other sites' densities as NumPyro computes them) and add each prior
site's score (:func:`prior_scores`).
"""

import math
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import random
from numpyro.distributions import Distribution, constraints
from numpyro.handlers import seed
from numpyro.primitives import Messenger

from robust_score._checks import check_callable, check_event_shape
from robust_score.kernels._annealing import AnnealingPath
from robust_score.schedules import Schedule, check_schedule

__all__ = [
    "ScorePrior",
    "DensityUnknownError",
    "check_posterior_sites",
    "prior_scores",
    "score_prior_sites",
    "without_prior_densities",
]

# reverse-SDE steps of ScorePrior.sample unless settings are given (the trap report's
# reference draws use as many)
SAMPLE_STEPS = 200

# the kernels that sample a ScorePrior model, named in every refusal
SCORE_KERNELS = (
    "rs.numpyro.ScoreLangevin(model, adjust=False) (plug-and-play Langevin) or "
    "rs.numpyro.ScoreDiffusion(model, settings=...) (annealed posterior sampling)"
)


class DensityUnknownError(ValueError):
    """A kernel asked a :class:`ScorePrior` for the log density it does not have."""


class ScorePrior(Distribution):
    """A prior over real arrays of ``event_shape`` known through its time score
    ``time_score_fn(x, t) = grad log p_t(x)`` under ``schedule``'s forward process (a
    network trained with ``rs.learn``, an adapter of ``rs.scores``, or an exact score).

    .. code::

        def model(y):
            x = numpyro.sample("x", rs.numpyro.ScorePrior(score, schedule, (64,)))
            numpyro.sample("y", dist.Normal(A @ x, 0.1), obs=y)

        mcmc = MCMC(rs.numpyro.ScoreLangevin(model), num_warmup=1000, num_samples=1000)

    - :meth:`sample` draws by reverse diffusion (``settings``; default the reverse SDE in
      ``SAMPLE_STEPS`` = 200 steps), so ``Predictive`` gives prior predictive draws;
    - :meth:`score` is the time score at the schedule's smallest time ``t_min``;
    - :meth:`log_prob` raises :class:`DensityUnknownError`: the density is unknown, and no
      kernel may run on a made-up one. Sample such a model with
      ``rs.numpyro.ScoreLangevin(model, adjust=False)`` or
      ``rs.numpyro.ScoreDiffusion(model, settings=...)``.

    ``time_score_fn`` is called one point at a time (positions of ``event_shape``, ``t`` a
    scalar array); a site inside a plate gets its batch mapped over.
    """

    arg_constraints = {}
    pytree_data_fields = ()
    pytree_aux_fields = ("time_score_fn", "schedule", "settings")

    def __init__(
        self,
        time_score_fn: Callable,
        schedule: Schedule,
        event_shape,
        *,
        settings: AnnealingPath | None = None,
        batch_shape=(),
        validate_args=None,
    ):
        check_callable(time_score_fn, "time_score_fn", "time_score_fn(x, t)")
        check_schedule(schedule)
        event_shape = check_event_shape(event_shape)
        if settings is None:
            from robust_score.kernels.reverse_diffusion import ReverseDiffusion

            settings = ReverseDiffusion(schedule, num_steps=SAMPLE_STEPS)
        elif not isinstance(settings, AnnealingPath):
            raise TypeError(
                "`settings` must be a robust_score.ReverseDiffusion or "
                f"robust_score.AnnealedLangevin, got {type(settings).__name__}."
            )
        elif settings.schedule != schedule:
            raise ValueError(
                "`settings.schedule` must be the prior's `schedule`: the time score is "
                "for that forward process only."
            )
        self.time_score_fn = time_score_fn
        self.schedule = schedule
        self.settings = settings
        super().__init__(tuple(batch_shape), event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False)
    def support(self):
        return constraints.independent(constraints.real, len(self.event_shape))

    def expand(self, batch_shape):
        """The same prior over a batch (a plate), kept a ``ScorePrior`` so that the score
        kernels still find it."""
        return ScorePrior(
            self.time_score_fn,
            self.schedule,
            self.event_shape,
            settings=self.settings,
            batch_shape=tuple(batch_shape),
        )

    def time_score(self, value, t):
        """``grad log p_t`` at ``value``, whose trailing axes are ``event_shape`` (the
        leading ones are mapped over, one point per call of ``time_score_fn``)."""
        value = jnp.asarray(value)
        lead = value.shape[: value.ndim - len(self.event_shape)]
        t = jnp.asarray(t, value.dtype)
        if not lead:
            return jnp.asarray(self.time_score_fn(value, t), value.dtype)
        points = value.reshape((math.prod(lead), *self.event_shape))
        scores = jax.vmap(lambda x: jnp.asarray(self.time_score_fn(x, t), value.dtype))(points)
        return scores.reshape(value.shape)

    def score(self, value):
        """The score of the prior: the time score at ``t_min``."""
        return self.time_score(value, self.schedule.t_min)

    def sample(self, key, sample_shape=()):
        """Draws by reverse diffusion with ``settings`` (one path per draw)."""
        shape = tuple(sample_shape) + self.batch_shape
        algorithm = self.settings.sampling_algorithm(self.time_score_fn)
        state = algorithm.init(jnp.zeros(self.event_shape, jnp.result_type(float)))
        keys = random.split(key, math.prod(shape))
        draws = jax.vmap(lambda k: algorithm.step(k, state)[0].position)(keys)
        return draws.reshape(shape + self.event_shape)

    def log_prob(self, value):
        site = _calling_site(self)
        where = f"The ScorePrior at site '{site}'" if site else "A ScorePrior site"
        raise DensityUnknownError(
            f"{where} has no log density (it is known only through its score), so a kernel "
            "that evaluates the model's density (NUTS, HMC, MALA, BarkerMH, SA) cannot "
            f"sample this model. Use {SCORE_KERNELS}."
        )


def _calling_site(prior) -> str | None:
    """The name of the site ``prior`` sits at, read from the caller that loops over a
    model's trace (NumPyro's ``log_density`` holds the site record beside the call)."""
    frame = sys._getframe(2)
    while frame is not None:
        for record in frame.f_locals.values():
            if isinstance(record, dict) and record.get("fn") is prior and "name" in record:
                return record["name"]
        frame = frame.f_back
    return None


class _PriorWithoutDensity(Distribution):
    """A :class:`ScorePrior` site with its (unknown) density left out: log density zero,
    sampled as the prior. What the score kernels run the rest of the model on."""

    arg_constraints = {}

    def __init__(self, prior: ScorePrior):
        self.prior = prior
        super().__init__(prior.batch_shape, prior.event_shape)

    @constraints.dependent_property(is_discrete=False)
    def support(self):
        return self.prior.support

    def sample(self, key, sample_shape=()):
        return self.prior.sample(key, sample_shape)

    def log_prob(self, value):
        lead = jnp.shape(value)[: jnp.ndim(value) - len(self.event_shape)]
        return jnp.zeros(lead, jnp.result_type(value))


class _LeaveOutPriorDensities(Messenger):
    def process_message(self, msg):
        if msg["type"] == "sample" and isinstance(msg["fn"], ScorePrior):
            msg["fn"] = _PriorWithoutDensity(msg["fn"])


def without_prior_densities(model):
    """``model`` with every :class:`ScorePrior` site's density left out (zero): NumPyro's
    potential energy of it is that of the likelihood and every other site."""
    return _LeaveOutPriorDensities(model)


def score_prior_sites(sites: dict) -> dict:
    """``{name: ScorePrior}`` among traced ``sites`` (of the model as written, or of
    :func:`without_prior_densities` of it)."""
    found = {}
    for name, site in sites.items():
        fn = site.get("fn") if site["type"] == "sample" else None
        if isinstance(fn, _PriorWithoutDensity):
            fn = fn.prior
        if isinstance(fn, ScorePrior) and not site["is_observed"]:
            found[name] = fn
    return found


def prior_scores(model, model_args, model_kwargs, z: dict, t=None) -> dict:
    """``{site: score}`` over the latent sites ``z`` (unconstrained values): each
    :class:`ScorePrior` site's time score at ``t`` (``None``: its own ``t_min``), zero at
    every other site. The model is replayed at ``z``, so a prior inside a plate, or built
    from the model's arguments, is the one the model uses there."""
    from robust_score.numpyro.transforms import replay_unconstrained

    model_trace, _ = replay_unconstrained(seed(model, random.key(0)), model_args, model_kwargs, z)
    priors = score_prior_sites(model_trace)
    scores = {}
    for name, value in z.items():
        if name not in priors:
            scores[name] = jnp.zeros_like(value)
        elif t is None:
            scores[name] = priors[name].score(value)
        else:
            scores[name] = priors[name].time_score(value, t)
    return scores


def check_posterior_sites(priors: dict, z: dict, schedule: Schedule) -> None:
    """Annealed posterior sampling moves every latent site through the noise levels, so
    each must be a :class:`ScorePrior` (nothing else has a score there) over ``schedule``."""
    if not priors:
        raise ValueError(
            "`time_score_fn` is required: the model has no ScorePrior site whose time score "
            "ScoreDiffusion could anneal with."
        )
    others = sorted(set(z) - set(priors))
    if others:
        raise ValueError(
            f"annealed posterior sampling needs every latent site to be a ScorePrior, and "
            f"{others} are not: only a ScorePrior has a score at every noise level. Sample "
            "this model with rs.numpyro.ScoreLangevin(model), or fix those sites with "
            "numpyro.handlers.condition."
        )
    for name, prior in priors.items():
        if prior.schedule != schedule:
            raise ValueError(
                f"the ScorePrior at site '{name}' has a time score for another schedule than "
                "`settings.schedule`: the settings must anneal over the prior's schedule."
            )
