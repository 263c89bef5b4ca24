"""Reverse-diffusion samplers: reverse SDE (Euler–Maruyama), probability-flow ODE (Heun),
predictor–corrector, DPM-Solver++(2M) and EDM's stochastic sampler, driven by a (possibly
wrong) time score.

The forward process is ``dx = f(t) x dt + g(t) dW`` with ``x_t = alpha(t) x_0 + sigma(t) eps``
(:mod:`robust_score.schedules`). One kernel step integrates one trajectory from ``t_start``
down to ``t_min`` in a single ``lax.scan``:

- ``t_start = T`` (default): the trajectory starts from a fresh prior draw, so the step is an
  independence kernel whose every output is a new approximate sample of ``p``;
- ``t_start < T``: the current state is renoised to ``t_start`` and denoised back, a Markov
  kernel that leaves ``p`` invariant when the score and the integration are exact.

Moves between consecutive grid times ``t > t'`` (``dt = t - t' > 0``, ``s = score``):

- ``"sde"``: ``x' = x + dt (g^2 s(x, t) - f x) + sqrt(g^2 dt) z`` — one score evaluation;
- ``"ode"``: Heun (explicit trapezoid, EDM's 2nd-order step) on the probability-flow ODE
  ``dx/dt = f x - g^2 s / 2`` — two evaluations;
- ``"pc"``: the ``"sde"`` move, then ``corrector_steps`` Langevin moves at ``t'`` with Song
  et al. (2021)'s signal-to-noise step rule — ``1 + corrector_steps`` evaluations;
- ``"dpmpp_2m"``: DPM-Solver++(2M) (Lu et al. 2022), the exponential integrator of the
  probability-flow ODE in its data-prediction form, multistep: with ``lambda = log(alpha /
  sigma)``, ``h = lambda' - lambda`` and Tweedie's ``D = (x + sigma^2 s) / alpha``,
  ``x' = (sigma' / sigma) x - alpha' expm1(-h) D~``, where ``D~`` extrapolates this and the
  previous step's ``D`` (``(1 + 1/(2r)) D - 1/(2r) D_prev``, ``r = h_prev / h``); the first
  step, and the last when there are fewer than 15, use ``D`` alone — one evaluation. Its
  grid defaults to uniform in ``lambda`` (``spacing="logsnr"``);
- ``"edm"``: Karras et al. (2022)'s stochastic sampler (their Algorithm 2) on the scaled
  variable ``x / alpha`` with noise level ``sigma / alpha``: raise the noise level by
  ``gamma = min(s_churn / num_steps, sqrt(2) - 1)`` where it lies in ``[s_tmin, s_tmax]``
  (never above the schedule's ``T``), add the matching fresh noise times ``s_noise``, then
  one Heun step down to ``t'`` — two evaluations. ``s_churn = 0`` is their deterministic
  Heun sampler. Its grid defaults to EDM's (``spacing="karras"``).

With ``denoise=True`` (default) the output is Tweedie's ``E[x_0 | x_{t_min}]``, one more
evaluation: it removes the ``sigma(t_min)^2`` of noise variance the trajectory still carries.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.base import SamplingAlgorithm

from robust_score._checks import (
    check_choice,
    check_count,
    check_interval,
    check_positive_scalar,
)
from robust_score.kernels import _annealing
from robust_score.kernels._annealing import (
    AnnealingPath,
    Levels,
    PathInfo,
    PathState,
    grid_levels,
    levels_on,
    snr_step_size,
    tweedie_denoise,
)
from robust_score.kernels.integrators import langevin_step
from robust_score.schedules import Schedule

__all__ = [
    "METHODS",
    "ReverseDiffusion",
    "ReverseDiffusionState",
    "ReverseDiffusionInfo",
    "init",
    "build_kernel",
    "as_top_level_api",
]

METHODS = ("sde", "ode", "pc", "dpmpp_2m", "edm")
# Song et al. (2021)'s corrector signal-to-noise ratio
DEFAULT_SNR = 0.16
# score evaluations per move
_EVALS_PER_MOVE = {"sde": 1, "ode": 2, "dpmpp_2m": 1, "edm": 2}
# the grid each few-step method was designed on, when the user names none
_METHOD_SPACING = {"dpmpp_2m": "logsnr", "edm": "karras"}
# DPM-Solver++ takes its last step at first order below this many steps (its
# `lower_order_final`: a second-order step on a coarse final interval is unstable)
_LOWER_ORDER_FINAL_BELOW = 15


@dataclass(frozen=True)
class ReverseDiffusion(AnnealingPath):
    """Settings of a reverse-diffusion draw, checked once here; the kernel trusts them.

    ``num_steps`` moves of ``method`` on ``schedule.time_grid(num_steps, t_start=t_start,
    spacing=spacing)``; ``snr`` and ``corrector_steps`` set the ``"pc"`` corrector,
    ``s_churn``, ``s_tmin``, ``s_tmax`` and ``s_noise`` the ``"edm"`` sampler's churn (Karras
    et al.'s names; ``s_tmin`` and ``s_tmax`` bound the noise-to-signal ratio ``sigma /
    alpha``); the :class:`~robust_score.kernels._annealing.AnnealingPath` fields
    (``schedule``, ``t_start``, ``denoise``, ``spacing``) say where a path starts and ends.
    ``spacing=None`` takes the method's grid (``"logsnr"`` for ``"dpmpp_2m"``, ``"karras"``
    for ``"edm"``), else the schedule's.

    .. code::

        settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=18, method="ode")
        sampler = settings.sampling_algorithm(time_score_fn)   # a blackjax.SamplingAlgorithm
        draws = rs.sample_batch(rng_key, time_score_fn, settings, 1000, (dim,))
    """

    num_steps: int
    method: str = "sde"
    snr: float = field(default=DEFAULT_SNR, kw_only=True)
    corrector_steps: int = field(default=1, kw_only=True)
    s_churn: float = field(default=0.0, kw_only=True)
    s_tmin: float = field(default=0.0, kw_only=True)
    s_tmax: float = field(default=math.inf, kw_only=True)
    s_noise: float = field(default=1.0, kw_only=True)

    def __post_init__(self):
        check_choice(self.method, "method", METHODS)
        if self.spacing is None and self.method in _METHOD_SPACING:
            object.__setattr__(self, "spacing", _METHOD_SPACING[self.method])
        super().__post_init__()
        check_count(self.num_steps, "num_steps")
        check_positive_scalar(self.snr, "snr")
        check_count(self.corrector_steps, "corrector_steps")
        check_interval(self.s_churn, math.inf, ("s_churn", "inf"), low_may_be_zero=True)
        check_interval(
            self.s_tmin, self.s_tmax, ("s_tmin", "s_tmax"), low_may_be_zero=True, may_be_equal=True
        )
        check_positive_scalar(self.s_noise, "s_noise")

    @property
    def num_score_evals(self) -> int:
        """Score evaluations per draw: ``sde`` and ``dpmpp_2m`` N, ``ode`` and ``edm`` 2N,
        ``pc`` (1 + corrector_steps) N, plus one for the Tweedie denoising step."""
        per_move = _EVALS_PER_MOVE.get(self.method, 1 + self.corrector_steps)
        return per_move * self.num_steps + int(self.denoise)

    def levels(self, dtype) -> Levels:
        """The schedule at the grid's ``num_steps + 1`` times (NumPy constants, cached)."""
        return grid_levels(self.schedule, self.num_steps, self.t_start, self.spacing, dtype)

    def moves(self, score, levels: Levels):
        """One move per grid interval ``(now, next)``."""
        now = jax.tree.map(lambda a: a[:-1], levels)
        nxt = jax.tree.map(lambda a: a[1:], levels)
        if self.method == "sde":
            move = partial(_euler_maruyama_move, score)
        elif self.method == "ode":
            move = partial(_heun_move, score)
        elif self.method == "dpmpp_2m":
            return partial(_dpmpp_2m_move, score), (now, nxt, *_dpmpp_2m_weights(levels))
        elif self.method == "edm":
            # without churn every move starts at its own grid level: nothing to raise
            churned = (
                now
                if self.s_churn == 0
                else _churned_levels(self.schedule, levels, self.s_churn, self.s_tmin, self.s_tmax)
            )
            return partial(_edm_move, score, self.s_noise), (now, churned, nxt)
        else:
            move = partial(
                _predictor_corrector_move,
                score,
                snr=self.snr,
                corrector_steps=self.corrector_steps,
            )
        return move, (now, nxt)

    def start_carry(self, x):
        # DPM-Solver++(2M) remembers the previous step's data prediction
        return (x, jnp.zeros_like(x)) if self.method == "dpmpp_2m" else x

    def carry_position(self, carry):
        return carry[0] if self.method == "dpmpp_2m" else carry


