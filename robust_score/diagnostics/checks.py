"""The trap and memorisation checks. Each is usable alone and returns a :class:`CheckResult`.

Thresholds are module constants, chosen from the committed calibration run
(``benchmarks/calibrate_diagnostics.py``; table in ``docs/diagnostics.md``).
"""

import math
from dataclasses import dataclass, field

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np

from robust_score.diagnostics._data import (
    Draws,
    as_datatree,
    as_sample_matrix,
    posterior_draws,
)
from robust_score.diagnostics.statistics import (
    energy_test,
    kernel_stein_discrepancy,
    nearest_distances,
    subsample,
)

__all__ = [
    "CheckResult",
    "restart_sensitivity",
    "reference_comparison",
    "annealed_cross_check",
    "score_error_along_chain",
    "memorization_report",
    "STATUSES",
]

STATUSES = ("ok", "warn", "fail", "skipped")

# Energy coefficient E / (2 E|X - Y|) between the user's draws and another sample of the
# target: fail above 0.1 (and p < 0.01), warn above 0.06 (and p < 0.05). See calibration.
ENERGY_FAIL, ENERGY_WARN = 0.1, 0.06
# A restart group fails a run only if its distance to the user's draws exceeds this many times
# the distance between two halves of the group (else the restarts have not converged).
GROUP_AGREEMENT_FACTOR = 3.0
# ... and only if its chains travelled at least this fraction of their start's distance
# (median over chains), and the R-hat of their distances to the user's mean stays below
# MAX_GROUP_RHAT (restarts of a hard target such as Neal's funnel under MALA do not mix).
MIN_MOVED_FRACTION = 0.7
MAX_GROUP_RHAT = 2.5
P_FAIL, P_WARN = 0.01, 0.05
# Relative score error where the chain sits: fail above 10 %, warn above 1 %; with reference
# draws a fail also needs the chain's error to exceed 10x the error under the reference.
SCORE_ERROR_FAIL, SCORE_ERROR_WARN, SCORE_ERROR_CONCENTRATION = 0.1, 0.01, 10.0
# Memorisation: excess (over the baseline) fraction of draws with NN1/NN2 < 1/3.
MEMO_FAIL, MEMO_WARN = 0.1, 0.02
# ... and median NN-train distance relative to the baseline's.
MEMO_DISTANCE_FAIL, MEMO_DISTANCE_WARN = 0.5, 0.8


@dataclass
class CheckResult:
    """One check's verdict: ``status`` is ``ok``, ``warn``, ``fail`` or ``skipped``."""

    name: str
    status: str
    statistic: float
    threshold: float
    explanation: str
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def skipped(cls, name: str, why: str) -> "CheckResult":
        return cls(name, "skipped", math.nan, math.nan, why)


def _rng(rng_key):
    if rng_key is None:
        rng_key = jax.random.key(0)
    seed = int(jax.random.randint(rng_key, (), 0, 2**31 - 1))
    return rng_key, np.random.default_rng(seed)


