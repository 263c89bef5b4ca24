"""Draw a batch of independent samples from noise with one call.

.. code::

    settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=18, method="ode")
    samples = rs.sample_batch(key, time_score_fn, settings, 1000, (dim,))

This is the independence kernel of :func:`robust_score.reverse_diffusion` (or of
:func:`robust_score.annealed_langevin`) stepped once per sample under ``vmap``: the same step
function, not a second integrator. Calls with the same ``time_score_fn`` object, settings and
shapes reuse one compiled program.
"""

from collections.abc import Callable
from functools import lru_cache, partial

import jax
import jax.numpy as jnp

from robust_score._checks import check_count, check_event_shape, check_float_dtype
from robust_score.kernels._annealing import AnnealingPath

__all__ = ["sample_batch"]


def sample_batch(
    rng_key,
    time_score_fn: Callable,
    settings: AnnealingPath,
    num_samples: int,
    event_shape: tuple[int, ...],
    *,
    dtype=None,
    return_info: bool = False,
):
    """``num_samples`` independent draws shaped ``(num_samples, *event_shape)``.

    ``settings`` is a :class:`robust_score.ReverseDiffusion` or a
    :class:`robust_score.AnnealedLangevin` (each draw runs one path from its ``t_start``,
    normally ``T``: from fresh noise). ``dtype`` defaults to JAX's default float. With
    ``return_info=True`` also returns the per-sample ``Info`` (``is_divergent``,
    ``num_score_evals``).
    """
    if not isinstance(settings, AnnealingPath):
        raise TypeError(
            "`settings` must be a robust_score.ReverseDiffusion or robust_score.AnnealedLangevin, "
            f"got {type(settings).__name__}."
        )
    check_count(num_samples, "num_samples")
    event_shape = check_event_shape(event_shape)
    dtype = check_float_dtype(dtype)
    try:
        hash(time_score_fn)
        algorithm = _algorithm(time_score_fn, settings)
        sampler = _sample_batch
    except TypeError:  # an unhashable score still runs, compiled afresh per call
        algorithm = settings.sampling_algorithm(time_score_fn)
        sampler = jax.jit(_sample_batch.__wrapped__, static_argnums=(0, 1))
    state = algorithm.init(jnp.zeros(event_shape, dtype))  # checks the score's signature
    samples, info = sampler(algorithm, num_samples, rng_key, state)
    return (samples, info) if return_info else samples


@lru_cache(maxsize=32)
def _algorithm(time_score_fn, settings):
    # cached so that a repeated call hands jit the same (hashable) algorithm object
    return settings.sampling_algorithm(time_score_fn)


@partial(jax.jit, static_argnums=(0, 1))
def _sample_batch(algorithm, num_samples, rng_key, state):
    keys = jax.random.split(rng_key, num_samples)
    new_states, info = jax.vmap(algorithm.step, in_axes=(0, None))(keys, state)
    return new_states.position, info
