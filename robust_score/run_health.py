"""End-of-run checks that say, with what to do, when a run's draws should not be trusted.

Each problem is a warning that names it and its remedy:

- :class:`ConvergenceWarning`: R̂ above ``RHAT_THRESHOLD`` or bulk ESS below
  ``MIN_BULK_ESS`` (ArviZ's rank-normalized split R̂ and bulk ESS, Vehtari et al. 2021);
  judged only when each chain has at least ``MIN_DRAWS`` draws (as PyMC: fewer cannot tell),
  on at most ``MAX_CHECKED_VALUES`` draws in all (an evenly spaced subset of the quantities
  beyond that, for a bounded cost at the end of every ``rs.run``).
- :class:`StepSizeWarning`: the warm-up shrank the step until a move spans less than
  ``MIN_STEP_OVER_SCALE`` of the posterior's sd along some coordinate.
- :class:`DivergenceWarning` (``rs.DivergenceWarning``): more than
  ``MAX_DIVERGENT_FRACTION`` of the moves after warm-up diverged.

``rs.run`` warns about the first (it counts divergent draws itself);
:func:`robust_score.numpyro.check_run` about all three after a NumPyro run.
"""

import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "MAX_CHECKED_VALUES",
    "MAX_DIVERGENT_FRACTION",
    "MIN_BULK_ESS",
    "MIN_DRAWS",
    "MIN_STEP_OVER_SCALE",
    "RHAT_THRESHOLD",
    "ConvergenceWarning",
    "DivergenceWarning",
    "RunProblem",
    "StepSizeWarning",
    "convergence_problems",
    "divergence_problems",
    "step_size_problems",
    "warn_problems",
]

RHAT_THRESHOLD = 1.01
MIN_BULK_ESS = 100
MIN_DRAWS = 100
# R̂ and ESS together cost ~1 µs per value on a 2-core CPU (64 chains x 500 draws x 784
# pixels: 18 s; 4 x 1000 x 200: 0.9 s, 60x the sampling itself): above this many values
# (about 0.1 s) an evenly spaced subset of the quantities is checked, so the check at the end
# of every `rs.run` never costs more than a fraction of a second
MAX_CHECKED_VALUES = 100_000
# A divergent MALA move is a rejected one: a few cost a few moves; hard geometry shows in R̂
# and ESS first. Measured (benchmarks/hard_geometry.py, docs/numpyro.md): MALA's moves on
# non-centred eight schools, whose estimates are right, diverge at 0.8 % (its τ tail is
# stiffer than the step); the failed runs' at 0.2-1.5 %, which R̂ and ESS catch.
MAX_DIVERGENT_FRACTION = 0.05
# A diffusion of moves of sd ``r`` (in posterior sds) needs ~1/r² moves to cross the
# posterior: at 0.1, a hundred. Measured at the end of warm-up: 0.64-1.4 on the clean
# targets of benchmarks/hard_geometry.py, 0.03-0.06 on the stuck horseshoe chains. MALA's
# optimal step falls as d^(-1/6): 0.1 is reached near d = 10^6.
MIN_STEP_OVER_SCALE = 0.1

# what to do, for a NumPyro model and for a run driven by a score alone (rs.run), where
# chains that stay apart may each sit in a mode or a well of the score
MODEL_REMEDY = (
    "reparameterize the model (e.g. non-centred), precondition it "
    "(adapt_mass_matrix=True, dense_mass=True), use NUTS when the model has a log density, "
    "or, with a score of your own, check it with rs.diagnostics.trap_report"
)
SCORE_REMEDY = (
    "precondition the sampler (rs.mala_adaptation, rs.ula_adaptation); chains that stay "
    "apart may each sit in a mode or in a well of the score, where a longer run does not "
    "help: start many chains from fresh draws (e.g. reverse diffusion) and check the run "
    "with rs.diagnostics.trap_report(tree, sampler=...)"
)


class ConvergenceWarning(RuntimeWarning):
    """The chains disagree (R̂) or hold too few effective draws (bulk ESS) to trust."""


class DivergenceWarning(RuntimeWarning):
    """Some draws of a run were flagged divergent: a non-finite position, score or density,
    a MALA move whose log acceptance ratio fell below its divergence threshold, or a ULA
    move stiffer than its step (see each kernel's ``Info.is_divergent``)."""


