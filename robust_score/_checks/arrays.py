"""Checks of arrays and pytrees: positions, chain axes, data matrices, the output of user
functions (checked abstractly with ``jax.eval_shape``), run labels."""

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from robust_score._checks.values import default_float_dtype

__all__ = [
    "check_chain_axis",
    "check_data_matrix",
    "check_event_shape",
    "check_finite_tree",
    "check_inverse_mass_matrix",
    "check_labels",
    "check_mass_matches_position",
    "check_position_dtype",
    "check_scalar_output",
    "check_score_output",
    "check_time_score_output",
    "explain_failed_init",
    "is_concrete",
]


def is_concrete(tree) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_chain_axis(tree, name: str) -> int:
    """Every leaf of ``tree`` must share a leading chain axis; returns its length."""
    shapes = [jnp.shape(leaf) for leaf in jax.tree.leaves(tree)]
    if not shapes or any(len(shape) == 0 for shape in shapes):
        raise ValueError(
            f"`{name}` must have a leading chain axis (shape (num_chains, ...)); "
            "got a scalar leaf. For one chain, add an axis: positions[None]."
        )
    counts = {shape[0] for shape in shapes}
    if len(counts) != 1:
        raise ValueError(
            f"every leaf of `{name}` must share the leading chain axis, got "
            f"leading sizes {sorted(counts)}."
        )
    (num_chains,) = counts
    if num_chains < 1:
        raise ValueError(f"`{name}` has zero chains.")
    return num_chains


def check_event_shape(event_shape, name: str = "event_shape") -> tuple[int, ...]:
    """An int or a non-empty tuple of positive ints, returned as a tuple."""
    shape = (event_shape,) if isinstance(event_shape, int) else tuple(event_shape)
    if not shape or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(
            f"`{name}` must be a non-empty tuple of positive integers, got {event_shape!r}."
        )
    return shape


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


def check_data_matrix(data, name: str = "data") -> jax.Array:
    """Concrete, finite, real points shaped ``(num_points, *event_shape)``, returned as an
    array of the default float dtype."""
    if isinstance(data, jax.core.Tracer):
        raise TypeError(f"`{name}` must be a concrete array, not a traced value.")
    try:
        array = np.asarray(data)
    except Exception as err:
        raise TypeError(
            f"`{name}` must be an array shaped (n, dim), got {type(data).__name__}."
        ) from err
    if array.ndim < 2:
        raise ValueError(
            f"`{name}` must be shaped (num_points, *event_shape), e.g. (n, dim); got shape "
            f"{array.shape}."
        )
    if array.shape[0] == 0 or array.size == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}): need at least one point.")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(f"`{name}` has {bad} non-finite value(s) (NaN or inf).")
    return jnp.asarray(array, default_float_dtype())


def check_scalar_output(fn: Callable, position, name: str) -> None:
    """``fn(position)`` must return a scalar (checked abstractly)."""
    shape = jax.eval_shape(fn, position).shape
    if shape != ():
        raise ValueError(f"`{name}` must return a scalar, got shape {shape}.")


_ONE_POSITION = (
    "A score is called on one position at a time, never on a batch: the samplers vmap it over "
    "the chains, whose positions are `initial_positions[c]` (so `initial_positions` is shaped "
    "(chains, *position shape)). A network written for batches takes one position as "
    "`lambda x: net(x[None])[0]`."
)


def check_score_output(score_fn: Callable, position, name: str = "score_fn", *extra_args) -> None:
    """``score_fn(position, *extra_args)`` must return the structure, shapes and dtypes of
    ``position`` (checked abstractly with ``jax.eval_shape``: nothing is computed)."""
    try:
        out = jax.eval_shape(score_fn, position, *extra_args)
    except Exception as err:  # surface the user's error with the argument named
        shapes = jax.tree.map(jnp.shape, position)
        raise TypeError(
            f"`{name}` could not be evaluated at one position (shaped {shapes}): "
            f"{type(err).__name__}: {err} {_ONE_POSITION}"
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
                f"{want.shape}, got {got.shape}. {_ONE_POSITION}"
            )
        if got.dtype != want.dtype:
            raise TypeError(
                f"`{name}` must return the position's dtype: expected {want.dtype}, "
                f"got {got.dtype}. (Cast inside the score, or enable/disable jax_enable_x64 "
                "consistently.)"
            )


