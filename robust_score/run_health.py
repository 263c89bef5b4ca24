"""End-of-run checks that say, with what to do, when a run's draws should not be trusted.

Each problem is a warning that names it and its remedy:

- :class:`ConvergenceWarning`: R̂ above ``RHAT_THRESHOLD`` or bulk ESS below
  ``MIN_BULK_ESS`` (ArviZ's rank-normalized split R̂ and bulk ESS, Vehtari et al. 2021);
  judged only when each chain has at least ``MIN_DRAWS`` draws (as PyMC: fewer cannot tell).
  Every quantity is checked; beyond ``MAX_CHECKED_VALUES`` values the draws are thinned
  (keeping enough that the largest R̂ of well-mixed draws stays within ``RHAT_NOISE`` of 1),
  for a bounded cost at the end of every ``rs.run``.
- :class:`StepSizeWarning`: the warm-up shrank the step until a move spans less than
  ``MIN_STEP_OVER_SCALE`` of the posterior's sd along some coordinate.
- :class:`DivergenceWarning` (``rs.DivergenceWarning``): more than
  ``MAX_DIVERGENT_FRACTION`` of the moves after warm-up diverged.

``rs.run`` warns about the first (it counts divergent draws itself);
:func:`robust_score.numpyro.check_run` about all three after a NumPyro run.
"""

import math
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
    "RHAT_NOISE",
    "RHAT_THRESHOLD",
    "ConvergenceWarning",
    "DivergenceWarning",
    "RunProblem",
    "StepSizeWarning",
    "convergence_problems",
    "divergence_problems",
    "rhat_and_bulk_ess",
    "step_size_problems",
    "warn_problems",
]

RHAT_THRESHOLD = 1.01
MIN_BULK_ESS = 100
MIN_DRAWS = 100
# Past this many values (chains x draws x quantities) every quantity's draws are thinned
# evenly to fit: R̂ and bulk ESS (vectorized below) cost ~0.15 µs per value on a 2-core CPU,
# so the check stays near 5 ms, a few % of a run that long. Thinning by s leaves the bulk ESS
# as it was wherever the autocorrelation time exceeds s, and otherwise keeps it above the
# checked draws' count, far above MIN_BULK_ESS. It does raise R̂'s own noise: on well-mixed
# draws its sd is about sqrt(2 / (2C - 1)) / n for C chains of n draws, and the largest of k
# quantities' R̂ (bulk and folded) sits about sqrt(2 ln 2k) sds above 1. Enough draws are
# kept for that largest R̂ to stay within RHAT_NOISE of 1, half the threshold's margin (262
# draws per chain for 4 chains and 10 quantities, 476 for 10,000; 87 for 32 chains and 10).
MAX_CHECKED_VALUES = 40_000
RHAT_NOISE = 0.005
# values handled at once: the check's working memory (~60 bytes per value) stays near 6 MB
CHUNK_VALUES = 100_000
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


