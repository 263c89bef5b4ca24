"""What the checks share: random streams, the user's kept draws, quiet sampler runs, the
energy comparison of two samples and its verdict, R-hat helpers and the dimension check."""

import math
import warnings
from typing import NamedTuple

import numpyro  # isort: skip  # noqa: F401  (before ArviZ: see robust_score/__init__.py)
import arviz_stats
import jax
import numpy as np

from robust_score._checks import check_key
from robust_score.diagnostics._data import Draws
from robust_score.diagnostics.result import CheckResult
from robust_score.diagnostics.statistics import (
    effective_sample_size,
    energy_statistics,
    energy_test,
    ks_test,
    principal_directions,
    subsample,
    thin_to,
)
from robust_score.diagnostics.thresholds import (
    DECISIVE_ENERGY,
    DECISIVE_MODE_KS,
    DECISIVE_RADIAL_KS,
    ENERGY_FAIL,
    ENERGY_WARN,
    KS_FAIL,
    KS_WARN,
    MIN_ESS,
    MIN_KEPT_DRAWS,
    MIN_RUN_ESS,
    MODE_DIRECTIONS,
    P_FAIL,
    P_WARN,
)

# the ESS of a sample is read on at most this many coordinates (rank normalization costs
# O(draws log draws) each), and principal directions from at most this many points
_ESS_COORDINATES = 64
_MAX_PCA_POINTS = 500

__all__ = [
    "as_chains",
    "check_dim",
    "compare",
    "describe",
    "energy_result",
    "energy_status",
    "flatten_draws",
    "kept_points",
    "match_length",
    "numpy_rng",
    "per_variable_rhat",
    "pooled",
    "rhat_1d",
    "run_quietly",
    "second_half",
    "statistic_label",
    "too_short",
    "unconverged_explanation",
]


def numpy_rng(rng_key):
    """``(rng_key, numpy Generator)``: the key (``None``: ``jax.random.key(0)``) and a NumPy
    stream seeded from it, for subsampling."""
    rng_key = jax.random.key(0) if rng_key is None else check_key(rng_key)
    seed = int(jax.random.randint(rng_key, (), 0, 2**31 - 1))
    return rng_key, np.random.default_rng(seed)