def check_time_score_output(time_score_fn: Callable, position, schedule) -> None:
    """At a sampler's ``init``: a finite template position, and a time score shaped like it at
    ``t = t_min`` (a scalar array of the position's dtype)."""
    check_finite_tree(position, "position")
    t_min = jnp.asarray(schedule.t_min, jnp.result_type(jax.tree.leaves(position)[0]))
    check_score_output(time_score_fn, position, "time_score_fn", t_min)


def check_position_dtype(tree, name: str = "initial_positions") -> None:
    """Every leaf of ``tree`` must have JAX's default float dtype: float32, or float64 under
    ``jax_enable_x64``. Integers, half precision (float16, bfloat16) and a JAX array of the
    other float are refused with the fix named. A NumPy float64 array with x64 off is taken
    as JAX takes it (``jnp.asarray`` makes it float32), so NumPy's default float works."""
    default = default_float_dtype()
    for leaf in jax.tree.leaves(tree):
        own = getattr(leaf, "dtype", None)  # errors name the leaf's own dtype, not JAX's view
        if own is not None and not jnp.issubdtype(own, jnp.floating):
            raise TypeError(
                f"`{name}` must hold floating-point arrays ({default}, JAX's default float), "
                f"got dtype {own}: pass `positions.astype(jnp.{default})`."
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"`{name}` must hold floating-point arrays ({default}, JAX's default float), "
                f"got dtype {dtype}: pass `positions.astype(jnp.{default})`."
            )
        if dtype.itemsize < 4:
            raise TypeError(
                f"`{name}` has dtype {dtype}: half precision (float16, bfloat16) is not "
                f"supported; float32 and float64 are. Pass `positions.astype(jnp.{default})`."
            )
        if dtype != default:
            x64 = "on" if default == jnp.float64 else "off"
            other = "off to sample in float32" if x64 == "on" else "on to sample in float64"
            raise TypeError(
                f"`{name}` has dtype {dtype}, but JAX's default float is {default} "
                f"(jax_enable_x64 is {x64}) and the samplers compute in it. Pass "
                f"`positions.astype(jnp.{default})`, or turn jax_enable_x64 {other}."
            )


def explain_failed_init(error: Exception, positions, name: str = "initial_positions") -> None:
    """After a sampler's ``init`` failed on each chain's slice of ``positions``: when every
    leaf is 1-D (each chain's position a scalar), the likely cause is a forgotten chain axis;
    raise a ``ValueError`` that says how to add it. Otherwise return (re-raise ``error``)."""
    shapes = [jnp.shape(leaf) for leaf in jax.tree.leaves(positions)]
    if not shapes or any(len(shape) != 1 for shape in shapes):
        return
    shape = shapes[0]
    raise ValueError(
        f"`{name}` has shape {shape}, which is read as {shape[0]} chains whose positions are "
        f"scalars, and the sampler's init failed on a scalar position "
        f"({type(error).__name__}: {error}). If each chain's position is a vector, add the "
        f"chain axis: `positions[None]` for one chain (shape (1, {shape[0]})), or stack one "
        f"row per chain (shape (num_chains, {shape[0]}))."
    ) from error


