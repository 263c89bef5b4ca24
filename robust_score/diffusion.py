"""Draw a batch of independent samples from noise with one call.

.. code::

    samples = rs.diffusion.sample(key, time_score_fn, rs.schedules.vp(), 1000, (dim,),
                                  method="ode", num_steps=18)

This is the independence kernel of :func:`robust_score.reverse_diffusion` (or of
:func:`robust_score.annealed_langevin`) stepped once per sample under ``vmap``: the same step
function, not a second integrator. Calls with the same ``time_score_fn`` object, schedule,
settings and shapes reuse one compiled program.
"""

from collections.abc import Callable
from functools import lru_cache, partial

import jax
import jax.numpy as jnp

from robust_score.kernels import annealed_langevin, reverse_diffusion
from robust_score.kernels._annealing import check_count, check_schedule, check_time_score
from robust_score.schedules import Schedule

__all__ = ["METHODS", "sample"]

METHODS = (*reverse_diffusion.METHODS, "annealed_langevin")


def sample(
    rng_key,
    time_score_fn: Callable,
    schedule: Schedule,
    num_samples: int,
    event_shape: tuple[int, ...],
    *,
    method: str = "sde",
    num_steps: int = 100,
    snr: float | None = None,
    corrector_steps: int = 1,
    num_levels: int = 100,
    steps_per_level: int = 10,
    step_size: float | None = None,
    denoise: bool = True,
    spacing: str | None = None,
    dtype=None,
    return_info: bool = False,
):
    """``num_samples`` independent draws shaped ``(num_samples, *event_shape)``.

    ``method`` is ``"sde"``, ``"ode"``, ``"pc"`` (reverse diffusion with ``num_steps`` moves;
    ``snr`` defaults to 0.16 and sets the ``"pc"`` corrector) or ``"annealed_langevin"``
    (``num_levels`` x ``steps_per_level`` Langevin moves with the NCSN rule if ``step_size`` is
    given, else the ``snr`` rule). ``dtype`` defaults to JAX's default float. With
    ``return_info=True`` also returns the per-sample ``Info`` (``is_divergent``,
    ``num_score_evals``).
    """
    check_time_score(time_score_fn)
    check_schedule(schedule)
    check_count(num_samples, "num_samples")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    event_shape = _as_shape(event_shape)
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}.")
    if method == "annealed_langevin":
        if step_size is None and snr is None:
            snr = 0.16
        settings = (num_levels, steps_per_level, step_size, snr, denoise, spacing)
    else:
        settings = (num_steps, 0.16 if snr is None else snr, corrector_steps, denoise, spacing)
    try:
        hash(time_score_fn)
        algorithm = _algorithm(time_score_fn, schedule, method, settings)
        sampler = _sample_batch
    except TypeError:  # an unhashable score still runs, compiled afresh per call
        algorithm = _algorithm.__wrapped__(time_score_fn, schedule, method, settings)
        sampler = jax.jit(_sample_batch.__wrapped__, static_argnums=(0, 1))
    state = algorithm.init(jnp.zeros(event_shape, dtype))  # checks the score's signature
    samples, info = sampler(algorithm, num_samples, rng_key, state)
    return (samples, info) if return_info else samples


@lru_cache(maxsize=32)
def _algorithm(time_score_fn, schedule, method, settings):
    # cached so that a repeated call hands jit the same (hashable) algorithm object
    if method == "annealed_langevin":
        num_levels, steps_per_level, step_size, snr, denoise, spacing = settings
        return annealed_langevin.as_top_level_api(
            time_score_fn,
            schedule,
            num_levels,
            steps_per_level,
            step_size,
            snr,
            denoise=denoise,
            spacing=spacing,
        )
    num_steps, snr, corrector_steps, denoise, spacing = settings
    return reverse_diffusion.as_top_level_api(
        time_score_fn,
        schedule,
        num_steps,
        method,
        snr=snr,
        corrector_steps=corrector_steps,
        denoise=denoise,
        spacing=spacing,
    )


@partial(jax.jit, static_argnums=(0, 1))
def _sample_batch(algorithm, num_samples, rng_key, state):
    keys = jax.random.split(rng_key, num_samples)
    new_states, info = jax.vmap(algorithm.step, in_axes=(0, None))(keys, state)
    return new_states.position, info


def _as_shape(event_shape) -> tuple[int, ...]:
    shape = (event_shape,) if isinstance(event_shape, int) else tuple(event_shape)
    if not shape or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(
            f"`event_shape` must be a non-empty tuple of positive integers, got {event_shape!r}."
        )
    return shape