def second_half(draws: Draws) -> np.ndarray:
    """``(chain, draw/2, dim)``: the first half of each chain is treated as burn-in."""
    return draws.flat[:, draws.flat.shape[1] // 2 :]


def pooled(array: np.ndarray) -> np.ndarray:
    """``(..., dim)`` -> ``(n, dim)``."""
    return array.reshape(-1, array.shape[-1])


def kept_points(draws: Draws) -> np.ndarray:
    """The user's kept draws (second halves), chains pooled: ``(n, dim)``."""
    return pooled(second_half(draws))


def flatten_draws(positions) -> np.ndarray:
    """Positions pytree with leading ``(chain, draw)`` axes -> ``(chain, draw, dim)``."""
    leaves = jax.tree.leaves(positions)
    chains, draws = leaves[0].shape[:2]
    return np.concatenate(
        [np.asarray(leaf, np.float64).reshape(chains, draws, -1) for leaf in leaves], axis=-1
    )


def match_length(chains: np.ndarray, length: int) -> np.ndarray:
    """Resample each chain's draws to ``length`` evenly spaced ones (for a joint R-hat)."""
    if chains.shape[1] == length or len(chains) == 0:
        return chains
    index = np.linspace(0, chains.shape[1] - 1, length).round().astype(int)
    return chains[:, index]


def check_dim(matrix, dim, name, other="the posterior draws"):
    """``matrix`` (``(n, d)``) unchanged if ``d == dim``, else a ``ValueError`` naming it."""
    if matrix.shape[1] != dim:
        raise ValueError(
            f"`{name}` has {matrix.shape[1]} entries per point but {other} have {dim}."
        )
    return matrix


def run_quietly(sampler, rng_key, positions, num_steps: int, thin: int = 1):
    """The positions of ``rs.sample_chains`` without its warnings (divergent chains are
    reported by the checks)."""
    from robust_score.sampling import sample_chains

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positions, _, _ = sample_chains(sampler, rng_key, positions, num_steps, thin=thin)
    return positions


# (statistic, what its effect is called, fail effect, warn effect, decisive effect); the
# energy coefficient's effect thresholds are its guard (its permutation p-value stops at
# 1/201), the KS distances' p-values are exact enough to be corrected for the number of tests
_STATISTICS = (
    ("joint", "energy coefficient", ENERGY_FAIL, ENERGY_WARN, DECISIVE_ENERGY),
    ("radial", "radial KS distance", KS_FAIL, KS_WARN, DECISIVE_RADIAL_KS),
    ("mode mass", "mode-mass KS distance", KS_FAIL, KS_WARN, DECISIVE_MODE_KS),
)
_SEVERITY = {"ok": 0, "warn": 1, "fail": 2}


def _grade(stat: dict, fail_effect: float, warn_effect: float) -> str:
    """One statistic's verdict from its effect and p-value."""
    effect, p_value = stat["effect"], stat["p_value"]
    if not math.isfinite(effect):
        return "ok"
    if p_value < P_FAIL and effect > fail_effect:
        return "fail"
    if p_value < P_WARN and effect > warn_effect:
        return "warn"
    return "ok"


def energy_status(comparison: dict) -> str:
    """The verdict of a :func:`compare` result, and ``comparison["decided_by"]``, the
    statistic that decided.

    Only statistics whose quantity has at least ``MIN_ESS`` effective draws in the user's
    run can judge, except that a decisive effect (samples that barely overlap, significant
    at the effective sizes) fails at any ESS when the other sample has ``MIN_ESS``. The
    worst of their ``fail`` / ``warn`` decides; when none flags, the run is ``unconverged``
    if no statistic could judge or its own ESS (``comparison["ess"]``: the median over
    coordinates, and along the leading principal direction) is below ``MIN_RUN_ESS``, else
    ``ok``. ``skipped`` for too few draws per chain."""
    if "skip_reason" in comparison:
        return "skipped"
    statistics = comparison["statistics"]
    judged = {row[0]: row for row in _STATISTICS if statistics[row[0]]["ess"] >= MIN_ESS}
    grades = {name: _grade(statistics[name], *row[2:4]) for name, row in judged.items()}
    # decisive evidence at a low ESS needs another sample that is itself well mixed: restarts
    # still on their way in from far starts differ from anything, decisively
    settled = comparison["ess_other"] >= MIN_ESS
    for name, *_, decisive in _STATISTICS:
        stat = statistics[name]
        low = name not in judged and settled
        if low and stat["effect"] >= decisive and stat["p_value"] < P_FAIL:
            grades[name] = "fail"
            comparison["decided_at_low_ess"] = True

    def weight(index):
        # the worst grade, then the largest effect for its threshold; among statistics that
        # flag nothing, the one nearest to significance, then the first listed
        name, _, fail_effect, *_ = _STATISTICS[index]
        grade = _SEVERITY[grades[name]] if name in grades else -1
        if grade > 0:
            return grade, _finite_or_zero(statistics[name]["effect"]) / fail_effect
        return grade, -statistics[name]["p_value"], -index

    decided = _STATISTICS[max(range(len(_STATISTICS)), key=weight)]
    comparison["decided_by"] = decided[0]
    comparison["coefficient"] = statistics[decided[0]]["effect"]
    comparison["p_value"] = statistics[decided[0]]["p_value"]
    comparison["threshold"] = decided[2]
    status = grades.get(decided[0], "ok")
    if status != "fail":
        comparison.pop("decided_at_low_ess", None)
    unjudged = not judged or comparison["ess"] < MIN_RUN_ESS
    return "unconverged" if status == "ok" and unjudged else status


def _finite_or_zero(value) -> float:
    return value if math.isfinite(value) else 0.0


def statistic_label(name: str) -> str:
    """How a statistic of :func:`compare` reads in an explanation: ``"radial KS distance"``."""
    return next(row[1] for row in _STATISTICS if row[0] == name)


def describe(comparison: dict) -> str:
    """The statistic that decided a :func:`compare` result, in words: ``"mode-mass KS
    distance 0.21 along principal direction 1, p = 3e-08, ESS 410"``."""
    name = comparison["decided_by"]
    label = statistic_label(name)
    stat = comparison["statistics"][name]
    where = f" along principal direction {stat['direction'] + 1}" if name == "mode mass" else ""
    text = f"{label} {stat['effect']:.2g}{where}, p = {stat['p_value']:.2g}, ESS {stat['ess']:.0f}"
    if comparison.get("decided_at_low_ess"):
        text += f"; with under {MIN_ESS:g} effective draws the chains have not converged either"
    return text


def _decided_clause(status: str) -> str:
    return "largest: " if status == "ok" else "decided by the "


def unconverged_explanation(comparison: dict) -> str:
    """What an ``unconverged`` result says, with the run's ESS."""
    return (
        f"not converged: too few effective draws (ESS {comparison['ess']:.0f}, needs "
        f"{MIN_ESS:g}) to judge; run the chains longer"
    )


def too_short(kept_per_chain: int) -> str | None:
    """The reason to skip a check whose user run kept ``kept_per_chain`` draws per chain
    after burn-in, when that is too few; else ``None``."""
    if kept_per_chain >= MIN_KEPT_DRAWS:
        return None
    return (
        f"too few draws to judge: {kept_per_chain} per chain after burn-in (the first half "
        f"of each chain), needs at least {MIN_KEPT_DRAWS}."
    )


def energy_result(name: str, comparison: dict, explanations: dict) -> CheckResult:
    """The result of a check that is one :func:`compare`; ``explanations`` maps ``ok``,
    ``warn`` and ``fail`` to their sentence, which is followed by the statistic that
    decided (its effect and fail threshold are the result's statistic and threshold; for
    ``unconverged``, the user's ESS and ``MIN_ESS``)."""
    if "skip_reason" in comparison:
        return CheckResult(name, "skipped", math.nan, math.nan, comparison["skip_reason"])
    status = energy_status(comparison)
    if status == "unconverged":
        explanation = unconverged_explanation(comparison)
        statistic, threshold = comparison["ess"], MIN_ESS
    else:
        explanation = f"{explanations[status]} ({_decided_clause(status)}{describe(comparison)})"
        statistic, threshold = comparison["coefficient"], comparison["threshold"]
    return CheckResult(name, status, statistic, threshold, explanation + ".", comparison)


def as_chains(samples: np.ndarray) -> np.ndarray:
    """``(chain, draw, dim)`` as is; independent draws ``(n, dim)`` as ``n`` chains of one."""
    samples = np.asarray(samples, np.float64)
    return samples if samples.ndim == 3 else samples[:, None, :]


def _split(chains: np.ndarray, rng):
    """Two halves of a sample, by chain (one chain: its first and second halves of draws):
    one fixes the radial center and the principal directions, the other is tested, so that
    neither is measured against a center or a direction its own draws chose."""
    if len(chains) >= 2:
        order = rng.permutation(len(chains))
        half = len(chains) // 2
        return chains[np.sort(order[:half])], chains[np.sort(order[half:])]
    half = chains.shape[1] // 2
    return chains[:, :half], chains[:, half:]


class _Frame(NamedTuple):
    """Where samples are measured from: a center and principal directions, both fixed by
    draws outside the samples compared."""

    center: np.ndarray  # (dim,)
    directions: np.ndarray  # (k, dim) unit vectors
    coordinates: np.ndarray  # indices of the coordinates whose ESS is computed

    def radii(self, chains):
        """``(chain, draw)`` distances to the center."""
        return np.linalg.norm(chains - self.center, axis=-1)

    def projections(self, chains):
        """``(chain, draw, k)`` coordinates along the directions."""
        return (chains - self.center) @ self.directions.T


def _frame(fit: np.ndarray, rng, dim: int) -> _Frame:
    points = pooled(fit)
    center = points.mean(axis=0)
    # principal directions of the raw draws: standardizing each coordinate first would
    # erase a separation of modes that lies along one of them
    directions = principal_directions(subsample(points, _MAX_PCA_POINTS, rng), MODE_DIRECTIONS)
    coordinates = np.arange(dim)
    if dim > _ESS_COORDINATES:
        coordinates = np.sort(rng.choice(dim, _ESS_COORDINATES, replace=False))
    return _Frame(center, directions, coordinates)


def _measure(chains: np.ndarray, frame: _Frame, coordinates: bool = True) -> dict:
    """The quantities the tests read on ``chains`` (their distances to the center and
    projections on the directions) and the pooled bulk ESS of each, with the median ESS of
    (at most 64) coordinates when ``coordinates``; ``joint``: the smallest of that and the
    directions' (the leading directions of an anisotropic target are its slowest, and they
    limit how independent thinned draws are; the smallest of 64 noisy coordinate estimates
    would be a third of the typical one); ``ess``: the smallest of all. Independent draws
    (one per chain) have their number."""
    radii, projections = frame.radii(chains), frame.projections(chains)
    columns = [radii[..., None], projections]
    if coordinates:
        columns.append(chains[..., frame.coordinates])
    sizes = effective_sample_size(np.concatenate(columns, axis=-1))
    num = 1 + projections.shape[-1]
    measured = {
        "radii": radii,
        "projections": projections,
        "radius": float(sizes[0]),
        "directions": [float(v) for v in sizes[1:num]],
        "coordinates": float(np.median(sizes[num:])) if coordinates else math.nan,
    }
    measured["joint"] = float(np.nanmin([measured["coordinates"], *sizes[1:num]]))
    measured["ess"] = float(np.nanmin([measured["joint"], sizes[0]]))
    # the run's own ESS: its coordinates', and along the leading direction (an anisotropic
    # target's slowest, or the one between modes whose weights the chains have to settle);
    # not the smallest of every estimate, which at a true ESS of 50 dips below 20 by chance
    measured["run"] = float(np.nanmin([measured["coordinates"], *sizes[1:2]]))
    return measured


def _sizes(measured: dict) -> dict:
    """The ESS entries of :func:`_measure`'s result (what a comparison's details keep)."""
    keys = ("coordinates", "radius", "directions", "joint", "run")
    return {key: measured[key] for key in keys}


def compare(user, other, key, rng, max_points, slices=None, num_comparisons: int = 1):
    """Two-sample comparison of the user's kept draws ``(chain, draw, dim)`` with another
    sample of the target (chains, or independent draws ``(n, dim)``) that holds for
    autocorrelated draws; ``None`` when no chain of ``other`` is finite.

    ``other`` is split in two by chain: one half fixes a center and the leading principal
    directions, so that neither sample is measured from a point or along a direction its
    own draws chose, and the user's autocorrelated draws cannot pull the center towards
    themselves. Every quantity's effective sample size (pooled bulk ESS) is computed on each
    sample. Three statistics, each with an ``effect``, a ``p_value`` and the user's ``ess``:

    - ``joint``: energy test of the draws, both samples thinned to their ESS (the smallest
      over coordinates and directions, so that the permutation p-value holds) and
      subsampled to ``max_points``, pairs from one chain left out; the effect is the energy
      coefficient;
    - ``radial``: KS test of the distances to the center, user vs the other half, at the
      effective sizes (in high dimension distances concentrate and the joint statistic
      barely moves when one sample sits at half the other's radius);
    - ``mode mass``: KS tests of the projections on each principal direction, at the
      effective sizes: a wrong weighting of modes is confined to a few directions, which a
      high-dimensional energy distance barely registers.

    The KS p-values are multiplied by the number of KS tests times ``num_comparisons`` (how
    many comparisons a check makes; Bonferroni). With ``slices`` (variable name -> columns)
    and more than one variable, also each variable's joint/radial energy effect alone."""
    user, other = np.asarray(user, np.float64), as_chains(other)
    reason = too_short(user.shape[1])
    if reason is not None:
        return {"skip_reason": reason, "draws_per_chain": user.shape[1]}
    other = other[np.isfinite(other).all(axis=(1, 2))]
    if not len(other):
        return None
    fit, test = _split(other, rng)
    frame = _frame(fit, rng, user.shape[-1])
    mine, theirs = _measure(user, frame), _measure(test, frame, coordinates=False)
    other_ess = _measure(other, frame)["joint"]
    a, a_chains = _thinned(user, mine["joint"], max_points, rng)
    b, b_chains = _thinned(other, other_ess, max_points, rng)
    joint = energy_statistics(a, b, rng_key=key, x_groups=a_chains, y_groups=b_chains)
    num_tests = (1 + len(frame.directions)) * num_comparisons
    radius, radius_p = ks_test(
        mine["radii"].ravel(), theirs["radii"].ravel(), n_x=mine["radius"], n_y=theirs["radius"]
    )
    result = {
        "statistics": {
            "joint": {
                "effect": joint["coefficient"],
                "p_value": joint["p_value"],
                "ess": mine["joint"],
                "n": joint["n"],
            },
            "radial": {
                "effect": radius,
                "p_value": min(1.0, num_tests * radius_p),
                "ess": mine["radius"],
            },
            "mode mass": _mode_mass(mine, theirs, num_tests),
        },
        "ess": mine["run"],
        "ess_user": _sizes(mine),
        "ess_other": other_ess,
        "n": joint["n"],
    }
    if slices is not None and len(slices) > 1:
        result["per_variable"] = {
            name: _effect_size(a[:, columns], b[:, columns], frame.center[columns], key)
            for name, columns in slices.items()
        }
    return result


def _thinned(chains, effective_size, max_points, rng):
    """``(points, chain of each)``: ``chains`` thinned to ``effective_size`` draws, then
    subsampled to ``max_points``."""
    points, ids = thin_to(chains, effective_size)
    return subsample(points, max_points, rng, ids)


def _mode_mass(mine: dict, theirs: dict, num_tests: int) -> dict:
    """KS tests of the projections on each principal direction, at the effective sizes
    (p-values times ``num_tests``): the entry of the direction nearest to significance
    among those along which the user's draws have ``MIN_ESS`` effective draws (any, when
    none has), with every direction's under ``"directions"``."""
    entries = []
    for j, ess in enumerate(mine["directions"]):
        distance, p_value = ks_test(
            mine["projections"][..., j].ravel(),
            theirs["projections"][..., j].ravel(),
            n_x=ess,
            n_y=theirs["directions"][j],
        )
        p_value = min(1.0, num_tests * p_value)
        entries.append({"effect": distance, "p_value": p_value, "ess": ess, "direction": j})
    judged = [entry for entry in entries if entry["ess"] >= MIN_ESS] or entries
    best = min(judged, key=lambda entry: (entry["p_value"], -entry["effect"]))
    return {**best, "directions": entries}


def _effect_size(a, b, center, key) -> float:
    """The larger of the joint and radial energy coefficients (no permutations): the joint
    one sees shifts, the radial one sees changes of spread that concentration hides."""
    joint = energy_test(a, b, rng_key=key, num_permutations=1)[1]
    radius_a = np.linalg.norm(a - center, axis=1, keepdims=True)
    radius_b = np.linalg.norm(b - center, axis=1, keepdims=True)
    return max(joint, energy_test(radius_a, radius_b, rng_key=key, num_permutations=1)[1])


def rhat_1d(values: np.ndarray) -> float:
    """Rank-normalized split R-hat of a ``(chain, draw)`` scalar."""
    if values.shape[0] < 2 or values.shape[1] < 4:
        return math.nan
    return float(arviz_stats.rhat(values, chain_axis=0, draw_axis=1))


def per_variable_rhat(chains: np.ndarray, rng, max_coordinates: int = 64) -> float:
    """Max rank-normalized split R-hat over (at most ``max_coordinates`` randomly chosen)
    coordinates of ``(chain, draw, dim)``: rank normalization costs O(draws log draws) per
    coordinate, too much to spend on all of d = 1000 for an informational number."""
    if chains.shape[0] < 2 or chains.shape[1] < 4:
        return math.nan
    if chains.shape[-1] > max_coordinates:
        chains = chains[..., np.sort(rng.choice(chains.shape[-1], max_coordinates, replace=False))]
    values = np.asarray(arviz_stats.rhat(chains, chain_axis=0, draw_axis=1))
    return float(np.nanmax(values))
