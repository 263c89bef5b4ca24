"""The network of :func:`robust_score.learn.train_dsm`: an MLP that predicts the noise ``eps``
of ``x_t = alpha(t) x_0 + sigma(t) eps`` from ``x`` standardized by the noised data's mean and
scale, and fixed features of the log signal-to-noise ratio."""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from robust_score._checks import check_widths, default_float_dtype
from robust_score.schedules import Schedule

__all__ = ["MLP", "Normalizer", "eps_prediction", "init_network", "log_snr", "time_embedding"]


class Normalizer(NamedTuple):
    """Mean ``(d,)`` and isotropic scale ``()`` of the training data, fixed before training
    (not trained: the network's input standardization must not drift with the loss)."""

    mean: jax.Array
    scale: jax.Array

    @classmethod
    def fit(cls, data) -> "Normalizer":
        data = jnp.asarray(data)
        scale = jnp.sqrt(jnp.mean(jnp.var(data, axis=0)))
        # a single training point (or identical ones) has zero spread: keep the input finite
        return cls(jnp.mean(data, axis=0), jnp.where(scale > 0, scale, 1.0))


def log_snr(schedule: Schedule, t):
    """``log(alpha(t) / sigma(t))``, the log signal-to-noise ratio: unlike ``t`` or ``sigma``
    it spreads both ends of every schedule over a few units (VP: from +4.6 at ``t = 1e-3`` to
    -5 at ``t = 1``, where ``sigma`` is stuck near 1 while ``alpha`` still falls 50-fold)."""
    return schedule.log_alpha(t) - jnp.log(schedule.sigma(t))


def time_embedding(log_snr_value, num_features: int) -> jax.Array:
    """``[lambda / 4, sin(w_k lambda), cos(w_k lambda)]`` of ``lambda = log_snr(t)`` with octave
    frequencies ``w_k = 2^(k - 3)``: fixed features that resolve ``lambda`` from coarse to fine
    (no learned embedding needed at this size)."""
    lam = log_snr_value
    frequencies = 2.0 ** (jnp.arange(num_features // 2, dtype=lam.dtype) - 3.0)
    angles = frequencies * lam
    return jnp.concatenate([lam[None] / 4.0, jnp.sin(angles), jnp.cos(angles)])


class MLP(eqx.Module):
    """Linear layers with ``activation`` between them (none after the last)."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable = eqx.field(static=True)

    def __call__(self, z):
        for layer in self.layers[:-1]:
            z = self.activation(layer(z))
        return self.layers[-1](z)


def init_network(
    rng_key,
    dim: int,
    *,
    hidden: Sequence[int] = (256, 256, 256),
    time_features: int = 16,
    activation: Callable = jax.nn.silu,
    dtype=None,
) -> MLP:
    """An MLP from ``dim + 1 + 2 (time_features // 2)`` inputs to ``dim`` outputs with hidden
    widths ``hidden``; the last layer is zero so the initial score is 0. SiLU by default: a
    smooth network gives a smooth score, which Langevin's and MALA's drift need."""
    hidden = check_widths(hidden, "hidden")
    dtype = default_float_dtype() if dtype is None else dtype
    sizes = (dim + 1 + 2 * (time_features // 2), *hidden, dim)
    keys = jax.random.split(rng_key, len(sizes) - 1)
    layers = [
        eqx.nn.Linear(n_in, n_out, key=k, dtype=dtype)
        for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
    ]
    last = layers[-1]
    layers[-1] = eqx.tree_at(
        lambda layer: (layer.weight, layer.bias),
        last,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )
    return MLP(tuple(layers), activation)


def eps_prediction(
    network, normalizer: Normalizer, schedule: Schedule, x, t, *, time_features: int = 16
):
    """The network's ``eps_hat(x, t)`` for a flat ``x`` of shape ``(d,)``."""
    dtype = normalizer.mean.dtype
    x, t = jnp.asarray(x, dtype), jnp.asarray(t, dtype)
    alpha, sigma = schedule.alpha(t), schedule.sigma(t)
    u = (x - alpha * normalizer.mean) / jnp.sqrt((alpha * normalizer.scale) ** 2 + sigma**2)
    return network(jnp.concatenate([u, time_embedding(log_snr(schedule, t), time_features)]))
