"""Checks of single values: numbers, counts, choices, keys, callables, dtypes and times (the
check that a value is a schedule is :func:`robust_score.schedules.check_schedule`, beside the
class, since the schedules use these checks)."""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_callable",
    "check_choice",
    "check_count",
    "check_flag",
    "check_float_dtype",
    "check_fraction",
    "check_interval",
    "check_key",
    "check_positive_scalar",
    "check_sampler_or_kernel",
    "check_sampling_algorithm",
    "check_time",
    "check_time_range",
    "check_widths",
    "default_float_dtype",
]


def default_float_dtype():
    """JAX's default float: float64 under ``jax_enable_x64``, else float32."""
    return jnp.zeros(()).dtype


def check_callable(value, name: str, call: str | None = None) -> None:
    """``value`` must be callable; ``call`` shows how it will be called, for the message."""
    if not callable(value):
        how = f" as {call}" if call else ""
        raise TypeError(f"`{name}` must be callable{how}, got {type(value).__name__}.")


def check_count(value, name: str, minimum: int = 1) -> None:
    """``value`` must be an integer (not a bool) of at least ``minimum``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def check_flag(value, name: str) -> None:
    """``value`` must be ``True`` or ``False`` (not a truthy stand-in such as 1 or "yes")."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")


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
    if value is None or isinstance(value, str | bytes | bool):
        # NumPy would quietly convert these
        raise TypeError(
            f"`{name}` must be a positive number (e.g. 0.1), got {type(value).__name__} {value!r}."
        )
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
    """``value`` must be a number strictly between 0 and 1 (a traced scalar, e.g. an argument
    of a jitted function that builds a kernel, is checked for its shape only)."""
    if isinstance(value, jax.core.Tracer):
        if jnp.ndim(value) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {jnp.shape(value)}.")
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {value!r}.")
    if not 0 < value < 1:
        raise ValueError(f"`{name}` must lie in (0, 1), got {value}.")


def check_time(schedule, t, name: str = "t") -> None:
    """``t`` must be a Python number in the schedule's range ``[t_min, T]``."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise TypeError(f"`{name}` must be a Python number, got {type(t).__name__}.")
    if not (schedule.t_min <= t <= schedule.T):
        raise ValueError(
            f"`{name}` must lie in the schedule's range [t_min, T] = "
            f"[{schedule.t_min}, {schedule.T}], got {t}."
        )


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
    import numpyro  # noqa: F401  (whole, before a submodule: see robust_score/__init__.py)
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