# one state, info, init and kernel for every sampler that anneals from noise; the names are
# BlackJAX's module layout
ReverseDiffusionState = PathState
ReverseDiffusionInfo = PathInfo
init = _annealing.init
build_kernel = _annealing.build_kernel


def _euler_maruyama_move(score, rng_key, x, now: Levels, nxt: Levels):
    s = score(x, now.t)
    dt = now.t - nxt.t
    noise = jax.random.normal(rng_key, x.shape, x.dtype)
    return (
        x
        + dt * (now.diffusion_squared * s - now.drift * x)
        + jnp.sqrt(now.diffusion_squared * dt) * noise
    )


def _heun_move(score, rng_key, x, now: Levels, nxt: Levels):
    del rng_key  # the probability-flow ODE is deterministic

    def velocity(y, level):
        return level.drift * y - 0.5 * level.diffusion_squared * score(y, level.t)

    h = nxt.t - now.t  # negative: the ODE runs backwards in time
    v_now = velocity(x, now)
    v_next = velocity(x + h * v_now, nxt)
    return x + 0.5 * h * (v_now + v_next)


def _dpmpp_2m_weights(levels: Levels):
    """Per move: the weights of this and of the previous step's data prediction in ``D~``
    (``(1, 0)`` at first order) and ``expm1(-h)``, from the grid's NumPy constants."""
    log_snr = np.log(levels.alpha.astype(np.float64) / levels.sigma.astype(np.float64))
    h = np.diff(log_snr)
    num_moves = len(h)
    ratio = np.ones(num_moves)
    ratio[1:] = h[:-1] / h[1:]
    second_order = np.arange(num_moves) >= 1
    if num_moves < _LOWER_ORDER_FINAL_BELOW:
        second_order[-1] = False
    previous = np.where(second_order, -0.5 / ratio, 0.0)
    dtype = levels.t.dtype
    return (1.0 - previous).astype(dtype), previous.astype(dtype), np.expm1(-h).astype(dtype)


