"""Measure how the user's draws differ from another sample of the target, in a way that holds
for autocorrelated draws: :func:`compare` returns a typed :class:`Comparison`. Nothing here
grades (see :mod:`~robust_score.diagnostics.grading`) or explains."""

import math
from typing import NamedTuple

import numpy as np

from robust_score.diagnostics.settings import Settings
from robust_score.diagnostics.statistics import (
    effective_sample_size,
    energy_statistics,
    energy_test,
    ks_test,
    nearest_distances,
    principal_directions,
    subsample,
    thin_to,
)

__all__ = ["Apart", "Comparison", "Coverage", "Statistic", "as_chains", "chains_apart", "compare"]

# the ESS of a sample is read on at most this many coordinates (rank normalization costs
# O(draws log draws) each)
_ESS_COORDINATES = 64


class Statistic(NamedTuple):
    """One statistic of a comparison: its effect size, p-value (Bonferroni-corrected for KS
    distances), and the user's effective draws in what it reads."""

    effect: float
    p_value: float
    ess: float
    direction: int = -1  # the principal direction a mode-mass distance is read along


class Coverage(NamedTuple):
    """Where each sample has mass that the other lacks, read on the distance to the center
    and the principal projections (in the other sample's sd), by nearest neighbours.

    ``chains_off``: the user's chains with most of their kept draws farther from every
    other draw than ``coverage_factor`` times the other sample's own 99th-percentile
    neighbour distance; ``uncovered``: the fraction of the other sample's draws that far
    from every user draw (a region no chain visits); ``gap``: the largest user-draw
    distance over that percentile."""

    chains_off: int
    uncovered: float
    gap: float


class Comparison(NamedTuple):
    """What :func:`compare` measured. ``ess``: the user's run's own ESS (median over
    coordinates, and along the leading direction); ``ess_other``: the other sample's."""

    joint: Statistic
    radial: Statistic
    mode_mass: Statistic
    ess: float
    ess_other: float
    coverage: Coverage
    per_variable: dict | None = None  # variable -> energy effect alone, for several variables

    @property
    def statistics(self) -> dict:
        return {"joint": self.joint, "radial": self.radial, "mode mass": self.mode_mass}


def as_chains(samples: np.ndarray) -> np.ndarray:
    """``(chain, draw, dim)`` as is; independent draws ``(n, dim)`` as ``n`` chains of one."""
    samples = np.asarray(samples, np.float64)
    return samples if samples.ndim == 3 else samples[:, None, :]


class _Frame(NamedTuple):
    """Where samples are measured from: a center and principal directions, both fixed by
    draws outside the samples compared."""

    center: np.ndarray  # (dim,)
    directions: np.ndarray  # (k, dim) unit vectors
    coordinates: np.ndarray  # indices of the coordinates whose ESS is computed

    def features(self, chains):
        """``(chain, draw, 1 + k)``: distance to the center, then the projections."""
        offsets = chains - self.center
        radii = np.linalg.norm(offsets, axis=-1)[..., None]
        return np.concatenate([radii, offsets @ self.directions.T], axis=-1)


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


def _frame(fit: np.ndarray, rng, settings: Settings) -> _Frame:
    points = fit.reshape(-1, fit.shape[-1])
    center = points.mean(axis=0)
    # principal directions of the raw draws: standardizing each coordinate first would
    # erase a separation of modes that lies along one of them
    sample = subsample(points, settings.max_points, rng)
    directions = principal_directions(sample, settings.mode_directions)
    coordinates = np.arange(points.shape[1])
    if points.shape[1] > _ESS_COORDINATES:
        coordinates = np.sort(rng.choice(points.shape[1], _ESS_COORDINATES, replace=False))
    return _Frame(center, directions, coordinates)


class _Measured(NamedTuple):
    features: np.ndarray  # (chain, draw, 1 + k)
    radius: float  # ESS of the distance to the center
    directions: tuple  # ESS along each direction
    joint: float  # the smallest of the coordinates' median ESS and the directions'
    run: float  # the run's own: the coordinates' median and the leading direction's


def _measure(chains: np.ndarray, frame: _Frame, coordinates: bool = True) -> _Measured:
    """The features of ``chains`` and the pooled bulk ESS of each, with the median ESS of (at
    most 64) coordinates when ``coordinates`` (the smallest of 64 noisy estimates would be a
    third of the typical one). Independent draws (one per chain) have their number."""
    features = frame.features(chains)
    columns = [features] + ([chains[..., frame.coordinates]] if coordinates else [])
    sizes = effective_sample_size(np.concatenate(columns, axis=-1))
    num = features.shape[-1]
    typical = float(np.median(sizes[num:])) if coordinates else math.nan
    directions = tuple(float(v) for v in sizes[1:num])
    # the run's own ESS: along the leading direction (an anisotropic target's slowest, or
    # the one between modes whose weights the chains have to settle), not the smallest of
    # every estimate, which at a true ESS of 50 dips below 20 by chance
    return _Measured(
        features,
        float(sizes[0]),
        directions,
        float(np.nanmin([typical, *directions])),
        float(np.nanmin([typical, *directions[:1]])),
    )


