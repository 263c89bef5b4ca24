"""Every argument check of the package, in one place.

Checks run when users build things (a settings object, a sampler, a report), outside the
compiled program, and raise with a message that names the argument and what was expected.
Kernels trust what was checked here. Values that are tracers (the caller is inside
``jit``/``vmap``) are checked for shape and dtype only.
"""

import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_callable",
    "check_chain_axis",
    "check_choice",
    "check_continuous",
    "check_count",
    "check_data_matrix",
    "check_event_shape",
    "check_finite_start",
    "check_finite_tree",
    "check_float_dtype",
    "check_interval",
    "check_fraction",
    "check_key",
    "check_labels",
    "check_model_arguments",
    "check_model_or_potential",
    "check_positive_scalar",
    "check_positive_number",
    "check_position_dtype",
    "check_sampler_or_kernel",
    "check_sampling_algorithm",
    "check_scalar_output",
    "check_schedule",
    "check_score_output",
    "check_site_fn",
    "check_time",
    "check_time_range",
    "check_time_score_output",
    "check_widths",
    "default_float_dtype",
    "explain_failed_init",
    "is_concrete",
]


def default_float_dtype():
    """JAX's default float: float64 under ``jax_enable_x64``, else float32."""
    return jnp.zeros(()).dtype


def is_concrete(tree) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_callable(value, name: str, call: str | None = None) -> None:
    """``value`` must be callable; ``call`` shows how it will be called, for the message."""
    if not callable(value):
        how = f" as {call}" if call else ""
        raise TypeError(f"`{name}` must be callable{how}, got {type(value).__name__}.")


def check_count(value, name: str, minimum: int = 1) -> None:
    """``value`` must be an integer (not a bool) of at least ``minimum``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def check_sampling_algorithm(value, name: str = "algorithm") -> None:
    """``value`` must be a ``blackjax.SamplingAlgorithm`` (anything with ``init`` and ``step``)."""
    if not (hasattr(value, "init") and hasattr(value, "step")):
        raise TypeError(
            f"`{name}` must be a blackjax.SamplingAlgorithm with `init` and `step`, "
            f"got {type(value).__name__}."
        )


def check_sampler_or_kernel(value, name: str = "sampler") -> str:
    """What ``value`` is, for code that runs either kind of sampler: ``"numpyro mcmc"`` (a
    ``numpyro.infer.MCMC``), ``"numpyro kernel"`` (a ``numpyro.infer.mcmc.MCMCKernel``) or
    ``"blackjax"`` (anything with ``init`` and ``step``); a ``TypeError`` otherwise."""
    from numpyro.infer.mcmc import MCMCKernel

    if hasattr(value, "get_samples") and hasattr(value, "sampler") and hasattr(value, "run"):
        return "numpyro mcmc"
    if isinstance(value, MCMCKernel):
        return "numpyro kernel"
    if hasattr(value, "init") and hasattr(value, "step"):
        return "blackjax"
    raise TypeError(
        f"`{name}` must be a blackjax.SamplingAlgorithm with `init` and `step` (for rs.run "
        "draws), a numpyro MCMCKernel (NUTS, HMC, rs.numpyro.ScoreLangevin, ...) or the "
        f"numpyro MCMC of the run; got {type(value).__name__}."
    )


def check_interval(
    low, high, names: tuple[str, str], *, low_may_be_zero=False, may_be_equal=False
) -> None:
    """``0 < low < high`` (or ``0 <= low``, ``low <= high`` as allowed), ``low`` finite.
    ``names`` name the two bounds; a bound that is a constant (``"1"``, ``"inf"``) is named by
    its value and not repeated in the message."""
    low_name, high_name = names
    low_ok = low >= 0 if low_may_be_zero else low > 0
    order_ok = low <= high if may_be_equal else low < high
    if not (math.isfinite(low) and not math.isnan(high) and low_ok and order_ok):
        low_sign, high_sign = "<=" if low_may_be_zero else "<", "<=" if may_be_equal else "<"
        got = f"{low_name}={low}"
        if high_name.isidentifier() and high_name != "inf":
            got += f", {high_name}={high}"
        raise ValueError(
            f"`{low_name}` must satisfy 0 {low_sign} {low_name} {high_sign} {high_name}, got {got}."
        )


def check_choice(value, name: str, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")


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


def check_fraction(value, name: str) -> None:
    """``value`` must be a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {value!r}.")
    if not 0 < value < 1:
        raise ValueError(f"`{name}` must lie in (0, 1), got {value}.")


