"""robust-score: score-driven samplers that accept a possibly wrong score, and diagnostics
that tell when Langevin is trapped.

.. code::

    import robust_score as rs
    algorithm = rs.ula(score_fn, step_size=0.05)      # a blackjax.SamplingAlgorithm
    tree = rs.run(algorithm, key, initial_positions, num_steps=1000)   # an xarray.DataTree
"""

from blackjax import GenerateSamplingAPI

from robust_score import kernels, schedules, scores
from robust_score.kernels import mala as _mala
from robust_score.kernels import ula as _ula
from robust_score.kernels.adaptation import mala_adaptation
from robust_score.run import DivergenceWarning, run

__version__ = "0.1.0"

ula = GenerateSamplingAPI(_ula.as_top_level_api, _ula.init, _ula.build_kernel)
mala = GenerateSamplingAPI(_mala.as_top_level_api, _mala.init, _mala.build_kernel)

__all__ = [
    "DivergenceWarning",
    "kernels",
    "mala",
    "mala_adaptation",
    "run",
    "schedules",
    "scores",
    "ula",
]