def _dpmpp_2m_move(score, rng_key, carry, now: Levels, nxt: Levels, w_now, w_prev, expm1_h):
    del rng_key  # an ODE solver
    x, previous_denoised = carry
    denoised = tweedie_denoise(x, score(x, now.t), now)
    blended = w_now * denoised + w_prev * previous_denoised
    return (nxt.sigma / now.sigma) * x - nxt.alpha * expm1_h * blended, denoised


@lru_cache(maxsize=64)
def _churn_times(schedule: Schedule, times: tuple, s_churn, s_tmin, s_tmax) -> np.ndarray:
    """EDM's raised time ``t_hat`` for each move's starting time in ``times``."""
    times = np.asarray(times)
    # concrete values even while a kernel is traced; once per setting (cached)
    with jax.ensure_compile_time_eval():
        ratio = np.asarray(schedule.noise_to_signal(jnp.asarray(times)), np.float64)
        in_range = (ratio >= s_tmin) & (ratio <= s_tmax)
        gamma = np.where(in_range, min(s_churn / len(times), math.sqrt(2.0) - 1.0), 0.0)
        ceiling = float(schedule.noise_to_signal(jnp.asarray(schedule.T)))
        raised = np.minimum(ratio * (1.0 + gamma), ceiling)
        churned = np.asarray(schedule.t_of_noise_to_signal(jnp.asarray(raised)), np.float64)
    return np.where(gamma > 0, np.clip(churned, times, schedule.T), times)