def _second_half(draws: Draws) -> np.ndarray:
    """``(chain, draw/2, dim)``: the first half of each chain is treated as burn-in."""
    return draws.flat[:, draws.flat.shape[1] // 2 :]


def _pooled(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1, array.shape[-1])


def _energy_status(coefficient, p_value):
    if coefficient > ENERGY_FAIL and p_value < P_FAIL:
        return "fail"
    if coefficient > ENERGY_WARN and p_value < P_WARN:
        return "warn"
    return "ok"


def _compare(user, other, key, rng, max_points, slices=None):
    """Energy test between two ``(n, dim)`` samples, both subsampled to ``max_points``.
    With ``slices`` (variable name -> columns) and more than one variable, also the radial
    coefficient of each variable alone, so a report can say which variable moved."""
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
    center = np.concatenate([a, b]).mean(axis=0)
    radius_a = np.linalg.norm(a - center, axis=1, keepdims=True)
    radius_b = np.linalg.norm(b - center, axis=1, keepdims=True)
    _, radial, radial_p = energy_test(radius_a, radius_b, rng_key=radial_key)
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
    center = np.concatenate([a, b]).mean(axis=0)
    radius_a = np.linalg.norm(a - center, axis=1, keepdims=True)
    radius_b = np.linalg.norm(b - center, axis=1, keepdims=True)
    return max(joint, energy_test(radius_a, radius_b, rng_key=key, num_permutations=1)[1])


def _rhat_1d(values: np.ndarray) -> float:
    """Rank-normalised split R-hat of a ``(chain, draw)`` scalar."""
    if values.shape[0] < 2 or values.shape[1] < 4:
        return math.nan
    return float(arviz_stats.rhat(values, chain_axis=0, draw_axis=1))


def _per_variable_rhat(chains: np.ndarray, rng, max_coordinates: int = 64) -> float:
    """Max rank-normalised split R-hat over (at most ``max_coordinates`` randomly chosen)
    coordinates of ``(chain, draw, dim)``: rank normalisation costs O(draws log draws) per
    coordinate, too much to spend on all of d = 1000 for an informational number."""
    if chains.shape[0] < 2 or chains.shape[1] < 4:
        return math.nan
    if chains.shape[-1] > max_coordinates:
        chains = chains[..., np.sort(rng.choice(chains.shape[-1], max_coordinates, replace=False))]
    values = np.asarray(arviz_stats.rhat(chains, chain_axis=0, draw_axis=1))
    return float(np.nanmax(values))


def _flatten_draws(positions) -> np.ndarray:
    """Positions pytree with leading ``(chain, draw)`` axes -> ``(chain, draw, dim)``."""
    leaves = jax.tree.leaves(positions)
    chains, draws = leaves[0].shape[:2]
    return np.concatenate(
        [np.asarray(leaf, np.float64).reshape(chains, draws, -1) for leaf in leaves], axis=-1
    )


def restart_sensitivity(
    data,
    sampler,
    *,
    rng_key=None,
    reference=None,
    num_chains: int = 8,
    num_steps: int | None = None,
    scales=(3.0, 10.0, 100.0),
    max_points: int = 500,
) -> CheckResult:
    """Re-run ``sampler`` from overdispersed starts (and from ``reference`` draws) and ask
    whether those chains end where the user's did.

    Starts are ``m + scale * sqrt(d) * s * u`` (``m``, ``s``: per-coordinate mean and sd of
    the user's draws, ``u`` a uniform random direction), one group of ``num_chains`` per
    scale, run for ``num_steps`` (default: as many steps as the user's run kept, at least
    200). Each group's second half is compared with the user's second half by an energy
    test; R-hat across all groups is reported. A trap with shared starts shows as a group
    that leaves and ends elsewhere.
    """
    from robust_score.run import sample_chains

    name = "restart sensitivity"
    if sampler is None:
        return CheckResult.skipped(name, "needs `sampler=` (the SamplingAlgorithm of the run).")
    if not (hasattr(sampler, "init") and hasattr(sampler, "step")):
        raise TypeError("`sampler` must be a blackjax.SamplingAlgorithm (init, step).")
    tree = as_datatree(data)
    draws = posterior_draws(tree)
    rng_key, rng = _rng(rng_key)
    user = _second_half(draws)
    pooled = _pooled(user)
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0)
    # a chain that never moved has sd 0: fall back to a scale that still overdisperses
    scale = np.where(scale > 0, scale, np.maximum(1e-3, np.abs(mean).mean()))
    if num_steps is None:
        thin = int(tree["posterior"].attrs.get("thin", 1))
        num_steps = max(200, draws.flat.shape[1] * thin)
    thin = max(1, num_steps // 200)

    starts = {}
    for factor in scales:
        rng_key, key = jax.random.split(rng_key)
        # random directions at one standardised radius: in low dimension a Gaussian draw
        # can land near the centre and restart inside the very region under test
        noise = np.asarray(jax.random.normal(key, (num_chains, draws.dim)))
        directions = noise / np.linalg.norm(noise, axis=1, keepdims=True)
        starts[f"overdispersed x{factor:g}"] = (
            mean + factor * math.sqrt(draws.dim) * scale * directions
        )
    if reference is not None:
        reference_matrix = _check_dim(
            as_sample_matrix(reference, "reference"), draws.dim, "reference"
        )
        index = rng.choice(
            len(reference_matrix), size=min(num_chains, len(reference_matrix)), replace=False
        )
        starts["reference draws"] = reference_matrix[index]

    groups, statuses, all_chains = {}, [], [user]
    dtype = jnp.result_type(draws.unravel(jnp.zeros(draws.dim)))
    for label, flat_starts in starts.items():
        positions = jax.vmap(draws.unravel)(jnp.asarray(flat_starts, dtype))
        rng_key, run_key, test_key = jax.random.split(rng_key, 3)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # divergent restarts are reported below
            restart, _, _ = sample_chains(sampler, run_key, positions, num_steps, thin=thin)
        restart_flat = _flatten_draws(restart)
        restart_flat = restart_flat[:, restart_flat.shape[1] // 2 :]
        finite_chains = np.isfinite(restart_flat).all(axis=(1, 2))
        comparison = _compare(
            pooled, _pooled(restart_flat), test_key, rng, max_points, draws.slices
        )
        if comparison is None:
            groups[label] = {"status": "warn", "note": "every restart chain diverged"}
            statuses.append("warn")
            continue
        comparison["diverged_chains"] = int((~finite_chains).sum())
        status = _energy_status(comparison["coefficient"], comparison["p_value"])
        distances = np.linalg.norm(restart_flat[finite_chains] - mean, axis=-1)
        comparison["mean_distance"] = float(distances.mean() / math.sqrt(draws.dim))
        # Only restarts that agree with each other are evidence against the user's chains;
        # restarts that have not converged themselves (a hard target, too few steps) are not:
        # the user-vs-restart effect must dwarf the effect between two halves of the group.
        comparison["group_rhat"] = _rhat_1d(distances)
        kept = restart_flat[finite_chains]
        if status == "fail" and len(kept) >= 2:
            rng_key, split_key = jax.random.split(rng_key)
            half = len(kept) // 2
            within = _compare(
                _pooled(kept[:half]), _pooled(kept[half:]), split_key, rng, max_points
            )
            comparison["within_group_coefficient"] = within["coefficient"]
            if comparison["coefficient"] < GROUP_AGREEMENT_FACTOR * within["coefficient"]:
                status = "warn"
                comparison["note"] = "restarts disagree among themselves: inconclusive"
        # restarts that barely left their starting points (a sampler stuck far out in the
        # tails) say nothing about where the user's chains should be
        start_offsets = np.linalg.norm(flat_starts[finite_chains] - mean, axis=-1)
        travelled = np.linalg.norm(kept[:, -1] - flat_starts[finite_chains], axis=-1)
        comparison["moved_fraction"] = float(
            np.median(travelled / np.maximum(start_offsets, 1e-300))
        )
        if status == "fail" and comparison["moved_fraction"] < MIN_MOVED_FRACTION:
            status = "warn"
            comparison["note"] = "restarts barely moved from their starts: inconclusive"
        if status == "fail" and comparison["group_rhat"] > MAX_GROUP_RHAT:
            status = "warn"
            comparison["note"] = "restarts have not mixed among themselves: inconclusive"
        comparison["status"] = status
        groups[label] = comparison
        statuses.append(comparison["status"])
        all_chains.append(_match_length(restart_flat[finite_chains], user.shape[1]))

    combined = np.concatenate([c for c in all_chains if len(c)], axis=0)
    rhat = _per_variable_rhat(combined, rng)
    coefficient = max((g.get("coefficient", 0.0) for g in groups.values()), default=0.0)
    status = _worst(statuses)
    user_distance = float(np.linalg.norm(user - mean, axis=-1).mean() / math.sqrt(draws.dim))
    worst_group = max(groups, key=lambda k: groups[k].get("coefficient", 0.0))
    explanation = {
        "ok": "chains restarted from overdispersed starts end where yours did",
        "warn": f"chains restarted from '{worst_group}' end somewhat differently from yours",
        "fail": f"chains restarted from '{worst_group}' end elsewhere: your chains look trapped "
        "by where they started",
    }[status]
    details = {
        "groups": groups,
        "rhat_across_groups": rhat,
        "user_mean_distance": user_distance,
        "num_steps": num_steps,
        "max_points": max_points,
    }
    return CheckResult(name, status, coefficient, ENERGY_FAIL, explanation + ".", details)


def reference_comparison(data, reference, *, rng_key=None, max_points: int = 500) -> CheckResult:
    """Energy test of the user's draws against independent ``reference`` draws of the target."""
    name = "reference comparison"
    if reference is None:
        return CheckResult.skipped(name, "needs `reference=` draws of the target.")
    draws = posterior_draws(as_datatree(data))
    reference = _check_dim(as_sample_matrix(reference, "reference"), draws.dim, "reference")
    rng_key, rng = _rng(rng_key)
    result = _compare(
        _pooled(_second_half(draws)), reference, rng_key, rng, max_points, draws.slices
    )
    status = _energy_status(result["coefficient"], result["p_value"])
    explanation = {
        "ok": "your draws match the reference draws",
        "warn": "your draws differ somewhat from the reference draws",
        "fail": "your draws do not follow the reference distribution",
    }[status]
    return CheckResult(name, status, result["coefficient"], ENERGY_FAIL, explanation + ".", result)


def annealed_cross_check(
    data,
    time_score_fn,
    schedule,
    *,
    rng_key=None,
    num_samples: int = 500,
    num_steps: int = 200,
    method: str = "sde",
    max_points: int = 500,
) -> CheckResult:
    """Draw from the same (time) score with reverse diffusion, which starts from noise and
    so is robust to a score that is wrong only off the target, and compare with the chains."""
    from robust_score.kernels.reverse_diffusion import as_top_level_api as reverse_diffusion
    from robust_score.run import sample_chains

    name = "Langevin vs annealed"
    if time_score_fn is None or schedule is None:
        return CheckResult.skipped(name, "needs `time_score_fn=` and `schedule=`.")
    draws = posterior_draws(as_datatree(data))
    rng_key, rng = _rng(rng_key)
    sampler = reverse_diffusion(time_score_fn, schedule, num_steps, method=method)
    template = draws.unravel(jnp.zeros(draws.dim, jnp.result_type(float)))
    starts = jax.tree.map(
        lambda leaf: jnp.zeros((num_samples, *jnp.shape(leaf)), leaf.dtype), template
    )
    rng_key, run_key = jax.random.split(rng_key)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        annealed, _, _ = sample_chains(sampler, run_key, starts, 1)  # one draw per chain
    annealed_flat = _pooled(_flatten_draws(annealed))
    result = _compare(
        _pooled(_second_half(draws)), annealed_flat, rng_key, rng, max_points, draws.slices
    )
    if result is None:
        return CheckResult(
            name, "warn", math.nan, ENERGY_FAIL, "every reverse-diffusion draw diverged."
        )
    status = _energy_status(result["coefficient"], result["p_value"])
    explanation = {
        "ok": "reverse diffusion with the same score agrees with your chains",
        "warn": "reverse diffusion with the same score differs somewhat from your chains",
        "fail": "reverse diffusion with the same score lands elsewhere: Langevin is likely "
        "trapped where the score is wrong",
    }[status]
    return CheckResult(name, status, result["coefficient"], ENERGY_FAIL, explanation + ".", result)


def score_error_along_chain(
    data,
    score_fn,
    logdensity_fn,
    *,
    reference=None,
    rng_key=None,
    max_points: int = 500,
) -> CheckResult:
    """Relative score error ``E||s_hat - grad log p||^2 / E||grad log p||^2`` on the chain's
    draws, against the same under ``reference`` draws when given (the trap signature: tiny
    under the target, large where the chain sits), plus the IMQ kernel Stein discrepancy of
    the draws under the trusted score."""
    name = "score error along the chain"
    if score_fn is None or logdensity_fn is None:
        return CheckResult.skipped(name, "needs `score_fn=` and a trusted `logdensity_fn=`.")
    draws = posterior_draws(as_datatree(data))
    rng_key, rng = _rng(rng_key)
    chain_points = subsample(_pooled(_second_half(draws)), max_points, rng)
    trusted = jax.grad(logdensity_fn)

    def errors(points):
        positions = jax.vmap(draws.unravel)(jnp.asarray(points, jnp.result_type(float)))
        try:
            estimate = jax.vmap(score_fn)(positions)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"`score_fn` does not accept the posterior's draws ({draws.dim} entries per "
                f"draw, variables {draws.var_names}): {err}"
            ) from err
        exact = jax.vmap(trusted)(positions)
        flat_estimate = jax.vmap(lambda t: jax.flatten_util.ravel_pytree(t)[0])(estimate)
        flat_exact = jax.vmap(lambda t: jax.flatten_util.ravel_pytree(t)[0])(exact)
        if flat_estimate.shape != flat_exact.shape:
            raise ValueError(
                f"`score_fn` returns {flat_estimate.shape[-1]} entries per draw but the "
                f"posterior has {draws.dim}."
            )
        squared = np.asarray(jnp.sum((flat_estimate - flat_exact) ** 2, axis=1))
        norms = np.asarray(jnp.sum(flat_exact**2, axis=1))
        return squared, norms, np.asarray(flat_exact)

    squared, norms, exact_scores = errors(chain_points)
    chain_error = float(squared.mean() / max(norms.mean(), 1e-300))
    scale = max(norms.mean(), 1e-300)
    details = {
        "chain_relative_error": chain_error,
        "max_points": max_points,
        "chain_errors": squared / scale,  # per draw, relative to E||grad log p||^2 there
    }
    ksd_points = subsample(chain_points, min(max_points, 300), rng)
    _, _, ksd_scores = errors(ksd_points)
    details["ksd_chain"] = kernel_stein_discrepancy(ksd_points, ksd_scores)
    concentrated = True
    if reference is not None:
        reference_matrix = _check_dim(
            as_sample_matrix(reference, "reference"), draws.dim, "reference"
        )
        reference_points = subsample(reference_matrix, max_points, rng)
        ref_squared, ref_norms, _ = errors(reference_points)
        details["reference_errors"] = ref_squared / max(ref_norms.mean(), 1e-300)
        reference_error = float(ref_squared.mean() / max(ref_norms.mean(), 1e-300))
        details["reference_relative_error"] = reference_error
        concentrated = chain_error > SCORE_ERROR_CONCENTRATION * reference_error
        ref_ksd_points = subsample(reference_points, min(max_points, 300), rng)
        _, _, ref_ksd_scores = errors(ref_ksd_points)
        details["ksd_reference"] = kernel_stein_discrepancy(ref_ksd_points, ref_ksd_scores)
    del exact_scores
    if chain_error > SCORE_ERROR_FAIL and concentrated:
        status = "fail"
        explanation = (
            f"your score is {chain_error:.0%} wrong (relative L2) where the chain sits"
            + (
                f", against {details['reference_relative_error']:.1e} under the target: the "
                "trap signature"
                if reference is not None
                else ""
            )
        )
    elif chain_error > SCORE_ERROR_WARN:
        status = "warn"
        explanation = f"your score has {chain_error:.1%} relative L2 error where the chain sits"
    else:
        status = "ok"
        explanation = "your score agrees with the trusted score where the chain sits"
    return CheckResult(name, status, chain_error, SCORE_ERROR_FAIL, explanation + ".", details)


def memorization_report(
    samples,
    train_data,
    holdout=None,
    starts=None,
    *,
    max_points: int = 2000,
    rng_key=None,
) -> CheckResult:
    """Do the draws sit on training points?

    Compares each draw's nearest-training-point distance NN1 with a baseline (``holdout``
    draws of the target when given, else leave-one-out train-to-train distances), and the
    fraction of draws with NN1/NN2 < 1/3 (a draw much closer to one training point than to
    any other) with the baseline's fraction, which is not zero in low dimension. With
    ``starts`` (one initial position per chain) and chain-structured ``samples``, compares how
    far chains started at training points drifted with how far fresh-start chains did.
    """
    name = "memorisation"
    train = as_sample_matrix(train_data, "train_data")
    if len(train) < 2:
        raise ValueError(f"`train_data` needs at least 2 points, got {len(train)}.")
    chains = None
    if hasattr(samples, "children") or type(samples).__name__ == "MCMC":
        chains = posterior_draws(as_datatree(samples)).flat
        points = _pooled(chains[:, chains.shape[1] // 2 :])
    else:
        points = as_sample_matrix(samples, "samples")
    _check_dim(points, train.shape[1], "samples", other="train_data")
    _, rng = _rng(rng_key)
    points = subsample(points, max_points, rng)
    near = nearest_distances(points, train, k=2)
    if holdout is not None:
        baseline_points = _check_dim(
            as_sample_matrix(holdout, "holdout"), train.shape[1], "holdout"
        )
        baseline = nearest_distances(subsample(baseline_points, max_points, rng), train, k=2)
        baseline_name = "holdout"
    else:
        baseline = nearest_distances(
            subsample(train, max_points, rng), train, k=2, exclude_self=True
        )
        baseline_name = "train-to-train (leave one out)"
    ratio = lambda d: np.mean(d[:, 0] / np.maximum(d[:, 1], 1e-300) < 1 / 3)  # noqa: E731
    fraction, baseline_fraction = float(ratio(near)), float(ratio(baseline))
    excess = fraction - baseline_fraction
    distance_ratio = float(np.median(near[:, 0]) / max(np.median(baseline[:, 0]), 1e-300))
    sqrt_d = math.sqrt(train.shape[1])
    details = {
        "fraction_nn_ratio_below_third": fraction,
        "baseline_fraction": baseline_fraction,
        "median_nn_distance": float(np.median(near[:, 0]) / sqrt_d),
        "baseline_median_nn_distance": float(np.median(baseline[:, 0]) / sqrt_d),
        "distance_ratio": distance_ratio,
        "baseline": baseline_name,
        "max_points": max_points,
    }
    drift_status = "ok"
    if starts is not None and chains is not None:
        start_points = _check_dim(as_sample_matrix(starts, "starts"), train.shape[1], "starts")
        if len(start_points) != chains.shape[0]:
            raise ValueError(
                f"`starts` has {len(start_points)} rows but the samples have "
                f"{chains.shape[0]} chains."
            )
        from_train = nearest_distances(start_points, train, k=1)[:, 0] <= 1e-6 * (1 + sqrt_d)
        drift = np.linalg.norm(chains[:, -1] - start_points, axis=-1) / sqrt_d
        details["drift_train_starts"] = (
            float(drift[from_train].mean()) if from_train.any() else None
        )
        details["drift_fresh_starts"] = (
            float(drift[~from_train].mean()) if (~from_train).any() else None
        )
        if from_train.any() and (~from_train).any():
            drift_ratio = details["drift_train_starts"] / max(details["drift_fresh_starts"], 1e-300)
            details["drift_ratio"] = drift_ratio
            drift_status = "fail" if drift_ratio < 0.5 else "warn" if drift_ratio < 0.8 else "ok"
    if excess > MEMO_FAIL or distance_ratio < MEMO_DISTANCE_FAIL:
        status = "fail"
    elif excess > MEMO_WARN or distance_ratio < MEMO_DISTANCE_WARN:
        status = "warn"
    else:
        status = "ok"
    status = _worst([status, drift_status])
    explanation = {
        "ok": "draws are no closer to training points than fresh draws of the target are",
        "warn": "draws sit somewhat closer to training points than fresh draws do",
        "fail": f"{fraction:.0%} of draws sit on a training point (NN1/NN2 < 1/3, baseline "
        f"{baseline_fraction:.0%}); median NN distance {distance_ratio:.2f}x the baseline: "
        "memorised. Start chains from fresh samples not used for training",
    }[status]
    return CheckResult(name, status, excess, MEMO_FAIL, explanation + ".", details)


def _worst(statuses) -> str:
    order = {"ok": 0, "warn": 1, "fail": 2}
    ran = [s for s in statuses if s in order]
    return max(ran, key=order.get) if ran else "skipped"


def _match_length(chains: np.ndarray, length: int) -> np.ndarray:
    """Resample each chain's draws to ``length`` evenly spaced ones (for a joint R-hat)."""
    if chains.shape[1] == length or len(chains) == 0:
        return chains
    index = np.linspace(0, chains.shape[1] - 1, length).round().astype(int)
    return chains[:, index]


def _check_dim(matrix, dim, name, other="the posterior draws"):
    if matrix.shape[1] != dim:
        raise ValueError(
            f"`{name}` has {matrix.shape[1]} entries per point but {other} have {dim}."
        )
    return matrix
