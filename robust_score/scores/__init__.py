"""What a score is: exact scores, adapters, the memorizing empirical score, the paper's trap
constructions, error measures.

A score is ``score_fn(x) -> grad log p(x)`` shaped like ``x`` (``x`` may be a pytree); a time
score is ``score_fn(x, t) -> grad log p_t(x)`` under a :mod:`robust_score.schedules` schedule.
"""

from robust_score.scores.adapters import (
    ScoreAtTime,
    at_time,
    from_denoiser,
    from_eps_prediction,
    from_v_prediction,
    from_x0_prediction,
)
from robust_score.scores.empirical import empirical_logdensity, empirical_score
from robust_score.scores.exact import (
    from_logdensity,
    gaussian,
    gaussian_logdensity,
    gaussian_mixture,
    gaussian_mixture_logdensity,
)
from robust_score.scores.metrics import l2_error
from robust_score.scores.traps import (
    blend_weight,
    center_trap,
    center_trap_time,
    memorization_trap,
    memorization_trap_time,
)

__all__ = [
    "ScoreAtTime",
    "at_time",
    "blend_weight",
    "center_trap",
    "center_trap_time",
    "empirical_logdensity",
    "empirical_score",
    "from_denoiser",
    "from_eps_prediction",
    "from_logdensity",
    "from_v_prediction",
    "from_x0_prediction",
    "gaussian",
    "gaussian_logdensity",
    "gaussian_mixture",
    "gaussian_mixture_logdensity",
    "l2_error",
    "memorization_trap",
    "memorization_trap_time",
]