def _churned_levels(schedule, grid: Levels, s_churn, s_tmin, s_tmax) -> Levels:
    """The levels EDM's sampler evaluates its first score of each move at."""
    times = tuple(float(t) for t in grid.t[:-1])
    raised = _churn_times(schedule, times, s_churn, s_tmin, s_tmax)
    return levels_on(schedule, raised, grid.t.dtype)


def _edm_move(score, s_noise, rng_key, x, now: Levels, hat: Levels, nxt: Levels):
    # on the scaled variable y = x / alpha, whose noise level is sigma / alpha
    def denoised(y, level):
        x = level.alpha * y
        return tweedie_denoise(x, score(x, level.t), level)

    y = x / now.alpha
    ratio_now, ratio_hat, ratio_next = (lvl.sigma / lvl.alpha for lvl in (now, hat, nxt))
    fresh = jnp.sqrt(jnp.maximum(ratio_hat**2 - ratio_now**2, 0.0))
    y_hat = y + fresh * s_noise * jax.random.normal(rng_key, y.shape, y.dtype)
    slope = (y_hat - denoised(y_hat, hat)) / ratio_hat
    y_euler = y_hat + (ratio_next - ratio_hat) * slope
    slope_next = (y_euler - denoised(y_euler, nxt)) / ratio_next
    return nxt.alpha * (y_hat + (ratio_next - ratio_hat) * 0.5 * (slope + slope_next))


def _predictor_corrector_move(score, rng_key, x, now: Levels, nxt: Levels, snr, corrector_steps):
    key_predict, key_correct = jax.random.split(rng_key)
    x = _euler_maruyama_move(score, key_predict, x, now, nxt)

    def correct(x, key):
        return langevin_step(key, x, score(x, nxt.t), snr_step_size(snr, nxt.sigma)), None

    x, _ = jax.lax.scan(correct, x, jax.random.split(key_correct, corrector_steps))
    return x


def as_top_level_api(
    time_score_fn: Callable,
    schedule: Schedule,
    num_steps: int,
    method: str = "sde",
    *,
    t_start: float | None = None,
    snr: float = DEFAULT_SNR,
    corrector_steps: int = 1,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    denoise: bool = True,
    spacing: str | None = None,
) -> SamplingAlgorithm:
    """Reverse diffusion as a ``blackjax.SamplingAlgorithm``.

    .. code::

        sampler = rs.reverse_diffusion(time_score_fn, rs.schedules.vp(), num_steps=100)
        state = sampler.init(jnp.zeros(dim))     # a template: shape, dtype, pytree structure
        state, info = jax.jit(sampler.step)(rng_key, state)   # state.position ~ p

    ``time_score_fn(x, t)`` estimates ``grad log p_t(x)`` under ``schedule`` (``t`` is a
    scalar array of the position's dtype). The other arguments are the fields of
    :class:`ReverseDiffusion`, see there and the module docstring
    (``ReverseDiffusion(...).sampling_algorithm(time_score_fn)`` is the same sampler).
    ``t_start=None`` (``T``) makes each step an independent draw from the prior pushed to
    ``t_min``; a ``t_start`` below ``T`` renoises the current state to ``t_start`` and
    denoises it back. Each step costs ``num_score_evals`` score evaluations.
    """
    settings = ReverseDiffusion(
        schedule,
        num_steps,
        method,
        t_start=t_start,
        snr=snr,
        corrector_steps=corrector_steps,
        s_churn=s_churn,
        s_tmin=s_tmin,
        s_tmax=s_tmax,
        s_noise=s_noise,
        denoise=denoise,
        spacing=spacing,
    )
    return settings.sampling_algorithm(time_score_fn)
