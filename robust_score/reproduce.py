"""``robust-score reproduce``: the paper's experiments (Cao, Chen, Sridharan & Wu, ICML 2026).

Learned-score experiments (Section 5 of the paper, as summarised in DESIGN.md):

- (a) target N(1, 2I), d = 50, metric: KL(fit || target) of a *diagonal* Gaussian fitted to
  the chains (30 chains cannot fit a full 50 x 50 covariance);
- (b) target 1/2 N(-1, 2I) + 1/2 N(4 * 1, 2I), d = 25, metric: sliced W2 (64 random
  directions, 1-D W2 by quantile matching against 2000 target draws) — not exact W2.

For each, a DSM MLP (``robust_score.learn.train_dsm``, VP schedule, trained on
t in [t(sigma = 0.1), T], so every sampler stops at sigma = 0.1) is fitted to 1000 target
samples duplicated x10; then 1000 ULA steps with the score at sigma = 0.1 from three starts
(30 chains each): N(0, I) ("vanilla"), fresh target samples, and training samples; plus
reverse SDE (VP) and annealed Langevin with the same learned time score. Annealed Langevin
runs on a VE schedule (the learned VP score re-expressed exactly, :func:`_as_ve_score`) with
the library's default 10 moves per level: its step rules scale with sigma^2, which under VP
barely moves the low levels, and with the exact score 100 levels x 2 moves (VP, snr 0.16)
left the mixture at mode weights 0.75 / 0.25 and the per-mode means at -0.55 and 2.2
(1000 draws), and VE with 2 moves per level overdispersed both targets 2.5-fold. Each
experiment's notes give the same diffusion samplers driven by the exact noised score (same
key, same number of draws) and the finite-sample floor of the metric with exact draws, so
that sampler error, score error and 30-draw noise can be told apart. Every sampler runs
``num_repeats`` times (5; new starts, training subset and noise each time, the same network)
and a row is the mean +- sd over them. Numbers are reported as measured, never tuned towards
the paper.

Constructions: the Thm 1 centre trap and the Thm 7 memorisation trap, every sampler (the
``robust-score demo`` table).

Writes ``table.md``, ``results.csv`` and PNG figures into ``--out``.
"""

import argparse
import collections
import csv
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs
from robust_score import demo, learn

__all__ = ["Settings", "main", "learned_score_experiment"]


@dataclass(frozen=True)
class Settings:
    num_train: int = 1000
    duplicate: int = 10
    train_steps: int = 20000
    hidden: tuple[int, ...] = (256, 256, 256)
    batch_size: int = 256
    langevin_steps: int = 1000
    step_size: float = 0.01
    num_chains: int = 30
    diffusion_steps: int = 200
    annealed_steps_per_level: int = 10
    record_every: int = 50
    num_repeats: int = 5

    @classmethod
    def quick(cls):
        return cls(train_steps=1500, hidden=(128, 128), langevin_steps=300, diffusion_steps=100,
                   record_every=30, num_repeats=2)  # fmt: skip


def _targets():
    """``name -> (sampler_of, metric name, metric, exact_score_of)``; ``exact_score_of(schedule)``
    is the target's exact time score noised under ``schedule``."""

    def gaussian(key, n):
        return 1.0 + math.sqrt(2.0) * jax.random.normal(key, (n, 50))

    def mixture(key, n):
        key_pick, key_noise = jax.random.split(key)
        centre = jnp.where(jax.random.bernoulli(key_pick, 0.5, (n, 1)), -1.0, 4.0)
        return centre + math.sqrt(2.0) * jax.random.normal(key_noise, (n, 25))

    def gaussian_score(schedule):
        return rs.scores.gaussian(np.ones(50), 2.0, schedule=schedule)

    def mixture_score(schedule):
        means = np.stack([-np.ones(25), np.full(25, 4.0)])
        return rs.scores.gaussian_mixture(np.full(2, 0.5), means, 2.0, schedule=schedule)

    return {
        "Gaussian N(1, 2I), d=50": (
            gaussian, "KL (diag. Gaussian fit)", _kl_to_target, gaussian_score
        ),
        "mixture 1/2 N(-1, 2I) + 1/2 N(4, 2I), d=25": (
            mixture, "sliced W2", _sliced_w2, mixture_score
        ),
    }  # fmt: skip