class StepSizeWarning(RuntimeWarning):
    """The warm-up left a step too small for the chains to cross the posterior."""


class RunProblem(NamedTuple):
    """One problem of a run: ``kind`` (``"rhat"``, ``"ess"``, ``"step_size"`` or
    ``"divergences"``), the ``message`` with its remedy, the warning ``category``."""

    kind: str
    message: str
    category: type


def coordinate_names(shapes: Mapping[str, tuple]) -> list[str]:
    """``name`` or ``name[i, j]`` for every scalar of each variable, in C order."""
    names = []
    for name, shape in shapes.items():
        if not shape:
            names.append(name)
            continue
        for index in np.ndindex(*shape):
            names.append(f"{name}[{', '.join(map(str, index))}]")
    return names


def _flatten(draws: Mapping[str, np.ndarray]):
    """``(chain, draw, k)`` float64 array of every scalar of ``draws`` and their names."""
    arrays = {name: np.asarray(value) for name, value in draws.items()}
    shapes = {name: value.shape[2:] for name, value in arrays.items()}
    chains, num_draws = next(iter(arrays.values())).shape[:2]
    flat = np.concatenate(
        [value.reshape(chains, num_draws, -1).astype(np.float64) for value in arrays.values()],
        axis=2,
    )
    return flat, coordinate_names(shapes)