def check_labels(var_names, dims, coords, event_shapes: dict, var_name_count: int):
    """``rs.run``'s labels, as ``arviz_base.from_dict`` takes them. ``var_names``: ``None``,
    a string (a single-array position) or one string per array leaf (``var_name_count``);
    returned as a list or ``None``. ``dims``: ``{variable: [dim names of its event axes]}``
    for the variables of ``event_shapes`` (``{variable: event shape}``, known once
    ``var_names`` is applied: call again with the final names). ``coords``: ``{dim name:
    values}`` whose lengths match the axes named so."""
    if var_names is not None:
        names = [var_names] if isinstance(var_names, str) else var_names
        if not isinstance(names, Sequence) or not all(
            isinstance(n, str) and n.isidentifier() for n in names
        ):
            raise TypeError(
                "`var_names` must be a variable name (a str such as 'theta') or a list of "
                f"them, one per array of the position; got {var_names!r}."
            )
        if len(names) != var_name_count or len(set(names)) != len(names):
            raise ValueError(
                f"`var_names` must give {var_name_count} distinct name(s), one per array of "
                f"the position; got {list(names)}."
            )
        var_names = list(names)
    if not event_shapes:
        return var_names
    if dims is not None:
        if not isinstance(dims, Mapping):
            raise TypeError(
                "`dims` must be a dict {variable: [dim names]}, e.g. {'x': ['param']}; got "
                f"{type(dims).__name__}."
            )
        for var, names in dims.items():
            if var not in event_shapes:
                raise ValueError(
                    f"`dims` names the variable {var!r}, but the posterior has "
                    f"{sorted(event_shapes)} (see `var_names`)."
                )
            shape = event_shapes[var]
            if isinstance(names, str) or len(names) != len(shape):
                raise ValueError(
                    f"`dims[{var!r}]` must name each of the {len(shape)} axes of one draw of "
                    f"{var!r} (shape {shape}, after chain and draw); got {names!r}."
                )
    if coords is not None:
        if not isinstance(coords, Mapping):
            raise TypeError(
                f"`coords` must be a dict {{dim name: values}}, got {type(coords).__name__}."
            )
        sizes = {}
        for var, names in (dims or {}).items():
            sizes.update(zip(names, event_shapes[var], strict=True))
        for dim, values in coords.items():
            if dim in ("chain", "draw"):
                raise ValueError(
                    f"`coords` must not set {dim!r}: rs.run numbers chains and draws itself."
                )
            if dim in sizes and len(values) != sizes[dim]:
                raise ValueError(
                    f"`coords[{dim!r}]` has {len(values)} values, but the axis {dim!r} has "
                    f"length {sizes[dim]}."
                )
    return var_names


def check_inverse_mass_matrix(value, name: str = "inverse_mass_matrix") -> jax.Array:
    """An inverse mass matrix over the raveled position: a 1-D vector of positive variances
    (diagonal) or a 2-D symmetric positive-definite matrix (dense), finite, returned as an
    array of JAX's default float dtype. Traced values are checked for their rank only."""
    if isinstance(value, jax.core.Tracer):
        if value.ndim not in (1, 2) or (value.ndim == 2 and value.shape[0] != value.shape[1]):
            raise ValueError(
                f"`{name}` must be a 1-D vector (diagonal) or a square 2-D matrix (dense), "
                f"got shape {value.shape}."
            )
        return value
    try:
        array = np.asarray(value)
    except Exception as err:
        raise TypeError(
            f"`{name}` must be an array: a 1-D vector of variances (diagonal) or a 2-D "
            f"matrix (dense), got {type(value).__name__}."
        ) from err
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[0] != array.shape[1]):
        raise ValueError(
            f"`{name}` must be a 1-D vector (diagonal) or a square 2-D matrix (dense) over the "
            f"raveled position, got shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}).")
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(f"`{name}` has {bad} non-finite value(s) (NaN or inf).")
    array = array.astype(np.float64)
    if array.ndim == 1:
        if np.any(array <= 0):
            raise ValueError(
                f"`{name}` (diagonal) must hold positive variances, got minimum {array.min():.3g}."
            )
    else:
        scale = np.abs(array).max()
        if np.abs(array - array.T).max() > 1e-5 * scale:
            raise ValueError(f"`{name}` (dense) must be symmetric.")
        smallest = np.linalg.eigvalsh((array + array.T) / 2)[0]
        if not smallest > 1e-7 * scale:
            raise ValueError(
                f"`{name}` (dense) must be positive definite, got smallest eigenvalue "
                f"{smallest:.3g} (largest entry {scale:.3g})."
            )
    return jnp.asarray(array, default_float_dtype())


def check_mass_matches_position(inverse_mass_matrix, position, name="inverse_mass_matrix"):
    """The inverse mass matrix acts on the raveled position (as BlackJAX's metrics do): its
    side must equal the position's total number of entries."""
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(position))
    side = jnp.shape(inverse_mass_matrix)[0]
    if side != size:
        raise ValueError(
            f"`{name}` has shape {jnp.shape(inverse_mass_matrix)}, but the position has "
            f"{size} entries (raveled over its leaves, dict keys in sorted order): expected "
            f"shape ({size},) or ({size}, {size})."
        )
