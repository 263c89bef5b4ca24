"""robust-score: score-driven samplers that accept a possibly wrong score, and diagnostics
that tell when Langevin is trapped.

.. code::

    import robust_score as rs
    algorithm = rs.ula(score_fn, step_size=0.05)      # a blackjax.SamplingAlgorithm
    tree = rs.run(algorithm, key, initial_positions, num_steps=1000)   # an xarray.DataTree

The public names load on first use: ``import robust_score`` alone imports neither JAX nor
the samplers, so the ``robust-score`` command answers ``--help`` at once.
"""

import importlib as _importlib
import sys as _sys
import types as _types
from importlib import abc as _abc
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


class _NumpyroBeforeArviz(_abc.MetaPathFinder):
    """Imports numpyro before arviz_base, whatever imports arviz_base first (``rs.run``, the
    diagnostics, user code). arviz_base.io_numpyro loads numpyro through lazy_loader, and a
    numpyro imported under that lazy module leaves its submodules off their parents'
    attributes: ``numpyro.infer.util`` and ``arviz_base.from_numpyro`` (which reads
    ``numpyro.infer.initialization``) then fail. Finds nothing itself."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "arviz_base" and "numpyro" not in _sys.modules:
            import numpyro  # noqa: F401

        return None


if not any(type(finder).__name__ == "_NumpyroBeforeArviz" for finder in _sys.meta_path):
    _sys.meta_path.insert(0, _NumpyroBeforeArviz())


def _load() -> dict:
    """Import the library and bind its public names here (once; later calls are free)."""
    namespace = globals()
    if "ula" in namespace:
        return namespace
    import numpyro.infer as numpyro_infer

    # When arviz_base (which registers `numpyro` through lazy_loader) was imported before
    # robust_score, numpyro.infer.initialization ends up in sys.modules but not as an
    # attribute of numpyro.infer, and arviz_base.from_numpyro, which reads it as one, fails.
    # Re-attach it. (After `import robust_score`, _NumpyroBeforeArviz keeps the order.)
    if not hasattr(numpyro_infer, "initialization"):
        numpyro_infer.initialization = _sys.modules["numpyro.infer.initialization"]

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
    from robust_score.run import DivergenceWarning, RunState, run, sample_chains
    from robust_score.run_health import ConvergenceWarning, StepSizeWarning

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


class _Package(_types.ModuleType):
    """``rs.run`` is the function even once the submodule ``robust_score.run`` is imported:
    the import system then sets the package's attribute ``run`` to the submodule (which
    stays reachable as ``sys.modules["robust_score.run"]``)."""

    @property
    def run(self):
        return _load()["run"]

    @run.setter
    def run(self, value):
        pass


_sys.modules[__name__].__class__ = _Package