def check_schedule(schedule, name: str = "schedule") -> None:
    from robust_score.schedules import Schedule  # schedules use these checks too

    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"`{name}` must be a robust_score.schedules.Schedule (e.g. rs.schedules.vp()), "
            f"got {type(schedule).__name__}."
        )


def check_time(schedule, t, name: str = "t") -> None:
    """``t`` must be a Python number in the schedule's range ``[t_min, T]``."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise TypeError(f"`{name}` must be a Python number, got {type(t).__name__}.")
    if not (schedule.t_min <= t <= schedule.T):
        raise ValueError(
            f"`{name}` must lie in the schedule's range [t_min, T] = "
            f"[{schedule.t_min}, {schedule.T}], got {t}."
        )


def check_float_dtype(dtype, name: str = "dtype"):
    """``dtype`` as a floating NumPy dtype (``None``: :func:`default_float_dtype`)."""
    dtype = default_float_dtype() if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`{name}` must be a floating dtype, got {dtype}.")
    return dtype


def check_key(rng_key, name: str = "rng_key"):
    """A single JAX PRNG key, new-style (``jax.random.key``) or raw (``PRNGKey``)."""
    key = jnp.asarray(rng_key) if not isinstance(rng_key, jax.Array) else rng_key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"`{name}` must be a single key, got shape {key.shape}.")
        return key
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise ValueError(
            f"`{name}` must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), "
            f"got an array of shape {key.shape} and dtype {key.dtype}."
        )
    return key


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


def check_widths(value, name: str) -> tuple[int, ...]:
    """``value`` must be a non-empty sequence of positive integers (e.g. layer widths);
    returned as a tuple of Python ints."""
    try:
        widths = tuple(value)
    except TypeError:
        widths = None
    if not widths or not all(
        isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive integers, e.g. (256, 256, 256); "
            f"got {value!r}."
        )
    return tuple(int(w) for w in widths)


def check_time_range(schedule, t_range, name: str = "t_range") -> tuple[float, float]:
    """``t_range`` must be a pair ``(t_low, t_high)`` with ``t_min <= t_low < t_high <= T``
    of the schedule; ``None`` means the whole ``(t_min, T)``. Returned as Python floats."""
    if t_range is None:
        return float(schedule.t_min), float(schedule.T)
    try:
        low, high = (float(v) for v in t_range)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be a pair (t_low, t_high), got {t_range!r}.") from err
    if not (schedule.t_min <= low < high <= schedule.T):
        raise ValueError(
            f"`{name}` must satisfy t_min <= t_low < t_high <= T with the schedule's "
            f"[t_min, T] = [{schedule.t_min}, {schedule.T}]; got {t_range!r}."
        )
    return low, high


def check_time_score_output(time_score_fn: Callable, position, schedule) -> None:
    """At a sampler's ``init``: a finite template position, and a time score shaped like it at
    ``t = t_min`` (a scalar array of the position's dtype)."""
    check_finite_tree(position, "position")
    t_min = jnp.asarray(schedule.t_min, jnp.result_type(jax.tree.leaves(position)[0]))
    check_score_output(time_score_fn, position, "time_score_fn", t_min)


# -- first-hour checks: step sizes, position dtypes and ranks, run labels -------------------
def check_positive_number(value, name: str) -> None:
    """:func:`check_positive_scalar`, refusing first what NumPy would quietly convert: a
    string (``"0.1"``), a bool or ``None``."""
    if value is None or isinstance(value, str | bytes | bool):
        raise TypeError(
            f"`{name}` must be a positive number (e.g. 0.1), got {type(value).__name__} {value!r}."
        )
    check_positive_scalar(value, name)


def check_position_dtype(tree, name: str = "initial_positions") -> None:
    """Every leaf of ``tree`` must have JAX's default float dtype: float32, or float64 under
    ``jax_enable_x64``. Integers, half precision (float16, bfloat16) and the other float are
    refused with the fix named; nothing is cast (a cast would change the user's precision
    behind their back)."""
    default = default_float_dtype()
    for leaf in jax.tree.leaves(tree):
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


# -- NumPyro kernels ------------------------------------------------------------------------
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
