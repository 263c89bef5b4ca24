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
    """Scalar bool: every entry of every leaf is finite."""
    leaves = [leaf for tree in trees for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
