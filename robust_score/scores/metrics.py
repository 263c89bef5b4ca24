"""How wrong is a score? The error measures the paper reasons with."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["l2_error"]


def l2_error(score: Callable, reference_score: Callable, samples, *, relative: bool = True):
    """Mean squared score error under ``samples`` (leading axis: draws).

    ``relative=True`` (default) returns ``E||s_hat - s||^2 / E||s||^2``, the paper's relative
    L2 error; ``relative=False`` returns ``E||s_hat - s||^2``. ``samples`` may be a pytree whose
    leaves share the leading draw axis.
    """
    leaves = jax.tree.leaves(samples)
    if not leaves or jnp.ndim(leaves[0]) < 1:
        raise ValueError("`samples` must have a leading axis of draws.")

    def squared(x):
        estimate = ravel_pytree(score(x))[0]
        exact = ravel_pytree(reference_score(x))[0]
        return jnp.sum((estimate - exact) ** 2), jnp.sum(exact**2)

    error, norm = jax.vmap(squared)(samples)
    return jnp.mean(error) / jnp.mean(norm) if relative else jnp.mean(error)
