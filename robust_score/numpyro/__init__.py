"""NumPyro drop-in kernels: write the model once, swap the kernel.

.. code::

    from numpyro.infer import MCMC
    import robust_score as rs

    mcmc = MCMC(rs.numpyro.ScoreLangevin(model, adjust=True), num_warmup=1000, num_samples=1000)

The classes are thin ``numpyro.infer.mcmc.MCMCKernel`` shells over the kernels in
:mod:`robust_score.kernels`: the moves are the same code ``rs.ula`` / ``rs.mala`` /
``rs.reverse_diffusion`` / ``rs.annealed_langevin`` run, in NumPyro's unconstrained space.
"""

import numpyro  # noqa: F401  (whole, before any submodule: see robust_score/__init__.py)

from robust_score.numpyro.posterior import DPS, AnnealedLikelihood
from robust_score.numpyro.run_check import check_run
from robust_score.numpyro.score_diffusion import ScoreDiffusion, ScoreDiffusionState
from robust_score.numpyro.score_langevin import ScoreLangevin, ScoreLangevinState
from robust_score.numpyro.score_prior import DensityUnknownError, ScorePrior
from robust_score.numpyro.transforms import constrained_score_to_unconstrained

__all__ = [
    "DPS",
    "AnnealedLikelihood",
    "DensityUnknownError",
    "ScoreDiffusion",
    "ScoreDiffusionState",
    "ScoreLangevin",
    "ScoreLangevinState",
    "ScorePrior",
    "check_run",
    "constrained_score_to_unconstrained",
]
