"""Unadjusted Langevin algorithm driven by any (possibly wrong) score."""

from collections.abc import Callable
from typing import NamedTuple

import jax
from blackjax.base import SamplingAlgorithm
from blackjax.types import ArrayTree, PRNGKey

from robust_score._checks import check_finite_tree, check_positive_scalar, check_score_output
from robust_score.kernels.integrators import all_finite, langevin_step

__all__ = ["ULAState", "ULAInfo", "init", "build_kernel", "as_top_level_api"]


class ULAState(NamedTuple):
    """The position. (The score is not carried: each step evaluates it once either way, and
    carrying it would cost the loop a second state array to read and write.)"""

    position: ArrayTree


class ULAInfo(NamedTuple):
    """``is_divergent``: the new position is non-finite, as it is whenever the score at the
    old one was (the step adds ``h s`` with ``h > 0``)."""

    is_divergent: jax.Array


def init(position: ArrayTree, score_fn: Callable, rng_key: PRNGKey | None = None) -> ULAState:
    del rng_key  # accepted for blackjax.util.run_inference_algorithm
    check_finite_tree(position, "position")
    check_score_output(score_fn, position)
    return ULAState(position)


def build_kernel():
    """ULA kernel: ``kernel(rng_key, state, score_fn, step_size) -> (state, info)``."""

    def kernel(
        rng_key: PRNGKey, state: ULAState, score_fn: Callable, step_size: float
    ) -> tuple[ULAState, ULAInfo]:
        position = langevin_step(rng_key, state.position, score_fn(state.position), step_size)
        return ULAState(position), ULAInfo(~all_finite(position))

    return kernel


def as_top_level_api(score_fn: Callable, step_size: float) -> SamplingAlgorithm:
    """ULA with step ``x' = x + h s(x) + sqrt(2h) z``, as a ``blackjax.SamplingAlgorithm``.

    .. code::

        ula = rs.ula(score_fn, step_size=0.05)
        state = ula.init(position)
        state, info = jax.jit(ula.step)(rng_key, state)

    ``score_fn`` maps a position (array or pytree) to an estimate of ``grad log p`` shaped like
    it. It need not be a gradient, nor be right: that is the point. ULA is biased by O(h)
    even with the exact score; see :func:`robust_score.mala` for the MH-corrected kernel.
    """
    if not callable(score_fn):
        raise TypeError(f"`score_fn` must be callable, got {type(score_fn).__name__}.")
    check_positive_scalar(step_size, "step_size")
    kernel = build_kernel()

    def init_fn(position, rng_key=None):
        return init(position, score_fn, rng_key)

    def step_fn(rng_key, state):
        return kernel(rng_key, state, score_fn, step_size)

    return SamplingAlgorithm(init_fn, step_fn)