def compare(user, other, key, rng, settings: Settings, slices=None, num_comparisons: int = 1):
    """Compare the user's kept draws ``(chain, draw, dim)`` with another sample of the target
    (chains, or independent draws ``(n, dim)``); ``None`` when no chain of ``other`` is
    finite or either sample has fewer than two chains' worth of draws to split.

    ``other`` is split in two by chain: one half fixes a center and the leading principal
    directions, so that neither sample is measured from a point or along a direction its
    own draws chose. Three statistics (:class:`Statistic`), each at the effective sizes:

    - ``joint``: energy test of the draws, both samples thinned to their ESS and
      subsampled to ``max_points``, pairs from one chain left out;
    - ``radial``: KS test of the distances to the center (in high dimension distances
      concentrate and the joint statistic barely moves when one sample sits at half the
      other's radius);
    - ``mode_mass``: KS tests of the projections on each principal direction (a wrong
      weighting of modes is confined to a few directions); the one nearest to significance
      among those with ``min_ess`` effective draws.

    KS p-values are multiplied by the number of KS tests times ``num_comparisons``. With
    ``slices`` (variable name -> columns) of several variables, also each variable's energy
    effect alone. And the :class:`Coverage` of each sample by the other.
    """
    user, other = np.asarray(user, np.float64), as_chains(other)
    other = other[np.isfinite(other).all(axis=(1, 2))]
    if not len(other) or other.shape[0] * other.shape[1] < 4:
        return None
    fit, test = _split(other, rng)
    frame = _frame(fit, rng, settings)
    mine, theirs = _measure(user, frame), _measure(test, frame, coordinates=False)
    other_ess = _measure(other, frame).joint
    a, a_chains = _thinned(user, mine.joint, settings.max_points, rng)
    b, b_chains = _thinned(other, other_ess, settings.max_points, rng)
    energy = energy_statistics(a, b, rng_key=key, x_groups=a_chains, y_groups=b_chains)
    num_tests = (1 + len(frame.directions)) * num_comparisons
    radius, radius_p = ks_test(
        mine.features[..., 0].ravel(),
        theirs.features[..., 0].ravel(),
        n_x=mine.radius,
        n_y=theirs.radius,
    )
    per_variable = None
    if slices is not None and len(slices) > 1:
        per_variable = {
            name: _effect_size(a[:, columns], b[:, columns], frame.center[columns], key)
            for name, columns in slices.items()
        }
    return Comparison(
        joint=Statistic(energy["coefficient"], energy["p_value"], mine.joint),
        radial=Statistic(radius, min(1.0, num_tests * radius_p), mine.radius),
        mode_mass=_mode_mass(mine, theirs, num_tests, settings.min_ess),
        ess=mine.run,
        ess_other=other_ess,
        coverage=_coverage(mine.features, frame.features(fit), theirs.features, rng, settings),
        per_variable=per_variable,
    )


def _thinned(chains, effective_size, max_points, rng):
    """``(points, chain of each)``: ``chains`` thinned to ``effective_size`` draws, then
    subsampled to ``max_points``."""
    points, ids = thin_to(chains, effective_size)
    return subsample(points, max_points, rng, ids)


def _mode_mass(mine: _Measured, theirs: _Measured, num_tests: int, min_ess: float) -> Statistic:
    """KS tests of the projections on each principal direction, at the effective sizes:
    the direction nearest to significance among those with ``min_ess`` effective draws
    (any, when none has)."""
    entries = []
    for j, ess in enumerate(mine.directions):
        distance, p_value = ks_test(
            mine.features[..., 1 + j].ravel(),
            theirs.features[..., 1 + j].ravel(),
            n_x=ess,
            n_y=theirs.directions[j],
        )
        entries.append(Statistic(distance, min(1.0, num_tests * p_value), ess, j))
    judged = [entry for entry in entries if entry.ess >= min_ess] or entries
    return min(judged, key=lambda entry: (entry.p_value, -entry.effect))


