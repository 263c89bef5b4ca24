"""Reverse-diffusion samplers: reverse SDE (Euler–Maruyama), probability-flow ODE (Heun) and
predictor–corrector, driven by a (possibly wrong) time score.

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
  et al. (2021)'s signal-to-noise step rule — ``1 + corrector_steps`` evaluations.

With ``denoise=True`` (default) the output is Tweedie's ``E[x_0 | x_{t_min}]``, one more
evaluation: it removes the ``sigma(t_min)^2`` of noise variance the trajectory still carries.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
from blackjax.base import SamplingAlgorithm

from robust_score._checks import (
    check_choice,
    check_count,
    check_positive_scalar,
)
from robust_score.kernels import _annealing
from robust_score.kernels._annealing import (
    AnnealingPath,
    Levels,
    PathInfo,
    PathState,
    grid_levels,
    snr_step_size,
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

METHODS = ("sde", "ode", "pc")
# Song et al. (2021)'s corrector signal-to-noise ratio
DEFAULT_SNR = 0.16


@dataclass(frozen=True)
class ReverseDiffusion(AnnealingPath):
    """Settings of a reverse-diffusion draw, checked once here; the kernel trusts them.

    ``num_steps`` moves of ``method`` on ``schedule.time_grid(num_steps, t_start=t_start,
    spacing=spacing)``; ``snr`` and ``corrector_steps`` set the ``"pc"`` corrector; the
    :class:`~robust_score.kernels._annealing.AnnealingPath` fields (``schedule``, ``t_start``,
    ``denoise``, ``spacing``) say where a path starts and ends.

    .. code::

        settings = rs.ReverseDiffusion(rs.schedules.vp(), num_steps=18, method="ode")
        sampler = settings.sampling_algorithm(time_score_fn)   # a blackjax.SamplingAlgorithm
        draws = rs.sample_batch(rng_key, time_score_fn, settings, 1000, (dim,))
    """

    num_steps: int
    method: str = "sde"
    snr: float = field(default=DEFAULT_SNR, kw_only=True)
    corrector_steps: int = field(default=1, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        check_count(self.num_steps, "num_steps")
        check_choice(self.method, "method", METHODS)
        check_positive_scalar(self.snr, "snr")
        check_count(self.corrector_steps, "corrector_steps")

    @property
    def num_score_evals(self) -> int:
        """Score evaluations per draw: ``sde`` N, ``ode`` 2N, ``pc`` (1 + corrector_steps) N,
        plus one for the Tweedie denoising step."""
        per_move = {"sde": 1, "ode": 2, "pc": 1 + self.corrector_steps}[self.method]
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
        else:
            move = partial(
                _predictor_corrector_move,
                score,
                snr=self.snr,
                corrector_steps=self.corrector_steps,
            )
        return move, (now, nxt)


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
        denoise=denoise,
        spacing=spacing,
    )
    return settings.sampling_algorithm(time_score_fn)
