"""A small denoising-score-matching (DSM) trainer, and the memorising estimator it converges to
on finite data.

.. code::

    trained = rs.learn.train_dsm(data, rs.schedules.vp(), rng_key=key, num_steps=5000)
    draws = rs.diffusion.sample(key, trained.time_score_fn, schedule, 1000, (dim,))
    ula = rs.ula(trained.at_time(0.05), step_size=1e-3)     # a fixed-noise score for Langevin

    memoriser = rs.learn.empirical_score(data, schedule)      # the exact optimum of DSM on data

**Model.** An MLP ``eps_theta(u, e(t))`` predicts the noise ``eps`` of
``x_t = alpha(t) x_0 + sigma(t) eps``; the score is ``-eps_theta / sigma(t)``
(:func:`robust_score.scores.from_eps_prediction`). Predicting ``eps`` keeps the network's output
of unit scale at every noise level, and the explicit ``1 / sigma`` puts the score's Lipschitz
scale where it belongs (``~ 1 / sigma^2`` at low noise, see DESIGN.md) instead of asking the
network to produce it. The input ``u = (x - alpha m) / sqrt(alpha^2 s^2 + sigma^2)`` is ``x``
standardised by the noised data's mean and scale (``m``, ``s`` fitted once on the training
data), so the first layer sees unit-scale inputs at every ``t``; ``e(t)`` is the log
signal-to-noise ratio ``log(alpha(t) / sigma(t))`` with sine/cosine features of it. The
last layer starts at zero, so training starts from the
score ``0`` rather than from a random field amplified by ``1 / sigma``.

**Loss.** ``E_t E_{x_0, eps} ||eps_theta(x_t, t) - eps||^2 / d``: this is DSM,
``E ||s_theta(x_t, t) - grad log p(x_t | x_0)||^2``, weighted by ``lambda(t) = sigma(t)^2``
(``grad log p(x_t | x_0) = -eps / sigma``). Its minimiser over all functions is the score of
the noised *training* distribution, :func:`empirical_score`: a network that fits it exactly
has memorised the data. How close a network gets depends on its capacity (``hidden``) and on
the training length (``num_steps``); both are recorded in :class:`TrainedScore`.

**Why equinox.** An ``equinox`` module is a plain pytree of arrays: ``jax.grad``, ``optax``
and ``lax.scan`` take it as it is, with no parameter/state containers, ``init``/``apply``
split or mutable collections to thread through. The trainer's state is just
``(network, optimizer state)``.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_positive_scalar
from robust_score.schedules import Schedule
from robust_score.scores.adapters import from_eps_prediction

__all__ = [
    "DECAYS",
    "TIME_SAMPLINGS",
    "MLP",
    "Normalizer",
    "TrainedScore",
    "TrainingSettings",
    "dsm_loss",
    "empirical_logdensity",
    "empirical_score",
    "eps_prediction",
    "init_network",
    "log_snr",
    "sample_times",
    "time_embedding",
    "train_dsm",
]

TIME_SAMPLINGS = ("log_snr", "uniform")
DECAYS = ("cosine", "constant")


# -- the model --------------------------------------------------------------------------------
class Normalizer(NamedTuple):
    """Mean ``(d,)`` and isotropic scale ``()`` of the training data, fixed before training
    (not trained: the network's input standardisation must not drift with the loss)."""

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
    hidden = _check_hidden(hidden)
    dtype = jnp.zeros(()).dtype if dtype is None else dtype
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


def dsm_loss(network, normalizer, schedule, x0, t, eps, *, time_features: int = 16):
    """Mean over the batch (and the ``d`` coordinates) of ``||eps_hat(x_t, t) - eps||^2``,
    ``x_t = alpha(t) x0 + sigma(t) eps``: sigma^2-weighted DSM, per coordinate, so that a
    network predicting 0 scores 1."""
    alpha, sigma = schedule.alpha(t)[:, None], schedule.sigma(t)[:, None]
    x_t = alpha * x0 + sigma * eps
    predict = jax.vmap(
        lambda x, s: eps_prediction(
            network, normalizer, schedule, x, s, time_features=time_features
        )
    )
    return jnp.mean((predict(x_t, t) - eps) ** 2)


def sample_times(rng_key, shape, schedule: Schedule, t_range, time_sampling: str, dtype):
    """Training times in ``t_range``: ``"log_snr"`` (uniform in :func:`log_snr`, as in
    variational diffusion models: every factor of signal-to-noise gets the same share, so
    both the low-noise end, where the score is large and hard to fit, and the high-noise end
    are trained) or ``"uniform"`` in ``t`` (score_sde's choice; under VP most such times have
    ``sigma`` near 1)."""
    low, high = t_range
    u = jax.random.uniform(rng_key, shape, dtype)
    if time_sampling == "uniform":
        return low + (high - low) * u
    # invert the (decreasing) log SNR by interpolating a table: any schedule, no closed form
    with jax.ensure_compile_time_eval():
        grid = jnp.linspace(low, high, 4097, dtype=dtype)
        table = log_snr(schedule, grid)
    target = table[-1] + (table[0] - table[-1]) * u
    return jnp.clip(jnp.interp(target, table[::-1], grid[::-1]), low, high)


# -- the trainer ------------------------------------------------------------------------------
class TrainingSettings(NamedTuple):
    """What was trained, and how long: memorisation depends on ``hidden`` (capacity),
    ``num_steps`` x ``batch_size`` (training length) and ``num_data``."""

    num_data: int
    hidden: tuple[int, ...]
    num_steps: int
    batch_size: int
    learning_rate: float
    decay: str
    t_range: tuple[float, float]
    time_sampling: str
    time_features: int
    num_parameters: int


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, like a function
class TrainedScore:
    """A trained DSM score.

    ``time_score_fn(x, t)`` is a plain function for every time-score sampler
    (``rs.reverse_diffusion``, ``rs.annealed_langevin``, ``rs.diffusion.sample``); it is built
    once, so samplers that cache on the score object reuse their compiled program.
    ``score_fn(x)`` is the score at the fixed time ``score_time`` (default: the low end of the
    training range) for ULA/MALA; ``at_time(t)`` gives it at another ``t``. ``losses`` holds
    one loss per training step; ``settings`` the capacity and training length.
    """

    params: MLP
    normalizer: Normalizer
    schedule: Schedule
    losses: np.ndarray
    settings: TrainingSettings
    score_time: float
    event_shape: tuple[int, ...]
    time_score_fn: Callable = field(init=False, repr=False)
    score_fn: Callable = field(init=False, repr=False)

    def __post_init__(self):
        network, normalizer, schedule = self.params, self.normalizer, self.schedule
        dim, features = math.prod(self.event_shape), self.settings.time_features

        def eps_fn(x, t):
            flat, unravel = ravel_pytree(x)
            if flat.size != dim:
                raise ValueError(
                    f"position has {flat.size} entries but the score was trained in dimension "
                    f"{dim}."
                )
            eps = eps_prediction(network, normalizer, schedule, flat, t, time_features=features)
            return unravel(eps.astype(flat.dtype))

        object.__setattr__(self, "time_score_fn", from_eps_prediction(eps_fn, schedule))
        object.__setattr__(self, "score_fn", self.at_time(self.score_time))

    def at_time(self, t: float) -> Callable:
        """The score ``x -> s_theta(x, t)`` at a fixed ``t`` in the schedule's range (its
        Lipschitz scale is about ``1 / sigma(t)^2``: keep a Langevin step well below
        ``sigma(t)^2``)."""
        self.schedule.check_time(t, "t")
        time_score_fn = self.time_score_fn

        def score_fn(x):
            return time_score_fn(x, t)

        return score_fn


def train_dsm(
    data,
    schedule: Schedule,
    *,
    rng_key,
    num_steps: int = 5000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    hidden: Sequence[int] = (256, 256, 256),
    t_range: tuple[float, float] | None = None,
    decay: str = "cosine",
    time_sampling: str = "log_snr",
    time_features: int = 16,
    score_time: float | None = None,
    progress_bar: bool = True,
) -> TrainedScore:
    """Fit an MLP time score to ``data`` (shaped ``(n, *event_shape)``) by sigma^2-weighted
    denoising score matching under ``schedule``, with Adam.

    - capacity: ``hidden`` (widths of the hidden layers), ``time_features``;
    - training length: ``num_steps`` Adam steps on minibatches of ``batch_size`` drawn with
      replacement; ``learning_rate`` is the peak rate, decayed to 0 along a cosine by default
      (``decay="constant"`` keeps it). The decay matters: the low-noise score is the network's
      output times ``1 / sigma``, so the jitter of constant-rate Adam iterates is amplified
      there (on N(1, 2I), d = 5, it cut the relative L2 error at sigma = 0.17 from 0.08 to
      0.03);
    - ``t_range`` (default: the schedule's ``[t_min, T]``) restricts training to a band of
      noise levels, e.g. the paper's low-noise band ``sigma in [0.1, 1]`` (``t_low =
      schedule.t_of_sigma(0.1)``); ``time_sampling`` draws training times uniform in the log
      SNR (``"log_snr"``, default) or in ``t`` (``"uniform"``), see :func:`sample_times`;
    - ``score_time`` (default: the low end of ``t_range``) is the time of
      ``TrainedScore.score_fn``, the fixed-noise score for ULA/MALA.

    Each step uses the key ``fold_in(rng_key, step)``, so the result does not depend on how
    the steps are grouped into compiled chunks (the progress bar's granularity). Repeated
    calls with the same settings and shapes reuse the compiled program. Raises
    ``FloatingPointError`` if the loss becomes non-finite. Returns a :class:`TrainedScore`.
    """
    data = _check_data(data)
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"`schedule` must be a robust_score.schedules.Schedule (e.g. rs.schedules.vp()), "
            f"got {type(schedule).__name__}."
        )
    _check_count(num_steps, "num_steps")
    _check_count(batch_size, "batch_size")
    _check_count(time_features, "time_features")
    check_positive_scalar(learning_rate, "learning_rate")
    hidden = _check_hidden(hidden)
    t_range = _check_t_range(t_range, schedule)
    if decay not in DECAYS:
        raise ValueError(f"`decay` must be one of {DECAYS}, got {decay!r}.")
    if time_sampling not in TIME_SAMPLINGS:
        raise ValueError(f"`time_sampling` must be one of {TIME_SAMPLINGS}, got {time_sampling!r}.")
    score_time = t_range[0] if score_time is None else score_time
    schedule.check_time(score_time, "score_time")

    event_shape = data.shape[1:]
    flat_data = data.reshape(data.shape[0], -1)
    init_key, train_key = jax.random.split(rng_key)
    network = init_network(init_key, flat_data.shape[1], hidden=hidden, time_features=time_features)
    normalizer = Normalizer.fit(flat_data)
    optimizer = _adam(float(learning_rate), decay, num_steps)
    params, static = eqx.partition(network, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    config = _Config(static, schedule, optimizer, batch_size, t_range, time_sampling, time_features)

    num_chunks = min(num_steps, 50) if progress_bar else 1
    chunk = -(-num_steps // num_chunks)  # every chunk has this length: one compilation
    losses = []
    bar = _progress(num_steps) if progress_bar else None
    for start in range(0, num_steps, chunk):
        params, opt_state, chunk_losses = _train_chunk(
            config,
            chunk,
            jnp.asarray(num_steps),
            params,
            opt_state,
            jnp.asarray(start),
            train_key,
            flat_data,
            normalizer,
        )
        done = min(chunk, num_steps - start)
        losses.append(np.asarray(chunk_losses[:done]))
        if bar is not None:
            bar.update(done)
            bar.set_postfix(loss=f"{float(np.mean(losses[-1])):.4f}")
    if bar is not None:
        bar.close()
    losses = np.concatenate(losses)
    if not np.all(np.isfinite(losses)):
        bad = int(np.argmin(np.isfinite(losses)))
        raise FloatingPointError(
            f"the DSM loss became non-finite at step {bad}: lower `learning_rate` "
            f"(got {learning_rate}) or raise the low end of `t_range` (got {t_range})."
        )
    network = eqx.combine(params, static)
    settings = TrainingSettings(
        num_data=int(flat_data.shape[0]),
        hidden=hidden,
        num_steps=num_steps,
        batch_size=batch_size,
        learning_rate=float(learning_rate),
        decay=decay,
        t_range=t_range,
        time_sampling=time_sampling,
        time_features=time_features,
        num_parameters=int(sum(leaf.size for leaf in jax.tree.leaves(params))),
    )
    return TrainedScore(
        network, normalizer, schedule, losses, settings, float(score_time), event_shape
    )


class _Config(NamedTuple):
    """Everything static about a training run: hashable, so repeated runs with the same
    settings (and shapes) reuse one compiled chunk."""

    static: MLP  # the network with its arrays removed
    schedule: Schedule
    optimizer: optax.GradientTransformation
    batch_size: int
    t_range: tuple[float, float]
    time_sampling: str
    time_features: int


@lru_cache(maxsize=16)
def _adam(learning_rate: float, decay: str, num_steps: int) -> optax.GradientTransformation:
    # cached: the same settings give the same (hashable) optimizer, hence the same program
    if decay == "cosine":
        return optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
    return optax.adam(learning_rate)


@eqx.filter_jit
def _train_chunk(config: _Config, chunk: int, num_steps, params, opt_state, start, key, data, norm):
    dtype = data.dtype
    loss_fn = jax.value_and_grad(
        lambda p, x0, t, eps: dsm_loss(
            eqx.combine(p, config.static),
            norm,
            config.schedule,
            x0,
            t,
            eps,
            time_features=config.time_features,
        )
    )

    def one_step(carry, step):
        params, opt_state = carry
        index_key, time_key, noise_key = jax.random.split(jax.random.fold_in(key, step), 3)
        index = jax.random.randint(index_key, (config.batch_size,), 0, data.shape[0])
        x0 = data[index]
        t = sample_times(
            time_key,
            (config.batch_size,),
            config.schedule,
            config.t_range,
            config.time_sampling,
            dtype,
        )
        eps = jax.random.normal(noise_key, x0.shape, dtype)
        loss, grads = loss_fn(params, x0, t, eps)
        updates, new_opt_state = config.optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        # the last chunk may run past num_steps: those steps leave the state unchanged
        keep = step < num_steps
        params, opt_state = jax.tree.map(
            lambda new, old: jnp.where(keep, new, old),
            (new_params, new_opt_state),
            (params, opt_state),
        )
        return (params, opt_state), loss

    steps = start + jnp.arange(chunk)
    (params, opt_state), losses = jax.lax.scan(one_step, (params, opt_state), steps)
    return params, opt_state, losses


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="DSM training", unit="step")


# -- the memorising estimator -----------------------------------------------------------------
def empirical_score(train_data, schedule: Schedule) -> Callable:
    """The exact time score of the training data's empirical distribution noised under
    ``schedule``: the score of ``(1/n) sum_i N(alpha(t) x_i, sigma(t)^2 I)``,
    ``s(x, t) = sum_i w_i (alpha x_i - x) / sigma^2`` with
    ``w = softmax_i(-||x - alpha x_i||^2 / (2 sigma^2))`` computed by a log-sum-exp (stable at
    any ``sigma``). It is the minimiser of the
    DSM loss on ``train_data`` over all functions, hence what an unlimited network trained for
    ever converges to; reverse diffusion with it returns training points. ``train_data`` is
    ``(n, *event_shape)``; the score takes positions of ``event_shape`` (or any pytree with
    that many entries)."""
    return _build_empirical(train_data, schedule, want="score")


def empirical_logdensity(train_data, schedule: Schedule) -> Callable:
    """``(x, t) -> log (1/n) sum_i N(x; alpha(t) x_i, sigma(t)^2 I)``, normalised; its
    gradient in ``x`` is :func:`empirical_score`."""
    return _build_empirical(train_data, schedule, want="logdensity")


def _build_empirical(train_data, schedule, want: str) -> Callable:
    points = _check_data(train_data, name="train_data")
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"`schedule` must be a robust_score.schedules.Schedule, got {type(schedule).__name__}."
        )
    points = np.asarray(points.reshape(points.shape[0], -1), np.float64)
    num_points, dim = points.shape

    def log_prob_and_score(x, t):
        flat, unravel = ravel_pytree(x)
        if flat.size != dim:
            raise ValueError(
                f"position has {flat.size} entries but `train_data` has dimension {dim}."
            )
        dtype = flat.dtype
        t = jnp.asarray(t, dtype)
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        # the difference, not ||x||^2 - 2 alpha x.x_i + ..., which cancels badly at low sigma
        residual = alpha * jnp.asarray(points, dtype) - flat  # (n, d)
        log_kernel = -0.5 * jnp.sum(residual**2, axis=-1) / sigma**2
        log_norm = jax.nn.logsumexp(log_kernel)
        weights = jnp.exp(log_kernel - log_norm)
        log_prob = log_norm - math.log(num_points) - dim * (0.5 * math.log(2 * math.pi))
        log_prob = log_prob - dim * jnp.log(sigma)
        return log_prob, unravel(weights @ residual / sigma**2)

    if want == "score":
        return lambda x, t: log_prob_and_score(x, t)[1]
    return lambda x, t: log_prob_and_score(x, t)[0]


# -- argument checks --------------------------------------------------------------------------
def _check_data(data, name: str = "data") -> jax.Array:
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
    return jnp.asarray(array, jnp.zeros(()).dtype)


def _check_count(value, name: str) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")


def _check_hidden(hidden) -> tuple[int, ...]:
    try:
        widths = tuple(hidden)
    except TypeError:
        widths = None
    if not widths or not all(
        isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(
            f"`hidden` must be a non-empty sequence of positive integer widths, e.g. "
            f"(256, 256, 256); got {hidden!r}."
        )
    return tuple(int(w) for w in widths)


def _check_t_range(t_range, schedule: Schedule) -> tuple[float, float]:
    if t_range is None:
        return float(schedule.t_min), float(schedule.T)
    try:
        low, high = (float(v) for v in t_range)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`t_range` must be a pair (t_low, t_high), got {t_range!r}.") from err
    if not (schedule.t_min <= low < high <= schedule.T):
        raise ValueError(
            f"`t_range` must satisfy t_min <= t_low < t_high <= T with the schedule's "
            f"[t_min, T] = [{schedule.t_min}, {schedule.T}]; got {t_range!r}."
        )
    return low, high
