"""What the checks share: random streams, the user's kept draws, quiet sampler runs, the
energy comparison of two samples and its verdict, R-hat helpers and the dimension check."""

import math
import warnings

import arviz_stats
import jax
import numpy as np

from robust_score._checks import check_key
from robust_score.diagnostics._data import Draws
from robust_score.diagnostics.result import CheckResult
from robust_score.diagnostics.statistics import energy_test, subsample
from robust_score.diagnostics.thresholds import ENERGY_FAIL, ENERGY_WARN, P_FAIL, P_WARN

__all__ = [
    "check_dim",
    "compare",
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
    """The positions of ``rs.run.sample_chains`` without its warnings (divergent chains are
    reported by the checks)."""
    from robust_score.run import sample_chains

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positions, _, _ = sample_chains(sampler, rng_key, positions, num_steps, thin=thin)
    return positions


def energy_status(comparison: dict) -> str:
    """``fail`` / ``warn`` / ``ok`` from a :func:`compare` result's coefficient and p-value."""
    coefficient, p_value = comparison["coefficient"], comparison["p_value"]
    if coefficient > ENERGY_FAIL and p_value < P_FAIL:
        return "fail"
    if coefficient > ENERGY_WARN and p_value < P_WARN:
        return "warn"
    return "ok"


def energy_result(name: str, comparison: dict, explanations: dict) -> CheckResult:
    """The result of a check that is one energy comparison; ``explanations`` maps each
    status to its sentence."""
    status = energy_status(comparison)
    coefficient = comparison["coefficient"]
    return CheckResult(
        name, status, coefficient, ENERGY_FAIL, explanations[status] + ".", comparison
    )


def _radii(a, b):
    """Each point's distance to the pooled mean of ``a`` and ``b``, as ``(n, 1)`` columns."""
    center = np.concatenate([a, b]).mean(axis=0)
    radius_a = np.linalg.norm(a - center, axis=1, keepdims=True)
    radius_b = np.linalg.norm(b - center, axis=1, keepdims=True)
    return radius_a, radius_b


def compare(user, other, key, rng, max_points, slices=None):
    """Energy test between two ``(n, dim)`` samples, both subsampled to ``max_points``
    (``None`` when no row of ``other`` is finite). With ``slices`` (variable name ->
    columns) and more than one variable, also the radial coefficient of each variable
    alone, so a report can say which variable moved."""
    finite = np.isfinite(other).all(axis=1)
    if not finite.any():
        return None
    a = subsample(user, max_points, rng)
    b = subsample(other[finite], max_points, rng)
    joint_key, radial_key = jax.random.split(key)
    energy, joint, joint_p = energy_test(a, b, rng_key=joint_key)
    # In high dimension distances concentrate and the joint energy distance barely moves
    # when one sample sits at half the other's radius; the 1-D law of the distance to the
    # pooled mean separates them sharply, so test it too and keep the larger effect.
    _, radial, radial_p = energy_test(*_radii(a, b), rng_key=radial_key)
    coefficient, p_value = (joint, joint_p) if joint >= radial else (radial, radial_p)
    result = {
        "energy": energy,
        "joint_coefficient": joint,
        "radial_coefficient": radial,
        "coefficient": coefficient,
        "p_value": p_value,
        "n": (len(a), len(b)),
    }
    if slices is not None and len(slices) > 1:
        result["per_variable"] = {
            name: _effect_size(a[:, columns], b[:, columns], radial_key)
            for name, columns in slices.items()
        }
    return result


def _effect_size(a, b, key) -> float:
    """The larger of the joint and radial energy coefficients (no permutations): the joint
    one sees shifts, the radial one sees changes of spread that concentration hides."""
    joint = energy_test(a, b, rng_key=key, num_permutations=1)[1]
    return max(joint, energy_test(*_radii(a, b), rng_key=key, num_permutations=1)[1])


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
