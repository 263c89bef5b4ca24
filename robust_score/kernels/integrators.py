"""The one Langevin integrator, shared by ULA, MALA and every Langevin corrector.

Euler–Maruyama for ``dx = s(x) dt + sqrt(2) dW``:
``x' = x + h s(x) + sqrt(2 h) z``, the same convention as ``blackjax.mcmc.diffusions``.
"""

import jax
import jax.numpy as jnp
from blackjax.util import generate_gaussian_noise

__all__ = ["langevin_step", "langevin_log_proposal", "all_finite"]


def langevin_step(rng_key, position, drift, step_size):
    """One Euler–Maruyama step from ``position`` with the drift (score) evaluated there."""
    noise = generate_gaussian_noise(rng_key, position)
    scale = jnp.sqrt(2.0 * step_size)
    return jax.tree.map(lambda x, g, z: x + step_size * g + scale * z, position, drift, noise)


def langevin_log_proposal(to_position, from_position, from_drift, step_size):
    """``log q(to | from)`` up to a constant that cancels in MH ratios:
    ``-||to - from - h s(from)||^2 / (4 h)``."""
    residuals = jax.tree.map(
        lambda y, x, g: jnp.sum((y - x - step_size * g) ** 2),
        to_position,
        from_position,
        from_drift,
    )
    return -sum(jax.tree.leaves(residuals)) / (4.0 * step_size)


def all_finite(*trees):
    """Scalar bool: every entry of every leaf is finite.

    Tested on the sum of all entries, not entry by entry: a NaN or an infinity anywhere makes
    the sum non-finite, and a sum is a reduction XLA fuses into the loop that produced the
    leaf, where ``all(isfinite(leaf))`` per leaf costs separate passes over memory (up to 20 %
    of a ULA step at d = 1000, see ``docs/benchmarks.md``). The one difference: finite entries
    whose sum overflows (magnitudes near the dtype's maximum) count as non-finite, which for a
    sampler's state is a divergence anyway.
    """
    sums = [jnp.sum(leaf) for tree in trees for leaf in jax.tree.leaves(tree)]
    return jnp.isfinite(sum(sums))
