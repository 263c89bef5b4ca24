"""Score-driven kernels, one module per algorithm in BlackJAX's layout (``State``/``Info``
NamedTuples, ``init``, ``build_kernel``, ``as_top_level_api``). The user-facing factories
(``rs.ula``, ``rs.mala``, ...) are built from these modules in :mod:`robust_score`."""

from robust_score.kernels import adaptation, integrators, mala, ula

__all__ = ["adaptation", "integrators", "mala", "ula"]
