"""Score-driven kernels, one module per algorithm in BlackJAX's layout (``State``/``Info``
NamedTuples, ``init``, ``build_kernel``, ``as_top_level_api``). The user-facing factories
(``rs.ula``, ``rs.mala``, ...) are built from these modules in :mod:`robust_score`."""

from robust_score.kernels import (
    adaptation,
    annealed_langevin,
    integrators,
    mala,
    reverse_diffusion,
    ula,
)

__all__ = [
    "adaptation",
    "annealed_langevin",
    "integrators",
    "mala",
    "reverse_diffusion",
    "ula",
]
