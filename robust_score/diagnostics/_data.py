"""Read draws out of what users have: a DataTree from ``rs.run`` / ``az.from_numpyro``, a
NumPyro ``MCMC``, or plain arrays."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

__all__ = ["Draws", "as_datatree", "posterior_draws", "as_sample_matrix"]


class Draws(NamedTuple):
    """Posterior draws flattened to ``(chain, draw, dim)`` plus the way back to positions."""

    flat: np.ndarray
    unravel: callable  # flat (dim,) vector -> position pytree, as the sampler/score take it
    var_names: tuple[str, ...]
    slices: dict  # variable name -> its slice of the flat vector

    @property
    def num_chains(self) -> int:
        return self.flat.shape[0]

    @property
    def dim(self) -> int:
        return self.flat.shape[-1]


def as_datatree(data) -> xr.DataTree:
    """A DataTree with a ``posterior`` group, from a DataTree or a NumPyro ``MCMC``."""
    if _is_numpyro_mcmc(data):
        from arviz_base import from_numpyro

        data = from_numpyro(data)
    if not isinstance(data, xr.DataTree):
        raise TypeError(
            "`data` must be an xarray.DataTree (from rs.run or az.from_numpyro) or a "
            f"numpyro.infer.MCMC, got {type(data).__name__}."
        )
    if "posterior" not in data.children:
        raise ValueError(
            "`data` has no `posterior` group: expected the output of rs.run or "
            f"az.from_numpyro; it has groups {sorted(data.children)}."
        )
    return data


def posterior_draws(tree: xr.DataTree) -> Draws:
    """Flatten every posterior variable per draw; a lone ``x`` stays an array position (as
    ``rs.run`` made it), several variables become a dict position (as NumPyro sites)."""
    posterior = tree["posterior"].to_dataset()
    names = tuple(str(name) for name in posterior.data_vars)
    if not names:
        raise ValueError("`data.posterior` holds no variables.")
    for name in names:
        if posterior[name].dims[:2] != ("chain", "draw"):
            raise ValueError(
                f"posterior variable `{name}` must have leading dims (chain, draw), "
                f"got {posterior[name].dims}."
            )
    arrays = {name: np.asarray(posterior[name].values) for name in names}
    num_chains, num_draws = arrays[names[0]].shape[:2]
    ordered = names if names == ("x",) else tuple(sorted(names))
    slices, offset = {}, 0
    for name in ordered:
        size = int(np.prod(arrays[name].shape[2:], dtype=int))
        slices[name] = slice(offset, offset + size)
        offset += size
    if names == ("x",):
        template = jnp.asarray(arrays["x"][0, 0])
        flat = arrays["x"].reshape(num_chains, num_draws, -1)
    else:
        template = {name: jnp.asarray(arrays[name][0, 0]) for name in names}
        # ravel_pytree orders dict leaves by sorted key: flatten the same way
        flat = np.concatenate(
            [arrays[name].reshape(num_chains, num_draws, -1) for name in sorted(names)], axis=-1
        )
    _, unravel = ravel_pytree(template)
    return Draws(flat.astype(np.float64), unravel, names, slices)


def as_sample_matrix(samples, name: str) -> np.ndarray:
    """``samples`` as ``(n, dim)``: a DataTree's posterior (chains pooled), an array
    ``(n, ...)`` / ``(chain, draw, ...)`` when ``dim`` is unknown, or a pytree of those."""
    if isinstance(samples, xr.DataTree) or _is_numpyro_mcmc(samples):
        draws = posterior_draws(as_datatree(samples))
        return draws.flat.reshape(-1, draws.dim)
    leaves = jax.tree.leaves(samples)
    if not leaves:
        raise ValueError(f"`{name}` is empty.")
    if len(leaves) == 1:
        array = np.asarray(leaves[0], dtype=np.float64)
        if array.ndim < 2 or array.shape[0] == 0:
            raise ValueError(
                f"`{name}` must be shaped (num_points, dim) with at least one point, got "
                f"shape {array.shape}."
            )
        return array.reshape(array.shape[0], -1)
    sizes = {np.shape(leaf)[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(f"every leaf of `{name}` must share the leading axis.")
    return np.concatenate(
        [np.asarray(leaf, np.float64).reshape(np.shape(leaf)[0], -1) for leaf in leaves], axis=1
    )


def _is_numpyro_mcmc(data) -> bool:
    return type(data).__name__ == "MCMC" and hasattr(data, "get_samples")
