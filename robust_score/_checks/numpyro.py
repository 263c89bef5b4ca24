"""Checks of what the NumPyro kernels are given: model or potential, model arguments, latent
sites, site-keyed functions and the starting point."""

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from robust_score._checks.arrays import check_score_output

__all__ = [
    "check_continuous",
    "check_dense_mass",
    "check_inverse_mass_blocks",
    "check_mass_structure",
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


def check_dense_mass(dense_mass) -> None:
    """NumPyro's forms: ``True``/``False``, ``None`` (our size rule), or a list of tuples of
    site names (dense blocks; the other sites share one diagonal block)."""
    if dense_mass is None or isinstance(dense_mass, bool):
        return
    if isinstance(dense_mass, list) and all(
        isinstance(block, tuple) and block and all(isinstance(n, str) for n in block)
        for block in dense_mass
    ):
        return
    raise TypeError(
        "`dense_mass` must be True (dense), False (diagonal), None (dense up to 50 "
        "dimensions, diagonal above) or, for a model, a list of tuples of site names "
        f"(dense blocks, e.g. [('w',), ('x', 'y')]), got {dense_mass!r}."
    )


def check_inverse_mass_blocks(inverse_mass_matrix, check_block: Callable):
    """An array, or NumPyro's dict of blocks keyed by tuples of site names, each block
    checked by ``check_block(value, name)``; returned with checked arrays."""
    if not isinstance(inverse_mass_matrix, Mapping):
        return check_block(inverse_mass_matrix, "inverse_mass_matrix")
    checked = {}
    for sites, block in inverse_mass_matrix.items():
        if not (isinstance(sites, tuple) and sites and all(isinstance(n, str) for n in sites)):
            raise TypeError(
                "`inverse_mass_matrix` as a dict must be keyed by tuples of site names (e.g. "
                f"{{('x',): jnp.ones(3)}}), got the key {sites!r}."
            )
        checked[sites] = check_block(block, f"inverse_mass_matrix[{sites!r}]")
    return checked


def check_mass_structure(dense_mass, inverse_mass_matrix, z) -> None:
    """The site names of ``dense_mass`` blocks and of a dict ``inverse_mass_matrix`` must be
    latent sites of the model, each site in at most one block, each block the size of its
    sites; an array mass over a model must cover all of its sites."""
    sizes = {name: int(np.size(value)) for name, value in z.items()}
    blocks = list(dense_mass) if isinstance(dense_mass, list) else []
    if isinstance(inverse_mass_matrix, Mapping):
        blocks += [sites for sites in inverse_mass_matrix if sites not in blocks]
    seen = set()
    for sites in blocks:
        unknown = sorted(set(sites) - set(sizes))
        if unknown:
            raise ValueError(
                f"the mass block {sites!r} names {unknown}, which are not latent sites of the "
                f"model (its latent sites: {sorted(sizes)})."
            )
        if seen & set(sites):
            raise ValueError(
                f"the sites {sorted(seen & set(sites))} are in more than one mass block "
                "(`dense_mass` and the keys of `inverse_mass_matrix` must not overlap)."
            )
        seen |= set(sites)
    if not isinstance(inverse_mass_matrix, Mapping):
        return
    for sites, block in inverse_mass_matrix.items():
        size = sum(sizes[name] for name in sites)
        if jnp.shape(block)[0] != size:
            raise ValueError(
                f"`inverse_mass_matrix[{sites!r}]` has shape {jnp.shape(block)}, but the sites "
                f"{list(sites)} have {size} unconstrained values: expected ({size},) or "
                f"({size}, {size})."
            )