def convergence_problems(
    draws, names: Sequence[str] | None = None, remedy: str = MODEL_REMEDY
) -> list[RunProblem]:
    """R̂ and bulk ESS of every scalar of ``draws`` (``{name: (chain, draw, ...)}``, or a
    ``(chain, draw, k)`` array with a name per coordinate in ``names``), by ``arviz_stats``.
    Nothing is judged below ``MIN_DRAWS`` draws per chain; R̂ needs two chains. Non-finite
    draws are left to the divergence checks. ``remedy``: what the warning advises
    (:data:`MODEL_REMEDY` for a NumPyro model, :data:`SCORE_REMEDY` for a score-driven run)."""
    import numpyro  # isort: skip  # noqa: F401  (before ArviZ: robust_score/__init__.py)
    import arviz_stats

    if isinstance(draws, Mapping):
        if not draws:
            return []
        flat, names = _flatten(draws)
    else:
        flat = np.asarray(draws, np.float64)
        names = [f"coordinate {i}" for i in range(flat.shape[2])] if names is None else names
    chains, num_draws = flat.shape[:2]
    finite = np.all(np.isfinite(flat), axis=(0, 1))
    if num_draws < MIN_DRAWS or not finite.any():
        return []
    flat, names = flat[..., finite], [n for n, keep in zip(names, finite, strict=True) if keep]
    total = len(names)
    budget = max(1, MAX_CHECKED_VALUES // (chains * num_draws))
    if total > budget:
        kept = np.unique(np.linspace(0, total - 1, budget).round().astype(int))
        flat, names = flat[..., kept], [names[i] for i in kept]
    checked = f"{len(names)} quantities" + (f" checked of {total}" if len(names) < total else "")
    problems = []
    if chains >= 2:
        rhat = np.asarray(arviz_stats.rhat(flat))
        worst = int(np.nanargmax(rhat)) if np.isfinite(rhat).any() else 0
        if not rhat[worst] <= RHAT_THRESHOLD:
            problems.append(
                RunProblem(
                    "rhat",
                    f"R̂ is {rhat[worst]:.3g} for {names[worst]} (above {RHAT_THRESHOLD} for "
                    f"{int(np.sum(~(rhat <= RHAT_THRESHOLD)))} of {checked}): "
                    f"the {chains} chains do not agree on one posterior yet. Run longer if "
                    f"they are still approaching each other; if they stay apart or crawl, "
                    f"{remedy}.",
                    ConvergenceWarning,
                )
            )
    ess = np.asarray(arviz_stats.ess(flat, method="bulk"))
    worst = int(np.nanargmin(ess)) if np.isfinite(ess).any() else 0
    if not ess[worst] >= MIN_BULK_ESS:
        problems.append(
            RunProblem(
                "ess",
                f"bulk ESS is {ess[worst]:.0f} for {names[worst]} (below {MIN_BULK_ESS} for "
                f"{int(np.sum(~(ess >= MIN_BULK_ESS)))} of {checked}) from "
                f"{chains} x {num_draws} draws: means and intervals are not yet reliable. "
                f"Run longer; if the ESS per draw stays this low, {remedy}.",
                ConvergenceWarning,
            )
        )
    return problems


def divergence_problems(diverging) -> list[RunProblem]:
    """A problem when more than ``MAX_DIVERGENT_FRACTION`` of the moves ``diverging``
    (``(chain, draw)`` booleans, after warm-up) were flagged divergent."""
    diverging = np.asarray(diverging, bool)
    if diverging.ndim == 1:
        diverging = diverging[None]
    count, size = int(diverging.sum()), diverging.size
    if not size or count <= MAX_DIVERGENT_FRACTION * size:
        return []
    chains = int(diverging.any(axis=1).sum())
    return [
        RunProblem(
            "divergences",
            f"{count} of {size} moves after warm-up ({chains} of {diverging.shape[0]} chains) "
            f"diverged, more than {MAX_DIVERGENT_FRACTION:.0%}: the step is too large for the "
            "curvature where the chains went (a funnel's neck, a stiff tail), and the draws "
            f"miss that region. Raise target_accept_prob, {MODEL_REMEDY}.",
            DivergenceWarning,
        )
    ]


def step_size_problems(
    step_size, inverse_mass_diagonal, draws, names: Sequence[str] | None = None
) -> list[RunProblem]:
    """A problem when a chain's Langevin move ``sqrt(2 h M⁻¹_ii)`` spans less than
    ``MIN_STEP_OVER_SCALE`` of the posterior sd of some coordinate ``i``.

    ``step_size``: per chain ``(chain,)`` or one for all; ``inverse_mass_diagonal``: the
    diagonal of ``M⁻¹`` per chain ``(chain, k)`` or shared ``(k,)``, ``None`` for the
    identity; ``draws``: ``(chain, draw, k)`` in the coordinates the moves take (the sd is
    pooled over chains, so chains stuck apart count their spread)."""
    draws = np.asarray(draws, np.float64)
    chains, _, size = draws.shape
    if not np.all(np.isfinite(draws)):
        return []
    step = np.broadcast_to(np.asarray(step_size, np.float64).reshape(-1, 1), (chains, 1))
    diagonal = np.ones(size) if inverse_mass_diagonal is None else inverse_mass_diagonal
    diagonal = np.broadcast_to(np.asarray(diagonal, np.float64), (chains, size))
    sd = draws.reshape(-1, size).std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(2 * step * diagonal) / sd  # (chain, k); a constant coordinate: inf
    chain, coordinate = np.unravel_index(np.argmin(ratio), ratio.shape)
    if not ratio[chain, coordinate] < MIN_STEP_OVER_SCALE:
        return []
    name = names[coordinate] if names is not None else f"coordinate {coordinate}"
    collapsed = int(np.sum(np.min(ratio, axis=1) < MIN_STEP_OVER_SCALE))
    return [
        RunProblem(
            "step_size",
            f"the warm-up left a step of {float(step[chain, 0]):.3g} ({collapsed} of {chains} "
            f"chains): a move spans {ratio[chain, coordinate]:.2g} of the posterior sd of "
            f"{name}, below {MIN_STEP_OVER_SCALE}, so the chains need more than "
            f"{1 / ratio[chain, coordinate] ** 2:.0f} moves to cross it. The warm-up shrank "
            f"the step to fit a stiffer region (a funnel's neck, a heavy tail): {MODEL_REMEDY}.",
            StepSizeWarning,
        )
    ]


def warn_problems(problems: Sequence[RunProblem], stacklevel: int = 2) -> None:
    """Issue each problem as its warning; ``stacklevel`` as for ``warnings.warn`` from the
    caller's frame."""
    for problem in problems:
        warnings.warn(problem.message, problem.category, stacklevel=stacklevel + 1)


def warn_about_run(tree, stacklevel: int = 2) -> list[RunProblem]:
    """:func:`convergence_problems` of an ``rs.run`` tree's posterior, warned about."""
    posterior = tree["posterior"]
    draws = {str(name): posterior[name].values for name in posterior.data_vars}
    problems = convergence_problems(draws, remedy=SCORE_REMEDY)
    warn_problems(problems, stacklevel + 1)
    return problems