def _as_ve_score(time_score_fn, vp_schedule, ve_schedule):
    """A VP time score re-expressed on ``ve_schedule``: the VP marginal at ``t`` is the VE
    marginal at ``sigma_ve = sigma(t) / alpha(t)`` scaled by ``alpha(t)``, so
    ``s_ve(y, tau) = alpha s_vp(alpha y, t)`` with ``alpha = 1 / sqrt(1 + sigma_ve^2)`` and
    ``sigma(t) = sigma_ve alpha``. Exact for any score (no retraining), so the same learned
    network drives annealed Langevin on the schedule its step rules are made for."""

    def score(y, tau):
        sigma_ve = ve_schedule.sigma(tau)
        alpha = 1.0 / jnp.sqrt(1.0 + sigma_ve**2)
        t = vp_schedule.t_of_sigma(sigma_ve * alpha).astype(y.dtype)
        return alpha * time_score_fn(alpha * y, t)

    return score


def _metric_floor(sampler_of, metric, reference, num_draws, key, repeats=200):
    """Mean and standard deviation of ``metric`` over ``repeats`` sets of ``num_draws`` exact
    target draws: what the metric reads for a perfect sampler at this number of draws."""
    draws = np.asarray(sampler_of(key, repeats * num_draws))
    values = [metric(chunk, reference) for chunk in draws.reshape(repeats, num_draws, -1)]
    return float(np.mean(values)), float(np.std(values, ddof=1))


def _kl_to_target(points, reference):
    """KL(N(m, diag v) || N(1, 2I)) with (m, v) fitted to ``points``."""
    del reference
    mean, var = points.mean(axis=0), points.var(axis=0, ddof=1)
    return float(0.5 * np.sum(var / 2.0 + (mean - 1.0) ** 2 / 2.0 - 1.0 - np.log(var / 2.0)))


