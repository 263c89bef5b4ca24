"""Checks of what the NumPyro kernels are given: model or potential, model arguments, latent
sites, site-keyed functions and the starting point."""

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from robust_score._checks.arrays import check_score_output

__all__ = [
    "check_continuous",
    "check_finite_start",
    "check_model_arguments",
    "check_model_or_potential",
    "check_site_fn",
]


def check_model_or_potential(model, potential_fn) -> None:
    """The constructors' common rule: exactly one of ``model`` or ``potential_fn``, callable."""
    if not (model is None) ^ (potential_fn is None):
        raise ValueError("Give exactly one of `model` or `potential_fn`.")
    for name, value in (("model", model), ("potential_fn", potential_fn)):
        if value is not None and not callable(value):
            raise TypeError(f"`{name}` must be callable, got {type(value).__name__}.")


def check_model_arguments(model_args, model_kwargs) -> None:
    """``model_args`` a tuple or list and ``model_kwargs`` a mapping, each or ``None``."""
    if model_args is not None and not isinstance(model_args, tuple | list):
        raise TypeError(
            "`model_args` must be a tuple of the model's positional arguments (e.g. "
            f"`(sigma,)`), got {type(model_args).__name__}."
        )
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(
            "`model_kwargs` must be a dict of the model's keyword arguments (e.g. "
            f"`{{'y': y}}`), got {type(model_kwargs).__name__}."
        )


def check_continuous(sites: dict, who: str) -> None:
    discrete = sorted(name for name, site in sites.items() if site["fn"].support.is_discrete)
    if discrete:
        raise ValueError(
            f"{who} does not support discrete latent sites, but the model has {discrete}. "
            "Marginalize them out of the model (e.g. with a mixture distribution), or use "
            "numpyro.infer.DiscreteHMCGibbs / MixedHMC."
        )


def check_site_fn(fn: Callable, z, name: str, *extra_args) -> None:
    """``fn(z, *extra_args)`` must return a pytree shaped like ``z``; for NumPyro's dict of
    sites the message names the missing, extra or misshapen site."""
    if isinstance(z, dict):
        try:
            out = jax.eval_shape(fn, z, *extra_args)
        except Exception as err:  # name the argument, keep the user's error
            raise TypeError(
                f"`{name}` failed on the unconstrained latent sites {sorted(z)}: "
                f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(out, dict) or set(out) != set(z):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ValueError(
                f"`{name}` must return a dict keyed by the model's latent sites "
                f"{sorted(z)} (unconstrained values), got {got}."
            )
        for site in sorted(z):
            want, got = jnp.shape(z[site]), out[site].shape
            if got != want:
                raise ValueError(
                    f"`{name}` returned shape {got} at site '{site}'; expected {want}, "
                    "the site's unconstrained shape."
                )
    check_score_output(fn, z, name, *extra_args)


def check_finite_start(potential, score, vectorized: bool) -> None:
    """Refuse a start where the potential or score is non-finite (skipped under tracing,
    e.g. ``chain_method="parallel"``, where nothing is concrete)."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((potential, score))):
        return
    potential = np.atleast_1d(np.asarray(potential))
    bad = np.flatnonzero(~np.isfinite(potential))
    if bad.size:
        where = f" (chains {bad.tolist()})" if vectorized else ""
        raise ValueError(
            f"the potential energy at the initial position is not finite{where}: "
            f"{potential[bad[0]]}. The initial parameters lie outside the model's support "
            "(log density -inf) or the model returns NaN there; pass other `init_params` "
            "or another `init_strategy`."
        )
    bad_sites = [
        _site_name(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(score)[0]
        if not np.all(np.isfinite(leaf))
    ]
    if bad_sites:
        raise ValueError(
            f"the score at the initial position is not finite at {bad_sites}; check "
            "`score_fn` (or the model's gradient) there."
        )


def _site_name(path) -> str:
    if len(path) == 1 and isinstance(path[0], jax.tree_util.DictKey):
        return str(path[0].key)
    return jax.tree_util.keystr(path) or "the position"
