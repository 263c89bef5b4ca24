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
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.base import SamplingAlgorithm
from blackjax.types import ArrayTree, PRNGKey
from jax.flatten_util import ravel_pytree

from robust_score._checks import check_positive_scalar
from robust_score.kernels._annealing import (
    Levels,
    check_count,
    check_schedule,
    check_time_score,
    check_time_score_output,
    flat_time_score,
    grid_levels,
    resolve_t_start,
    snr_step_size,
    walk_down,
)
from robust_score.kernels.integrators import langevin_step
from robust_score.schedules import Schedule

__all__ = [
    "METHODS",
    "ReverseDiffusionState",
    "ReverseDiffusionInfo",
    "init",
    "build_kernel",
    "as_top_level_api",
    "count_score_evals",
]

METHODS = ("sde", "ode", "pc")


class ReverseDiffusionState(NamedTuple):
    """The latest sample. With ``t_start = T`` it only fixes the position's structure."""

    position: ArrayTree


class ReverseDiffusionInfo(NamedTuple):
    """``is_divergent``: a non-finite position or score anywhere along the trajectory or at
    its end (the state is returned as computed, flagged, never silently);
    ``num_score_evals``: score evaluations this step spent (fixed by the settings)."""

    is_divergent: jax.Array
    num_score_evals: jax.Array


def count_score_evals(
    method: str, num_steps: int, *, corrector_steps: int = 1, denoise: bool = True
) -> int:
    """Score evaluations per kernel step (per sample): ``sde`` N, ``ode`` 2N,
    ``pc`` (1 + corrector_steps) N, plus one for the Tweedie denoising step."""
    _check_method(method)
    per_move = {"sde": 1, "ode": 2, "pc": 1 + corrector_steps}[method]
    return per_move * num_steps + int(denoise)


def init(
    position: ArrayTree,
    time_score_fn: Callable,
    schedule: Schedule,
    rng_key: PRNGKey | None = None,
) -> ReverseDiffusionState:
    del rng_key  # accepted for blackjax.util.run_inference_algorithm
    check_schedule(schedule)
    check_time_score_output(time_score_fn, position, schedule)
    return ReverseDiffusionState(position)


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


def _check_method(method) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")


def build_kernel(method: str = "sde"):
    """Reverse-diffusion kernel for ``method`` in ``("sde", "ode", "pc")``:
    ``kernel(rng_key, state, time_score_fn, schedule, num_steps, t_start=None, snr=0.16, *,
    corrector_steps=1, denoise=True, spacing=None) -> (state, info)``."""
    _check_method(method)

    def kernel(
        rng_key: PRNGKey,
        state: ReverseDiffusionState,
        time_score_fn: Callable,
        schedule: Schedule,
        num_steps: int,
        t_start: float | None = None,
        snr: float = 0.16,
        *,
        corrector_steps: int = 1,
        denoise: bool = True,
        spacing: str | None = None,
    ) -> tuple[ReverseDiffusionState, ReverseDiffusionInfo]:
        check_schedule(schedule)
        t_start = resolve_t_start(schedule, t_start)
        flat, unravel = ravel_pytree(state.position)
        score = flat_time_score(time_score_fn, unravel)
        levels = grid_levels(schedule, num_steps, t_start, spacing, flat.dtype)
        if method == "sde":
            move = partial(_euler_maruyama_move, score)
        elif method == "ode":
            move = partial(_heun_move, score)
        else:
            move = partial(
                _predictor_corrector_move, score, snr=snr, corrector_steps=corrector_steps
            )

        now = jax.tree.map(lambda a: a[:-1], levels)
        nxt = jax.tree.map(lambda a: a[1:], levels)
        end = jax.tree.map(lambda a: a[-1], levels) if denoise else None
        x, is_divergent = walk_down(rng_key, flat, score, schedule, t_start, move, (now, nxt), end)
        evals = count_score_evals(
            method, num_steps, corrector_steps=corrector_steps, denoise=denoise
        )
        info = ReverseDiffusionInfo(is_divergent, jnp.asarray(evals))
        return ReverseDiffusionState(unravel(x)), info

    return kernel


def as_top_level_api(
    time_score_fn: Callable,
    schedule: Schedule,
    num_steps: int,
    method: str = "sde",
    t_start: float | None = None,
    snr: float = 0.16,
    *,
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
    scalar array of the position's dtype). ``method`` is ``"sde"``, ``"ode"`` or ``"pc"``
    (see the module docstring); ``num_steps`` the number of moves on
    ``schedule.time_grid(num_steps, t_start=t_start, spacing=spacing)``. ``t_start=None``
    (``T``) makes each step an independent draw from the prior pushed to ``t_min``; a
    ``t_start`` below ``T`` renoises the current state to ``t_start`` and denoises it back.
    ``snr`` and ``corrector_steps`` set the ``"pc"`` corrector; ``denoise`` applies Tweedie's
    formula at ``t_min``. Each step costs :func:`count_score_evals` score evaluations.
    """
    check_time_score(time_score_fn)
    check_schedule(schedule)
    _check_method(method)
    check_count(num_steps, "num_steps")
    check_count(corrector_steps, "corrector_steps")
    check_positive_scalar(snr, "snr")
    t_start = resolve_t_start(schedule, t_start)
    schedule.check_spacing(spacing)
    kernel = build_kernel(method)

    def init_fn(position, rng_key=None):
        return init(position, time_score_fn, schedule, rng_key)

    def step_fn(rng_key, state):
        return kernel(
            rng_key,
            state,
            time_score_fn,
            schedule,
            num_steps,
            t_start,
            snr,
            corrector_steps=corrector_steps,
            denoise=denoise,
            spacing=spacing,
        )

    return SamplingAlgorithm(init_fn, step_fn)