def _sliced_w2(points, reference, num_directions=64, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(num_directions, points.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    levels = (np.arange(len(points)) + 0.5) / len(points)
    total = 0.0
    for direction in directions:
        projected = np.sort(points @ direction)
        target = np.quantile(reference @ direction, levels)
        total += np.mean((projected - target) ** 2)
    return float(math.sqrt(total / num_directions))


def learned_score_experiment(
    name, sampler_of, metric_name, metric, settings, key, exact_score_of=None
):
    """Train a DSM score on ``sampler_of`` draws, run every sampler, return rows + curves.
    With ``exact_score_of(schedule)`` (the target's exact noised time score), the notes also
    hold the diffusion samplers run with it, as a control."""
    key_train, key_ref, key_run, key_fit = jax.random.split(key, 4)
    train = sampler_of(key_train, settings.num_train)
    reference = np.asarray(sampler_of(key_ref, 2000))
    # the network is trained on sigma in [0.1, 1] only, so the samplers must stop at
    # sigma = 0.1: make that the schedule's t_min (and finish with a Tweedie step)
    low_t = float(rs.schedules.vp().t_of_sigma(0.1))
    schedule = rs.schedules.vp(t_min=low_t)
    trained = learn.train_dsm(
        jnp.tile(train, (settings.duplicate, 1)),  # the paper's x10 duplication
        schedule,
        rng_key=key_fit,
        num_steps=settings.train_steps,
        batch_size=settings.batch_size,
        hidden=settings.hidden,
        t_range=(low_t, schedule.T),
        score_time=low_t,
        progress_bar=False,
    )
    dim = train.shape[1]
    thin = settings.record_every
    ula = rs.ula(trained.score_fn, settings.step_size)
    # annealed Langevin on VE (sigma_max = 50, inside the trained range: VP's T is sigma/alpha
    # = 150), ending at the same sigma / alpha = 0.1005 as the VP samplers
    sigma_min = float(schedule.sigma(low_t) / schedule.alpha(low_t))
    ve_schedule = rs.schedules.ve(sigma_min=sigma_min, sigma_max=50.0, t_min=0.0)
    levels, per_level = settings.diffusion_steps // 2, settings.annealed_steps_per_level
    diffusion = (
        ("reverse SDE (VP)", schedule, {"method": "sde", "num_steps": settings.diffusion_steps}),
        (f"annealed Langevin (VE, snr 0.16, {levels} x {per_level})", ve_schedule,
         {"method": "annealed_langevin", "num_levels": levels, "steps_per_level": per_level,
          "snr": 0.16}),
    )  # fmt: skip

    def run_diffusion(time_score_fn, on_schedule, options, key):
        if on_schedule is not schedule:
            time_score_fn = _as_ve_score(time_score_fn, schedule, on_schedule)
        draws, info = rs.diffusion.sample(
            key, time_score_fn, on_schedule, settings.num_chains, (dim,),
            return_info=True, **options,
        )  # fmt: skip
        draws = np.asarray(draws)
        finite = np.isfinite(draws).all(axis=1)
        evals = int(np.asarray(info.num_score_evals).reshape(-1)[0])
        return metric(draws[finite], reference), evals, int((~finite).sum())

    # Every sampler runs `num_repeats` times with fresh randomness (starts, training subset,
    # noise): with 30 chains one run's metric is noisy, so rows are mean +- sd over repeats.
    runs = collections.defaultdict(list)  # (sampler, start) -> [(value, evals, diverged)]
    curves, chain_ends = {}, collections.defaultdict(list)
    n = settings.num_chains
    for repeat in range(settings.num_repeats):
        key_start, key_fresh, key_noise, key_diffusion = _repeat_keys(key_run, repeat)
        starts = {
            "vanilla N(0, I)": jax.random.normal(key_start, (n, dim)),
            "fresh samples": sampler_of(key_fresh, n),
            "training samples": train[(repeat * n) % len(train) :][:n],
        }
        for label, positions in starts.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # divergent chains are counted in the table
                tree = rs.run(ula, key_noise, positions, settings.langevin_steps, thin=thin)
            draws = tree.posterior["x"].values  # (chain, draw, dim)
            curve = [metric(draws[:, i], reference) for i in range(draws.shape[1])]
            curves.setdefault(label, []).append(curve)
            chain_ends[label].append(draws[:, -1])
            diverged = int(tree.sample_stats["diverging"].values[:, -1].sum())
            runs[(f"ULA h={settings.step_size}", label)].append(
                (curve[-1], settings.langevin_steps, diverged)
            )
        for label, on_schedule, options in diffusion:
            result = run_diffusion(trained.time_score_fn, on_schedule, options, key_diffusion)
            runs[(label, "noise")].append(result)
    rows = []
    for (sampler, start_label), results in runs.items():
        values = np.array([r[0] for r in results])
        row = _row(name, sampler, start_label, metric_name, float(values.mean()),
                   results[0][1], sum(r[2] for r in results))  # fmt: skip
        row["sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        row["repeats"] = len(values)
        rows.append(row)
    steps = thin * (np.arange(settings.langevin_steps // thin) + 1)
    curves = {label: (steps, np.mean(c, axis=0)) for label, c in curves.items()}

    def nn_train(points):
        return float(np.median(_nearest(np.asarray(points), train))) / math.sqrt(dim)

    floor_mean, floor_sd = _metric_floor(
        sampler_of, metric, reference, settings.num_chains, jax.random.fold_in(key_ref, 1)
    )
    notes = {
        "training": trained.settings,
        "final_loss": float(trained.losses[-50:].mean()),
        # median distance / sqrt(d) of the chains' last draws to the nearest training point;
        # fresh target draws show what a chain that has forgotten its start would read
        "nn_train_of_training_start_chains": nn_train(np.vstack(chain_ends["training samples"])),
        "nn_train_of_fresh_start_chains": nn_train(np.vstack(chain_ends["fresh samples"])),
        "nn_train_of_fresh_draws": nn_train(reference),
        f"floor: {metric_name} of {settings.num_chains} exact draws (mean, sd over 200 sets)": (
            f"{floor_mean:.3f} +- {floor_sd:.3f}"
        ),
    }
    if exact_score_of is not None:
        exact = exact_score_of(schedule)
        control = {}
        for label, on_schedule, options in diffusion:
            values = [
                run_diffusion(exact, on_schedule, options, key)[0]
                for key in (_repeat_keys(key_run, r)[3] for r in range(settings.num_repeats))
            ]
            control[label] = f"{np.mean(values):.3f} +- {_sd(values):.3f}"
        notes["control: the same diffusion runs with the exact noised score"] = control
    return rows, curves, notes


def _repeat_keys(key_run, repeat):
    """Keys of one repeat: vanilla starts, fresh starts, Langevin noise, diffusion."""
    return jax.random.split(jax.random.fold_in(key_run, repeat), 4)


def _sd(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _nearest(points, train):
    train = np.asarray(train)
    squared = (points**2).sum(1)[:, None] - 2 * points @ train.T + (train**2).sum(1)[None]
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def _row(experiment, sampler, start, metric_name, value, evals, diverged):
    return {
        "experiment": experiment,
        "sampler": sampler,
        "start": start,
        "metric": metric_name,
        "value": value,
        "score_evals": evals,
        "diverged_chains": diverged,
    }


def _construction_rows():
    rows = []
    for r in demo.center_trap_rows() + demo.memorization_rows():
        rows.append(
            {
                "experiment": r.experiment,
                "sampler": r.sampler,
                "start": r.start,
                "metric": r.metric_name,
                "value": r.metric,
                "score_evals": r.score_evals,
                "diverged_chains": 0,
                "target": r.target,
                "verdict": r.verdict,
            }
        )
    return rows


def _write(out: Path, rows, curves, notes, settings, seconds):
    out.mkdir(parents=True, exist_ok=True)
    fields = ["experiment", "sampler", "start", "metric", "value", "sd", "repeats", "target",
              "score_evals", "diverged_chains", "verdict"]  # fmt: skip
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# robust-score reproduce",
        "",
        f"Settings: {settings}. Took {seconds:.0f} s.",
        "",
        "Learned-score rows: mean +- sd over the repeats (fresh randomness each; diverged "
        "counts all of them). Construction rows: one run, as `robust-score demo`.",
        "",
        "| experiment | sampler | start | metric | value | target | score evals | diverged "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = r.get("target")
        value = f"{r['value']:.3f}"
        if r.get("repeats", 1) > 1:
            value += f" ± {r['sd']:.3f} ({r['repeats']} runs)"
        lines.append(
            f"| {r['experiment']} | {r['sampler']} | {r['start']} | {r['metric']} "
            f"| {value} | {'' if target is None else f'{target:.3f}'} "
            f"| {r['score_evals']} | {r['diverged_chains']} | {r.get('verdict', '')} |"
        )
    lines += ["", "Training, controls and floors:"]
    for name, note in notes.items():
        if isinstance(note, dict):
            lines.append(f"- {name}:")
            for key, value in note.items():
                if isinstance(value, dict):
                    lines.append(f"  - {key}:")
                    lines += [f"    - {k}: {v}" for k, v in value.items()]
                else:
                    lines.append(f"  - {key}: {value}")
        else:
            lines.append(f"- {name}: {note}")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    _figures(out, curves)


def _figures(out: Path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, per_start in curves.items():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for label, (steps, values) in per_start.items():
            ax.plot(steps, values, label=label)
        ax.set_xlabel("Langevin step")
        ax.set_ylabel(name.split("|")[1])
        ax.set_yscale("log")
        ax.set_title(name.split("|")[0], fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        slug = "gaussian" if "Gaussian" in name else "mixture"
        fig.savefig(out / f"metric_vs_steps_{slug}.png", dpi=110)
        plt.close(fig)
    _trap_trajectories(out, plt)


def _trap_trajectories(out: Path, plt):
    """||x||/sqrt(d) along ULA under the Thm 1 trap: exact vs trapped score, same start."""
    mean = jnp.full(demo.DIM, 7.0)
    exact = rs.scores.gaussian(mean, 1.0)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, score in (("exact score", exact), ("trapped score", rs.scores.center_trap(exact))):
        tree = rs.run(rs.ula(score, 0.1), jax.random.key(0), jnp.zeros((4, demo.DIM)), 500)
        norms = np.linalg.norm(tree.posterior["x"].values, axis=-1) / math.sqrt(demo.DIM)
        for chain, values in enumerate(norms):
            ax.plot(values, color="C0" if label == "exact score" else "C3", alpha=0.7,
                    label=label if chain == 0 else None)  # fmt: skip
    ax.axhline(math.sqrt(50), color="k", linestyle="--", linewidth=1, label="target")
    ax.set_xlabel("ULA step")
    ax.set_ylabel("||x|| / sqrt(d)")
    ax.set_title("Thm 1 centre trap, d = 200, start at the centre", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "trap_trajectories.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="robust-score reproduce")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--out", default="reproduce-out", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    started = time.perf_counter()
    rows, curves, notes = [], {}, {}
    keys = jax.random.split(jax.random.key(args.seed), 2)
    for key, (name, (sampler_of, metric_name, metric, exact_score_of)) in zip(
        keys, _targets().items(), strict=True
    ):
        print(f"[reproduce] {name}: training the DSM score and sampling", flush=True)
        experiment_rows, experiment_curves, note = learned_score_experiment(
            name, sampler_of, metric_name, metric, settings, key, exact_score_of
        )
        rows += experiment_rows
        curves[f"{name}|{metric_name}"] = experiment_curves
        notes[name] = note
    print("[reproduce] Thm 1 and Thm 7 constructions", flush=True)
    rows += _construction_rows()
    seconds = time.perf_counter() - started
    _write(Path(args.out), rows, curves, notes, settings, seconds)
    print((Path(args.out) / "table.md").read_text())
    return rows
