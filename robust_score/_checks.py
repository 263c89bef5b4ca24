"""Argument checks shared by every public constructor.

Checks run at construction / ``init`` time, outside the compiled program, and raise with a
message that names the argument and what was expected. Values that are tracers (the
caller is inside ``jit``/``vmap``) are checked for shape and dtype only.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_positive_scalar",
    "check_finite_tree",
    "check_score_output",
    "is_concrete",
]


def is_concrete(tree) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_positive_scalar(value, name: str) -> None:
    """``value`` must be a finite, strictly positive scalar (checked when concrete)."""
    if isinstance(value, jax.core.Tracer):
        if jnp.ndim(value) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {jnp.shape(value)}.")
        return
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a positive finite number, got {value!r}.") from err
    if array.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar, got an array of shape {array.shape}.")
    if not np.isfinite(array) or array <= 0:
        raise ValueError(f"`{name}` must be a positive finite number, got {float(array)!r}.")


def check_finite_tree(tree, name: str) -> None:
    """Every leaf of ``tree`` must be a floating array with finite values (when concrete)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` is empty: expected an array or a pytree of arrays.")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise TypeError(
                f"`{name}` must hold floating-point arrays, got dtype {jnp.result_type(leaf)}."
            )
    if is_concrete(tree):
        bad = sum(int(np.size(leaf) - np.isfinite(np.asarray(leaf)).sum()) for leaf in leaves)
        if bad:
            raise ValueError(f"`{name}` has {bad} non-finite value(s) (NaN or inf).")


def check_score_output(score_fn: Callable, position, name: str = "score_fn", *extra_args) -> None:
    """``score_fn(position, *extra_args)`` must return the structure, shapes and dtypes of
    ``position`` (checked abstractly with ``jax.eval_shape``: nothing is computed)."""
    try:
        out = jax.eval_shape(score_fn, position, *extra_args)
    except Exception as err:  # surface the user's error with the argument named
        raise TypeError(
            f"`{name}` could not be evaluated at the initial position: {type(err).__name__}: {err}"
        ) from err
    expected = jax.eval_shape(lambda p: p, position)
    if jax.tree.structure(out) != jax.tree.structure(expected):
        raise ValueError(
            f"`{name}` must return a pytree with the structure of the position "
            f"{jax.tree.structure(expected)}, got {jax.tree.structure(out)}."
        )
    for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(expected), strict=True):
        if got.shape != want.shape:
            raise ValueError(
                f"`{name}` must return arrays shaped like the position: expected shape "
                f"{want.shape}, got {got.shape}."
            )
        if got.dtype != want.dtype:
            raise TypeError(
                f"`{name}` must return the position's dtype: expected {want.dtype}, "
                f"got {got.dtype}. (Cast inside the score, or enable/disable jax_enable_x64 "
                "consistently.)"
            )
