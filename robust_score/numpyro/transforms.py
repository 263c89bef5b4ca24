"""Move a score between a NumPyro model's constrained and unconstrained spaces."""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from numpyro.distributions.transforms import IdentityTransform, IndependentTransform, biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer.initialization import init_to_uniform

from robust_score._checks import check_callable, check_continuous

__all__ = [
    "constrained_score_to_unconstrained",
    "constrains_to_itself",
    "latent",
    "latent_sites",
    "model_sites",
    "replay_unconstrained",
]


def latent_sites(model, model_args=(), model_kwargs=None, rng_key=None):
    """``{name: site}`` of the model's latent (non-observed) sample sites, from one trace.
    Continuous sites take their values from ``init_to_uniform``, not from their
    distribution, so a site that cannot be sampled (``ImproperUniform``) is traced too."""
    return latent(model_sites(model, model_args, model_kwargs, rng_key))


def latent(sites: dict) -> dict:
    """The latent (non-observed) sample sites among traced ``sites``."""
    return {
        name: site
        for name, site in sites.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def model_sites(model, model_args=(), model_kwargs=None, rng_key=None):
    """Every site of one trace of the model, latent sites valued by ``init_to_uniform``."""
    model_kwargs = {} if model_kwargs is None else model_kwargs
    rng_key = jax.random.key(0) if rng_key is None else rng_key
    model = substitute(seed(model, rng_key), substitute_fn=init_to_uniform)
    return dict(trace(model).get_trace(*model_args, **model_kwargs))


def constrains_to_itself(sites: dict) -> bool:
    """Whether NumPyro's postprocessing of these traced sites is the identity: no
    deterministic site, and every latent site unconstrained already (real support). Then
    replaying the model at every kept draw to constrain it can be skipped."""
    if any(site["type"] == "deterministic" for site in sites.values()):
        return False
    for site in latent(sites).values():
        transform = biject_to(site["fn"].support)
        while isinstance(transform, IndependentTransform):
            transform = transform.base_transform
        if not isinstance(transform, IdentityTransform):
            return False
    return True


def constrained_score_to_unconstrained(
    model, constrained_score_fn: Callable, model_args=(), model_kwargs=None
) -> Callable:
    """Turn a score over the model's constrained sites into the score NumPyro samples from.

    NumPyro samples every continuous latent site ``x_k`` in an unconstrained coordinate
    ``u_k`` with ``x_k = T_k(u_k)``, ``T_k = biject_to(support_k)``. A density ``p(x)`` on the
    constrained sites becomes ``p(T(u)) |det DT(u)|`` there, so its score is

    ``grad_u log p_u(u) = DT(u)^T s(T(u)) + grad_u log |det DT(u)|``,

    with ``s = constrained_score_fn``. Both terms come from one reverse-mode pass through the
    model's transforms. The model is replayed to find them, so a support that depends on
    another site (``Uniform(0, a)`` with a latent ``a``) is transformed with that site's
    current value and its dependence enters ``DT`` as it should.

    Parameters
    ----------
    model
        The NumPyro model whose latent sites the score is over.
    constrained_score_fn
        ``{site: x_k} -> {site: d log p / d x_k}``: a score (learned or approximate) on the
        constrained values, shaped like them.
    model_args, model_kwargs
        The model's arguments (they fix plates, data and supports).

    Returns
    -------
    ``score_fn(u) -> {site: d log p_u / d u_k}``, to pass as
    ``rs.numpyro.ScoreLangevin(model, score_fn=...)``.

    Example
    -------
    .. code::

        def model():
            numpyro.sample("sigma", dist.LogNormal(0.0, 1.0))

        score = constrained_score_to_unconstrained(
            model, lambda x: {"sigma": -(1 + jnp.log(x["sigma"])) / x["sigma"]}
        )  # the LogNormal(0, 1) score on sigma > 0; sigma = exp(u) gives -u: N(0, 1) in u
    """
    check_callable(constrained_score_fn, "constrained_score_fn", "constrained_score_fn(x)")
    model_kwargs = {} if model_kwargs is None else model_kwargs
    sites = latent_sites(model, model_args, model_kwargs)
    check_continuous(sites, "constrained_score_to_unconstrained")
    constrain_with_log_det = partial(
        _constrain_with_log_det, seed(model, jax.random.key(0)), model_args, model_kwargs
    )

    def score_fn(unconstrained):
        missing = sorted(set(sites) - set(unconstrained))
        if missing:
            raise ValueError(
                f"the unconstrained position lacks the model's latent sites {missing}."
            )
        (constrained, log_det), pullback = jax.vjp(constrain_with_log_det, unconstrained)
        score = constrained_score_fn(constrained)
        if not isinstance(score, dict) or set(score) != set(constrained):
            got = sorted(score) if isinstance(score, dict) else type(score).__name__
            raise ValueError(
                "`constrained_score_fn` must return a dict keyed by the latent sites "
                f"{sorted(constrained)}, got {got}."
            )
        score = {name: jnp.asarray(score[name], constrained[name].dtype) for name in constrained}
        (unconstrained_score,) = pullback((score, jnp.ones_like(log_det)))
        return unconstrained_score

    return score_fn


def _constrain_with_log_det(replayable, model_args, model_kwargs, unconstrained):
    """The constrained values of the latent sites at ``unconstrained`` (the model replayed,
    so a support may depend on other sites), and ``log |det DT(u)|`` summed over sites."""
    model_trace, log_det = replay_unconstrained(replayable, model_args, model_kwargs, unconstrained)
    constrained = {name: model_trace[name]["value"] for name in unconstrained}
    return constrained, log_det


def replay_unconstrained(replayable, model_args, model_kwargs, unconstrained):
    """``(trace, log |det DT(u)|)`` of the (seeded) model replayed with its latent sites at
    the ``unconstrained`` values, each mapped through its support's transform as the model
    reaches it."""
    log_dets = []

    def substitute_fn(site):
        name = site["name"]
        if site["type"] != "sample" or site["is_observed"] or name not in unconstrained:
            return None
        transform = biject_to(site["fn"].support)
        value = transform(unconstrained[name])
        log_dets.append(jnp.sum(transform.log_abs_det_jacobian(unconstrained[name], value)))
        return value

    model_trace = trace(substitute(replayable, substitute_fn=substitute_fn)).get_trace(
        *model_args, **model_kwargs
    )
    return model_trace, sum(log_dets, jnp.zeros(()))
