"""robust-score: score-driven samplers that accept a possibly wrong score, and diagnostics
that tell when Langevin is trapped.

.. code::

    import robust_score as rs
    algorithm = rs.ula(score_fn, step_size=0.05)      # a blackjax.SamplingAlgorithm
    tree = rs.run(algorithm, key, initial_positions, num_steps=1000)   # an xarray.DataTree
"""

import sys

import numpyro.infer as _numpyro_infer  # aliased: a bare `numpyro` would shadow rs.numpyro
from blackjax import GenerateSamplingAPI

# When arviz_base (which registers `numpyro` through lazy_loader) is imported before numpyro,
# numpyro.infer.initialization ends up in sys.modules but not as an attribute of
# numpyro.infer, and arviz_base.from_numpyro, which reads it as one, fails. Re-attach it.
if not hasattr(_numpyro_infer, "initialization"):
    _numpyro_infer.initialization = sys.modules["numpyro.infer.initialization"]

from robust_score import diagnostics, kernels, learn, numpyro, schedules, scores
from robust_score.batch import sample_batch
from robust_score.kernels import annealed_langevin as _annealed_langevin
from robust_score.kernels import mala as _mala
from robust_score.kernels import reverse_diffusion as _reverse_diffusion
from robust_score.kernels import ula as _ula
from robust_score.kernels.adaptation import mala_adaptation
from robust_score.kernels.annealed_langevin import AnnealedLangevin
from robust_score.kernels.reverse_diffusion import ReverseDiffusion
from robust_score.run import DivergenceWarning, RunState, run, sample_chains

__version__ = "0.1.0"

ula = GenerateSamplingAPI(_ula.as_top_level_api, _ula.init, _ula.build_kernel)
mala = GenerateSamplingAPI(_mala.as_top_level_api, _mala.init, _mala.build_kernel)
annealed_langevin = GenerateSamplingAPI(
    _annealed_langevin.as_top_level_api, _annealed_langevin.init, _annealed_langevin.build_kernel
)
reverse_diffusion = GenerateSamplingAPI(
    _reverse_diffusion.as_top_level_api, _reverse_diffusion.init, _reverse_diffusion.build_kernel
)

__all__ = [
    "AnnealedLangevin",
    "DivergenceWarning",
    "ReverseDiffusion",
    "RunState",
    "diagnostics",
    "annealed_langevin",
    "kernels",
    "learn",
    "mala",
    "mala_adaptation",
    "numpyro",
    "reverse_diffusion",
    "run",
    "sample_batch",
    "sample_chains",
    "schedules",
    "scores",
    "ula",
]
