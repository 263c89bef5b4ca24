"""robust-score: score-driven samplers that accept a possibly wrong score, and diagnostics
that tell when Langevin is trapped.

.. code::

    import robust_score as rs
    algorithm = rs.ula(score_fn, step_size=0.05)      # a blackjax.SamplingAlgorithm
    tree = rs.run(algorithm, key, initial_positions, num_steps=1000)   # an xarray.DataTree

The public names load on first use: ``import robust_score`` alone imports neither JAX nor
the samplers, so the ``robust-score`` command answers ``--help`` at once. It changes nothing
in the import system: ``rs.run`` is the function, and the module that defines it is
:mod:`robust_score.sampling`.

NumPyro is imported whole (``import numpyro``) before ArviZ by each module that imports
ArviZ, and before NumPyro's submodules by :mod:`robust_score.numpyro` (for all its modules)
and the checks. arviz_base otherwise registers ``numpyro`` as a lazily loaded module, and
when that load is set off by an import of a submodule (``from numpyro.infer import MCMC``),
``numpyro.infer`` is executed a second time, into a module without its submodule
attributes: ``numpyro.infer.util`` and ``arviz_base.from_numpyro`` (which reads
``numpyro.infer.initialization``) then fail. A plain ``import numpyro`` loads such a lazy
module whole, so this holds also when the user imported arviz_base first.
"""

import importlib as _importlib
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("robust-score")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "AnnealedLangevin",
    "ConvergenceWarning",
    "DivergenceWarning",
    "ReverseDiffusion",
    "RunState",
    "StepSizeWarning",
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
    "ula_adaptation",
]


def _load() -> dict:
    """Import the library and bind its public names here (once; later calls are free)."""
    namespace = globals()
    if "ula" in namespace:
        return namespace
    from blackjax import GenerateSamplingAPI

    # import_module, not `from robust_score import ...`, which would ask __getattr__ again
    diagnostics, kernels, learn, numpyro, schedules, scores = (
        _importlib.import_module(f"robust_score.{name}")
        for name in ("diagnostics", "kernels", "learn", "numpyro", "schedules", "scores")
    )
    from robust_score.batch import sample_batch
    from robust_score.kernels import annealed_langevin, mala, reverse_diffusion, ula
    from robust_score.kernels.adaptation import mala_adaptation, ula_adaptation
    from robust_score.kernels.annealed_langevin import AnnealedLangevin
    from robust_score.kernels.reverse_diffusion import ReverseDiffusion
    from robust_score.run_health import ConvergenceWarning, DivergenceWarning, StepSizeWarning
    from robust_score.sampling import RunState, run, sample_chains

    def factory(module):
        return GenerateSamplingAPI(module.as_top_level_api, module.init, module.build_kernel)

    namespace.update(
        AnnealedLangevin=AnnealedLangevin,
        ConvergenceWarning=ConvergenceWarning,
        DivergenceWarning=DivergenceWarning,
        ReverseDiffusion=ReverseDiffusion,
        RunState=RunState,
        StepSizeWarning=StepSizeWarning,
        diagnostics=diagnostics,
        annealed_langevin=factory(annealed_langevin),
        kernels=kernels,
        learn=learn,
        mala=factory(mala),
        mala_adaptation=mala_adaptation,
        numpyro=numpyro,
        reverse_diffusion=factory(reverse_diffusion),
        run=run,
        sample_batch=sample_batch,
        sample_chains=sample_chains,
        schedules=schedules,
        scores=scores,
        ula=factory(ula),
        ula_adaptation=ula_adaptation,
    )
    return namespace


def __getattr__(name: str):
    if name in __all__:
        return _load()[name]
    raise AttributeError(f"module 'robust_score' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
