"""Draw a batch of independent samples from noise with one call.

.. code::

    settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=18, method="ode")
    samples = rs.sample_batch(key, time_score_fn, settings, 1000, (dim,))

This is the independence kernel of :func:`robust_score.reverse_diffusion` (or of
:func:`robust_score.annealed_langevin`) stepped once per sample under ``vmap``: the same step
function, not a second integrator. Calls with the same ``time_score_fn`` object, settings and
shapes reuse one compiled program. With ``devices``, the draws are split over devices, of one
process or, under ``jax.distributed``, of several.
"""

from collections.abc import Callable
from functools import lru_cache, partial

import jax
import jax.numpy as jnp

from robust_score._checks import check_count, check_event_shape, check_flag, check_float_dtype
from robust_score._devices import as_mesh, constrain, gather_to_host, spans_processes
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
    devices=None,
    gather: bool = True,
):
    """``num_samples`` independent draws shaped ``(num_samples, *event_shape)``.

    ``settings`` is a :class:`robust_score.ReverseDiffusion` or a
    :class:`robust_score.AnnealedLangevin` (each draw runs one path from its ``t_start``,
    normally ``T``: from fresh noise). ``dtype`` defaults to JAX's default float. With
    ``return_info=True`` also returns the per-sample ``Info`` (``is_divergent``,
    ``num_score_evals``).

    ``devices`` (``None``, a sequence of devices or a one-axis ``jax.sharding.Mesh``) splits
    the draws over devices, ``num_samples`` a multiple of their number. Draw ``i`` keeps its
    key wherever it runs: it is bitwise the same over as many devices, in one process or
    several, and agrees with the one-device draw to rounding. Under ``jax.distributed`` the
    devices may span processes, every process making the same call: ``gather=True`` returns
    every draw on every process, ``gather=False`` the global array as computed (each process
    reads its own draws from ``.addressable_shards``).
    """
    if not isinstance(settings, AnnealingPath):
        raise TypeError(
            "`settings` must be a robust_score.ReverseDiffusion or robust_score.AnnealedLangevin, "
            f"got {type(settings).__name__}."
        )
    check_count(num_samples, "num_samples")
    event_shape = check_event_shape(event_shape)
    dtype = check_float_dtype(dtype)
    check_flag(gather, "gather")
    mesh = as_mesh(devices, num_samples, counted="`num_samples`")
    try:
        hash(time_score_fn)
        algorithm = _algorithm(time_score_fn, settings)
        sampler = _sample_batch
    except TypeError:  # an unhashable score still runs, compiled afresh per call
        algorithm = settings.sampling_algorithm(time_score_fn)
        sampler = jax.jit(_sample_batch.__wrapped__, static_argnums=(0, 1, 2))
    state = algorithm.init(jnp.zeros(event_shape, dtype))  # checks the score's signature
    samples, info = sampler(algorithm, num_samples, mesh, rng_key, state)
    if gather and spans_processes(samples):
        samples, info = jax.tree.map(jnp.asarray, gather_to_host((samples, info)))
    return (samples, info) if return_info else samples


@lru_cache(maxsize=32)
def _algorithm(time_score_fn, settings):
    # cached so that a repeated call hands jit the same (hashable) algorithm object
    return settings.sampling_algorithm(time_score_fn)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _sample_batch(algorithm, num_samples, mesh, rng_key, state):
    # split whole, then laid out over `mesh`: draw i's key does not depend on the mesh
    keys = constrain(jax.random.split(rng_key, num_samples), mesh)
    new_states, info = jax.vmap(algorithm.step, in_axes=(0, None))(keys, state)
    return constrain((new_states.position, info), mesh)