def _thinned_chunks(draws: Mapping[str, np.ndarray], stride: int):
    """Every ``stride``-th draw of every scalar of ``draws``, as ``(chain, draw, j)`` float
    arrays of consecutive quantities of about ``CHUNK_VALUES`` values each: only a chunk is
    copied at a time, so the check's memory stays small beside the run's."""
    views = []
    for value in draws.values():
        value = np.asarray(value)
        views.append(value.reshape(*value.shape[:2], -1)[:, ::stride])
    chains, kept = views[0].shape[:2]
    width = max(1, CHUNK_VALUES // (chains * kept))
    # float32 draws stay float32 (ranks are the same; the sorts read half the bytes)
    dtype = np.result_type(np.float32, *views)
    pieces, count = [], 0
    for view in views:
        start = 0
        while start < view.shape[2]:
            pieces.append(view[..., start : start + width - count])
            start, count = start + pieces[-1].shape[2], count + pieces[-1].shape[2]
            if count == width:
                yield np.concatenate(pieces, axis=2, dtype=dtype)
                pieces, count = [], 0
    if pieces:
        yield np.concatenate(pieces, axis=2, dtype=dtype)


def _stride(chains: int, num_draws: int, size: int) -> int:
    """The thinning that fits ``MAX_CHECKED_VALUES`` and keeps R̂'s noise at ``RHAT_NOISE``."""
    largest = math.sqrt(2 * math.log(2 * size))  # sds above 1 of the largest R̂
    steady = math.ceil(math.sqrt(2 / (2 * chains - 1)) * largest / RHAT_NOISE)
    kept = max(MIN_DRAWS, steady, -(-MAX_CHECKED_VALUES // (chains * size)))
    return max(1, num_draws // kept)


def _judged_quantities(flat: np.ndarray) -> np.ndarray:
    """The quantities with finite draws that vary: a float64 sum is finite exactly when every
    draw is (no boolean copy of the draws); a constant has nothing to judge."""
    return np.isfinite(np.sum(flat, axis=(0, 1), dtype=np.float64)) & (
        np.ptp(flat.reshape(-1, flat.shape[2]), axis=0) > 0
    )


def _z_scale(pooled: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rank-normalized ``(k, n)`` draws, ``order`` sorting each row: average ranks (ties
    share theirs, as ``scipy.stats.rankdata(method="average")``, several times slower per
    row) mapped by Blom's ``Φ⁻¹((r - 3/8) / (n + 1/4))`` (ArviZ's ``_z_scale``)."""
    from scipy import special

    ordered = np.take_along_axis(pooled, order, axis=-1)
    index = np.broadcast_to(np.arange(pooled.shape[-1]), pooled.shape)
    starts = np.ones(pooled.shape, bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.ones(pooled.shape, bool)
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=-1)
    last = np.flip(
        np.minimum.accumulate(np.flip(np.where(ends, index, index.shape[-1]), -1), -1), -1
    )
    ranks = np.empty(pooled.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=-1)
    return special.ndtri((ranks - 0.375) / (pooled.shape[-1] + 0.25))


def _folded_order(order: np.ndarray, folded: np.ndarray) -> np.ndarray:
    """The order sorting ``|x - median|`` from the order sorting ``x``: below the middle the
    folded values fall, above it they rise, so the two runs (the first reversed) are merged
    by a stable sort in one pass, where a fresh sort cost 7x as much."""
    middle = order.shape[-1] // 2
    runs = np.concatenate([order[..., :middle][..., ::-1], order[..., middle:]], axis=-1)
    merged = np.argsort(np.take_along_axis(folded, runs, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(runs, merged, axis=-1)


def _rhat(z: np.ndarray) -> np.ndarray:
    """Gelman–Rubin R̂ of ``(k, chain, draw)`` draws, per quantity."""
    num_draws = z.shape[2]
    between = num_draws * np.var(z.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(z, axis=2, ddof=1), axis=1)
    return np.sqrt((between / within + num_draws - 1) / num_draws)


def _ess(z: np.ndarray) -> np.ndarray:
    """ESS of ``(k, chain, draw)`` draws per quantity: FFT autocovariances and Geyer's
    initial monotone sequence over pairs of lags, vectorized as ArviZ's ``_ess`` loops."""
    from scipy import fft

    _, chains, n = z.shape
    centered = z - z.mean(axis=2, keepdims=True)
    size = fft.next_fast_len(2 * n)
    spectrum = fft.rfft(centered, n=size, axis=2)
    acov = fft.irfft(spectrum * np.conjugate(spectrum), n=size, axis=2)[..., :n] / n
    mean_var = acov[..., 0].mean(axis=1) * n / (n - 1)
    var_plus = mean_var * (n - 1) / n
    if chains > 1:
        var_plus = var_plus + np.var(z.mean(axis=2), axis=1, ddof=1)
    rho = 1 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (k, lag)
    rho[:, 0] = 1.0
    num_pairs = (n - 1) // 2  # ArviZ reads pairs of lags up to n - 2
    pairs = rho[:, 0 : 2 * num_pairs : 2] + rho[:, 1 : 2 * num_pairs : 2]
    # the initial positive sequence ends at the first pair that is not positive (or the last
    # pair read); its pairs made monotone; the even lag of the ending pair adds, if positive
    positive = pairs > 0
    ending = np.minimum(np.argmin(positive, axis=1) + positive.all(axis=1) * n, num_pairs - 1)
    kept = np.arange(num_pairs) < ending[:, None]
    monotone = np.minimum.accumulate(np.where(kept, pairs, np.inf), axis=1)
    tail = np.maximum(np.take_along_axis(rho[:, ::2], ending[:, None], axis=1)[:, 0], 0.0)
    tau = -1 + 2 * np.sum(np.where(kept, monotone, 0.0), axis=1) + tail
    tau = np.maximum(tau, 1 / np.log10(chains * n))
    return np.where(np.isnan(rho).any(axis=1), np.nan, chains * n / tau)


def rhat_and_bulk_ess(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalized split R̂ (the larger of the bulk and the folded one) and bulk ESS of
    every quantity of ``(chain, draw, k)`` draws, as ``arviz_stats.rhat`` and
    ``arviz_stats.ess(method="bulk")`` compute them (Vehtari et al. 2021), for all quantities
    at once (ArviZ loops over them in Python). R̂ is ``nan`` for one chain."""
    half = draws.shape[1] // 2
    # (k, chain, draw), each chain split in two: every reduction runs along contiguous draws
    split = np.concatenate(
        [draws[:, :half].transpose(2, 0, 1), draws[:, draws.shape[1] - half :].transpose(2, 0, 1)],
        axis=1,
    )
    pooled = split.reshape(split.shape[0], -1)
    order = np.argsort(pooled, axis=-1)
    bulk = _z_scale(pooled, order).reshape(split.shape)
    ess = _ess(bulk)
    if draws.shape[0] < 2:
        return np.full(draws.shape[2], np.nan), ess
    folded = np.abs(pooled - np.median(pooled, axis=1)[:, None])
    folded = _z_scale(folded, _folded_order(order, folded)).reshape(split.shape)
    return np.maximum(_rhat(bulk), _rhat(folded)), ess


def _judged_rhat_and_ess(draws, stride):
    """Which quantities are judged, and their R̂ and bulk ESS, a chunk at a time."""
    judged, rhat, ess = [], [], []
    for chunk in _thinned_chunks(draws, stride):
        judged.append(_judged_quantities(chunk))
        if judged[-1].any():
            chunk_rhat, chunk_ess = rhat_and_bulk_ess(chunk[..., judged[-1]])
            rhat.append(chunk_rhat)
            ess.append(chunk_ess)
    judged = np.concatenate(judged)
    if not judged.any():
        return judged, None, None
    return judged, np.concatenate(rhat), np.concatenate(ess)


def convergence_problems(
    draws, names: Sequence[str] | None = None, remedy: str = MODEL_REMEDY
) -> list[RunProblem]:
    """R̂ and bulk ESS (:func:`rhat_and_bulk_ess`) of every scalar of ``draws``
    (``{name: (chain, draw, ...)}``, or a ``(chain, draw, k)`` array with a name per
    coordinate in ``names``). Nothing is judged below ``MIN_DRAWS`` draws per chain; R̂ needs
    two chains. Past ``MAX_CHECKED_VALUES`` values every quantity's draws are thinned.
    Non-finite draws are left to the divergence checks, constants skipped. ``remedy``: what
    the warning advises (:data:`MODEL_REMEDY` for a NumPyro model, :data:`SCORE_REMEDY` for a
    score-driven run)."""
    if not isinstance(draws, Mapping):
        draws = {"": np.asarray(draws)}
        names = [f"coordinate {i}" for i in range(draws[""].shape[2])] if names is None else names
    elif not draws:
        return []
    else:
        names = coordinate_names({name: np.shape(value)[2:] for name, value in draws.items()})
    chains, num_draws = next(iter(draws.values())).shape[:2]
    if num_draws < MIN_DRAWS:
        return []
    stride = _stride(chains, num_draws, len(names))
    judged, rhat, ess = _judged_rhat_and_ess(draws, stride)
    if not judged.any():
        return []
    names = [name for name, keep in zip(names, judged, strict=True) if keep]
    checked = f"{len(names)} quantities" + (
        f", one in {stride} of their {num_draws} draws per chain" if stride > 1 else ""
    )
    problems = []
    worst = int(np.nanargmax(rhat)) if np.isfinite(rhat).any() else 0
    if chains >= 2 and not rhat[worst] <= RHAT_THRESHOLD:
        problems.append(
            RunProblem(
                "rhat",
                f"R̂ is {rhat[worst]:.4g} for {names[worst]} (above {RHAT_THRESHOLD} for "
                f"{int(np.sum(~(rhat <= RHAT_THRESHOLD)))} of {checked}): "
                f"the {chains} chains do not agree on one posterior yet. Run longer if "
                f"they are still approaching each other; if they stay apart or crawl, "
                f"{remedy}.",
                ConvergenceWarning,
            )
        )
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


def divergence_problems(diverging, what: str | None = None) -> list[RunProblem]:
    """A problem when more than ``MAX_DIVERGENT_FRACTION`` of the moves ``diverging``
    (``(chain, draw)`` booleans, after warm-up) were flagged divergent. ``what``: the cause
    and remedy to name (default: a Langevin or Hamiltonian step too large)."""
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
            f"diverged, more than {MAX_DIVERGENT_FRACTION:.0%}: "
            + (
                what
                or "the step is too large for the curvature where the chains went (a funnel's "
                "neck, a stiff tail), and the draws miss that region. Raise "
                f"target_accept_prob, {MODEL_REMEDY}."
            ),
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