def _coverage(user, fit, test, rng, settings: Settings) -> Coverage:
    """:class:`Coverage` from features ``(chain, draw, k)`` of the user's draws and of the
    other sample's two halves. Neighbour distances are compared at equal sample sizes: the
    other's test half to its fit half (the baseline), the user's draws to the fit half,
    and the test half to as many of the user's draws."""
    fit_points, test_points = fit.reshape(-1, fit.shape[-1]), test.reshape(-1, test.shape[-1])
    # in the draws' own units: whitening each feature would shrink a separation of modes
    # along a principal direction by the spread that separation itself creates
    size = min(len(fit_points), user.shape[0] * user.shape[1], settings.max_points)
    reference = subsample(fit_points, size, rng)
    tested = subsample(test_points, settings.max_points, rng)
    baseline = nearest_distances(tested, reference, k=1)[:, 0]
    limit = settings.coverage_factor * max(float(np.quantile(baseline, 0.99)), 1e-300)
    chains, draws = user.shape[:2]
    stride = max(1, chains * draws // (4 * settings.max_points))  # at most ~4x max_points
    mine = user[:, ::stride]
    distances = nearest_distances(mine.reshape(-1, mine.shape[-1]), reference, k=1)[:, 0]
    off = (distances > limit).reshape(chains, -1)
    users = subsample(mine.reshape(-1, mine.shape[-1]), size, rng)
    uncovered = nearest_distances(tested, users, k=1)[:, 0] > limit
    return Coverage(
        int(np.sum(off.mean(axis=1) > 0.5)),
        float(uncovered.mean()),
        float(distances.max() / (limit / settings.coverage_factor)),
    )


def _effect_size(a, b, center, key) -> float:
    """The larger of the joint and radial energy coefficients (no permutations): the joint
    one sees shifts, the radial one sees changes of spread that concentration hides."""
    joint = energy_test(a, b, rng_key=key, num_permutations=1)[1]
    radius_a = np.linalg.norm(a - center, axis=1, keepdims=True)
    radius_b = np.linalg.norm(b - center, axis=1, keepdims=True)
    return max(joint, energy_test(radius_a, radius_b, rng_key=key, num_permutations=1)[1])


class Apart(NamedTuple):
    """The user's chains that each mix where they are yet sit apart from the others
    (``held``), and how many of those sit in a region as wide as the other sample's there
    (``in_modes``): a real mode, not a well narrower than the target's."""

    held: int
    in_modes: int


def chains_apart(user: np.ndarray, other: np.ndarray | None, settings: Settings) -> Apart:
    """:class:`Apart` for the user's kept chains ``(chain, draw, dim)``.

    A chain is held apart when its split offset (its second half's mean along the direction
    of its first half, from the pooled mean, in the pooled sd, within the pooled draws'
    leading principal directions) exceeds ``apart_factor``
    times its own sd along that direction, with ``min_ess`` effective draws there: a slowly
    mixing chain has a large offset too, but few effective draws. It sits in a mode of
    ``other`` (``(n, dim)`` draws of the target) when its spread around its mean is at least
    ``1 / apart_factor`` of the spread of the other's draws nearest to it (those closer to
    its mean than to any other chain's): a chain in a well at a training point is far
    narrower than the part of the target around it."""
    if user.shape[1] < 8 or len(user) < 2:
        return Apart(0, 0)
    points = user.reshape(-1, user.shape[-1])
    center, spread = points.mean(axis=0), points.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    # in the leading principal directions of the pooled draws, where chains held apart
    # separate: in all d coordinates a chain's mean is mostly noise at high d
    white = (user - center) / spread
    directions = principal_directions(
        white.reshape(-1, user.shape[-1])[:: max(1, len(points) // settings.max_points)],
        settings.mode_directions,
    )
    white = white @ directions.T
    half = user.shape[1] // 2
    direction = white[:, :half].mean(axis=1)
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-300)
    projected = np.einsum("cnk,ck->cn", white[:, half:], direction)
    offset, own_sd = projected.mean(axis=1), projected.std(axis=1)
    ess = np.array([effective_sample_size(p[None]) for p in projected])
    held = (offset > settings.apart_factor * own_sd) & (ess >= settings.min_ess)
    if not held.any() or other is None:
        return Apart(int(held.sum()), 0)
    means = user.mean(axis=1)
    owner = np.argmin(((other[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    in_modes = 0
    for chain in np.flatnonzero(held):
        cell = other[owner == chain]
        own = np.median(np.linalg.norm((user[chain] - means[chain]) / spread, axis=-1))
        if len(cell) < 5:  # too few of the other's draws near it to tell: a mode
            in_modes += 1
            continue
        around = np.median(np.linalg.norm((cell - means[chain]) / spread, axis=-1))
        in_modes += bool(own >= around / settings.apart_factor)
    return Apart(int(held.sum()), in_modes)
