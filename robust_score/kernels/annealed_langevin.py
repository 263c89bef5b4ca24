"""Annealed Langevin dynamics (NCSN, Song & Ermon 2019) driven by a (possibly wrong) time score.

Langevin runs ``steps_per_level`` moves at each of ``num_levels`` noise levels
``t_1 = t_start > ... > t_L = t_min`` taken from the schedule's time grid, each move with the
score of that level, ``x' = x + h s(x, t_i) + sqrt(2 h) z`` (the project's one Langevin
integrator, :func:`robust_score.kernels.integrators.langevin_step`). Early levels see a
heavily smoothed target whose modes are connected, so the chain finds every mode with the
right mass before the later levels sharpen it; a chain at a level only ever visits where
``p_{t_i}`` has mass, which is where an L2-accurate score is accurate.

Step rules (at most one; neither means ``snr=0.16``, Song et al. 2021's value):

- ``step_size=eps``: NCSN's ``h_i = eps sigma_i^2 / sigma_L^2`` (``sigma_L = sigma(t_min)``),
  so ``eps`` is the step at the last level and ``h_i / sigma_i^2`` is the same at every level;
- ``snr=r``: Song et al. (2021)'s corrector rule ``h = 2 (r ||z|| / ||s||)^2`` at its
  noise-dominated value ``h_i = 2 r^2 sigma_i^2``, the same for every chain (a step that
  depended on the chain's own ``||s||`` would bias it: docs/diffusion.md, "Step rules for
  Langevin moves").

Both rules keep ``h_i / sigma_i^2`` fixed, and ``-Hess log p_t <= I / sigma^2`` makes any
``h_i < 2 sigma_i^2`` stable whatever the data.

Like :mod:`robust_score.kernels.reverse_diffusion`, a step starts from the prior
(``t_start = T``) or renoises the current state to ``t_start``, and ``denoise=True`` ends with
Tweedie's ``E[x_0 | x_{t_min}]``. Cost: ``num_levels * steps_per_level`` score evaluations,
plus one for denoising.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from blackjax.base import SamplingAlgorithm

from robust_score._checks import check_count, check_positive_scalar
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

#: The defaults of :class:`AnnealedLangevin` (and so of ``rs.annealed_langevin``): the
#: documented test setting (``docs/diffusion.md``: 100 levels x 10 moves, 1001 score
#: evaluations per draw) and Song et al. (2021)'s signal-to-noise ratio.
NUM_LEVELS, STEPS_PER_LEVEL, SNR = 100, 10, 0.16

__all__ = [
    "AnnealedLangevin",
    "AnnealedLangevinState",
    "AnnealedLangevinInfo",
    "init",
    "build_kernel",
    "as_top_level_api",
]


@dataclass(frozen=True)
class AnnealedLangevin(AnnealingPath):
    """Settings of an annealed-Langevin draw, checked once here; the kernel trusts them.

    ``steps_per_level`` Langevin moves (default 10) at each of ``num_levels`` noise levels
    (default 100), with at most one step rule: ``step_size`` (NCSN) or ``snr``
    (signal-to-noise); with neither, ``snr=0.16`` (stored so: the settings compare equal to
    ones that give it). The fields shared with :class:`ReverseDiffusion`
    (``schedule``, ``t_start``, ``denoise``, ``spacing``) say where a path starts and ends.
    """

    num_levels: int = NUM_LEVELS
    steps_per_level: int = STEPS_PER_LEVEL
    step_size: float | None = field(default=None, kw_only=True)
    snr: float | None = field(default=None, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        check_count(self.num_levels, "num_levels")
        check_count(self.steps_per_level, "steps_per_level")
        if self.step_size is not None and self.snr is not None:
            raise ValueError(
                "give at most one of `step_size` (NCSN rule eps * sigma_i^2 / sigma_min^2) or "
                f"`snr` (signal-to-noise rule; {SNR} when neither is given), got "
                f"step_size={self.step_size!r}, snr={self.snr!r}."
            )
        if self.step_size is not None:
            check_positive_scalar(self.step_size, "step_size")
        else:
            if self.snr is None:
                object.__setattr__(self, "snr", SNR)
            check_positive_scalar(self.snr, "snr")

    @property
    def num_score_evals(self) -> int:
        """Score evaluations per draw: one per Langevin move, plus one for denoising."""
        return self.num_levels * self.steps_per_level + int(self.denoise)

    def levels(self, dtype) -> Levels:
        """The schedule at the ``num_levels`` annealing times, ``t_start`` down to ``t_min``
        inclusive (NumPy constants, cached); a single level is ``t_min`` alone (plain
        Langevin after the start)."""
        levels = grid_levels(
            self.schedule, max(self.num_levels - 1, 1), self.t_start, self.spacing, dtype
        )
        if self.num_levels == 1:
            return Levels(*(a[-1:] for a in levels))
        return levels

    def step_sizes(self, levels: Levels):
        """The Langevin step at each level, by the chosen rule."""
        if self.step_size is not None:
            return self.step_size * (levels.sigma / levels.sigma[-1]) ** 2
        return snr_step_size(self.snr, levels.sigma)

    def moves(self, score, levels: Levels):
        """``steps_per_level`` Langevin moves per level, flattened into one entry per move."""
        per_move = [np.repeat(a, self.steps_per_level) for a in (levels.t, self.step_sizes(levels))]

        def move(key, x, t, h):
            return langevin_step(key, x, score(x, t), h)

        return move, per_move


# one state, info, init and kernel for every sampler that anneals from noise; the names are
# BlackJAX's module layout
AnnealedLangevinState = PathState
AnnealedLangevinInfo = PathInfo
init = _annealing.init
build_kernel = _annealing.build_kernel


def as_top_level_api(
    time_score_fn: Callable,
    schedule: Schedule,
    num_levels: int = NUM_LEVELS,
    steps_per_level: int = STEPS_PER_LEVEL,
    *,
    step_size: float | None = None,
    snr: float | None = None,
    t_start: float | None = None,
    denoise: bool = True,
    spacing: str | None = None,
) -> SamplingAlgorithm:
    """Annealed Langevin dynamics as a ``blackjax.SamplingAlgorithm``.

    .. code::

        sampler = rs.annealed_langevin(time_score_fn, rs.schedules.ve(), num_levels=100,
                                       steps_per_level=10, step_size=2e-5)
        state = sampler.init(jnp.zeros(dim))    # a template: shape, dtype, pytree structure
        state, info = jax.jit(sampler.step)(rng_key, state)   # state.position ~ p

    Give at most one of ``step_size`` (NCSN rule; Song & Ermon use ``eps = 2e-5`` with
    ``sigma_min = 0.01``, i.e. ``h_i = 0.2 sigma_i^2``) or ``snr`` (``0.16`` in Song et al.
    2021, the default when neither is given); ``rs.annealed_langevin(time_score_fn,
    schedule)`` runs 100 levels x 10 moves at ``snr=0.16``. The arguments are the fields of
    :class:`AnnealedLangevin`
    (``AnnealedLangevin(...).sampling_algorithm(time_score_fn)`` is the same sampler); see
    the module docstring for the levels, the rules and the cost per step.
    """
    settings = AnnealedLangevin(
        schedule,
        num_levels,
        steps_per_level,
        step_size=step_size,
        snr=snr,
        t_start=t_start,
        denoise=denoise,
        spacing=spacing,
    )
    return settings.sampling_algorithm(time_score_fn)
