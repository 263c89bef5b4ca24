"""Step-size adaptation for MALA: dual averaging (Hoffman & Gelman 2014) to a target
acceptance rate, reusing BlackJAX's scheme and returning BlackJAX's adaptation types."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from blackjax.adaptation.base import AdaptationInfo, AdaptationResults
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.base import AdaptationAlgorithm

from robust_score._checks import check_count, check_fraction, check_positive_scalar
from robust_score.kernels.mala import build_kernel as build_mala_kernel
from robust_score.kernels.mala import init as mala_init

__all__ = ["mala_adaptation"]


def mala_adaptation(
    logdensity_fn: Callable,
    score_fn: Callable | None = None,
    *,
    initial_step_size: float = 0.1,
    target_acceptance_rate: float = 0.574,
) -> AdaptationAlgorithm:
    """Tune MALA's step size; use like ``blackjax.window_adaptation``.

    .. code::

        adapt = rs.mala_adaptation(logdensity_fn, score_fn)
        (state, parameters), _ = adapt.run(rng_key, position, num_steps=500)
        sampler = rs.mala(logdensity_fn, score_fn=score_fn, **parameters)

    The default target 0.574 is the optimal MALA acceptance rate (Roberts & Rosenthal 1998).
    """
    check_positive_scalar(initial_step_size, "initial_step_size")
    check_fraction(target_acceptance_rate, "target_acceptance_rate")
    da_init, da_update, da_final = dual_averaging_adaptation(target_acceptance_rate)
    kernel = build_mala_kernel()

    def run(rng_key, position, num_steps: int = 1000):
        check_count(num_steps, "num_steps")
        state = mala_init(position, logdensity_fn, score_fn)
        dtype = jnp.result_type(state.logdensity)

        def one_step(carry, key):
            state, da_state = carry
            step_size = jnp.exp(da_state.log_step_size).astype(dtype)
            state, info = kernel(key, state, logdensity_fn, step_size, score_fn)
            da_state = da_update(da_state, info.acceptance_rate)
            return (state, da_state), AdaptationInfo(state, info, da_state)

        carry = (state, da_init(jnp.asarray(initial_step_size, dtype)))
        keys = jax.random.split(rng_key, num_steps)
        (state, da_state), history = jax.lax.scan(one_step, carry, keys)
        parameters = {"step_size": da_final(da_state).astype(dtype)}
        return AdaptationResults(state, parameters), history

    return AdaptationAlgorithm(run)
