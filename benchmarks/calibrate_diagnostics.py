"""Calibrate the trap report on the kinds of runs users bring, and report held-out rates.

Every case builds a target, a sampler and chain starts as a user would, runs 4 chains, and
asks for a trap report with the inputs a user has at three levels: the sampler only; the
sampler plus a time score (a diffusion model of the target; for unadjusted samplers also
the step size, which the user chose); and, for data-started runs, the training data too.
Kinds and what a right report says:

- **trap** (off-center well in an anisotropic target, a well between mixture modes, chains
  that never leave one mode, under ULA and under NumPyro's NUTS on a multi-site model,
  memorization): ``fail``. The rate of ``fail`` is the TPR.
- **clean** (exact-score MALA on isotropic and anisotropic targets, slowly mixing
  exact-score ULA, NumPyro's eight schools under NUTS and ``ScoreLangevin``): not
  ``warn``/``fail``; ``unconverged`` is allowed. The rates of ``warn or fail`` and of
  ``fail`` are the FPRs.
- **bias** (coarse-step ULA with the exact score): not ``fail``; with the step size given,
  the step-size check names the bias.

NumPyro runs are reported with the sampler level only: ``trap_report(mcmc)`` re-runs the
run's own kernel (a time score of a posterior in unconstrained space is not something such a
user has).

Seeds alternate: even seeds are the tuning half (where thresholds may be chosen), odd seeds
the held-out half; the page reports both, separately.

The memorization check is also run on real data, with ``--digits``: a score learned on
scikit-learn's digits by ``benchmarks/digits_memorization.py`` (Langevin from training
images, held-out images and noise) and the memorizing empirical score as the positive
control; its table replaces the block between the digits markers of
``--diagnostics-page``. Its thresholds were chosen on the synthetic cases, so the digits
runs are held out.

Run: .venv/bin/python benchmarks/calibrate_diagnostics.py --seeds 6 --out docs/calibration.md
"""

import argparse
import math
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

import robust_score as rs

NUM_CHAINS, NUM_STEPS = 4, 1000
VP = rs.schedules.vp()


@dataclass
class Case:
    """A user's run: the sampler, how chains start, and what the user could pass."""

    kind: str  # "trap", "clean" or "bias"
    sampler: object
    starts: object  # key -> (NUM_CHAINS, dim) starts
    time_score: object = None  # the diffusion model a user would have
    step: tuple | None = None  # (step_size, sampler_at) for unadjusted samplers
    train_data: object = None
    num_steps: int = NUM_STEPS
    numpyro: tuple | None = None  # (model, model kwargs, init values or None): an MCMC run
    extra: dict = field(default_factory=dict)


def _scales(dim):
    """Anisotropic standard deviations, log-spaced over two decades."""
    return np.geomspace(0.3, 3.0, dim)


def _whitened(score_white, scale):
    """A score on ``x = scale * y`` from one on ``y``: ``s_x(x) = s_y(x / scale) / scale``."""
    return lambda x: score_white(x / scale) / scale


def _normal_starts(dim, scale=1.0, center=0.0):
    return lambda key: center + scale * jax.random.normal(key, (NUM_CHAINS, dim))


def clean_mala(dim):
    scale = jnp.asarray(_scales(dim))
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(dim), scale**2)
    step = 0.5 * 0.3**2 * dim ** (-1 / 3)  # MALA's d^(-1/3) scaling at the smallest scale
    return Case(
        "clean",
        rs.mala(logdensity, step),
        _normal_starts(dim, scale),
        rs.scores.gaussian(jnp.zeros(dim), scale**2, schedule=VP),
    )


def clean_mala_isotropic(dim):
    logdensity = rs.scores.gaussian_logdensity(jnp.zeros(dim), 1.0)
    # near MALA's optimal d^(-1/3) scaling: acceptance about 0.6, ESS in the hundreds
    return Case(
        "clean",
        rs.mala(logdensity, 0.8 * dim ** (-1 / 3)),
        _normal_starts(dim),
        rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
    )


def slow_ula(dim):
    score = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    # h = 0.002 over 1000 steps: time span 2 against a relaxation time of 1, ESS ~ 1 per chain
    return Case(
        "clean",
        rs.ula(score, 0.002),
        _normal_starts(dim),
        rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
        step=(0.002, lambda h: rs.ula(score, h)),
    )


def coarse_ula(dim):
    score = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    # h = 0.2: stationary variance 1 / (1 - h/2) = 1.11, an O(h) bias of 11 %
    return Case(
        "bias",
        rs.ula(score, 0.2),
        _normal_starts(dim),
        rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
        step=(0.2, lambda h: rs.ula(score, h)),
    )


def off_center_trap(dim):
    scale = jnp.asarray(_scales(dim))
    sqrt_d = math.sqrt(dim)
    center = jnp.full(dim, 3.0)  # 3 sd out in every whitened coordinate: no target mass
    white = rs.scores.center_trap(
        rs.scores.gaussian(jnp.zeros(dim), 1.0),
        center,
        r_in=max(0.6 * sqrt_d, 1.0),
        r_out=max(0.8 * sqrt_d, 1.4),
        stiffness=25.0,
    )
    trapped = _whitened(white, scale)
    # the well's curvature is 25 / scale^2: h = 0.002 is stable at the smallest scale (0.3)
    # and relaxes the largest (3) about 5 times over the run
    return Case(
        "trap",
        rs.ula(trapped, 0.002),
        _normal_starts(dim, 0.05 * scale, center * scale),
        rs.scores.gaussian(jnp.zeros(dim), scale**2, schedule=VP),
        step=(0.002, lambda h: rs.ula(trapped, h)),
    )


def _two_modes(dim, separation=8.0):
    means = np.zeros((2, dim))
    means[0, 0], means[1, 0] = -separation / 2, separation / 2
    return means


def mode_dropping(dim):
    means = _two_modes(dim)
    score = rs.scores.gaussian_mixture(np.ones(2), means, 1.0)
    # modes 8 sd apart: exact-score ULA started in one mode never crosses in 1000 steps
    return Case(
        "trap",
        rs.ula(score, 0.05),
        _normal_starts(dim, 1.0, jnp.asarray(means[0])),
        rs.scores.gaussian_mixture(np.ones(2), means, 1.0, schedule=VP),
        step=(0.05, lambda h: rs.ula(score, h)),
    )


def well_between_modes(dim):
    means = _two_modes(dim)
    exact = rs.scores.gaussian_mixture(np.ones(2), means, 1.0)
    radius = max(0.3 * math.sqrt(dim), 0.8)
    well = rs.scores.center_trap(exact, jnp.zeros(dim), r_in=radius, r_out=1.5 * radius,
                                 stiffness=25.0)  # fmt: skip
    return Case(
        "trap",
        rs.ula(well, 0.005),
        _normal_starts(dim, 0.05),
        rs.scores.gaussian_mixture(np.ones(2), means, 1.0, schedule=VP),
        step=(0.005, lambda h: rs.ula(well, h)),
    )


def memorization(dim, num_train=100):
    train = jax.random.normal(jax.random.key(123), (num_train, dim))
    # stiffness 400: the wells' own spread sqrt(d / 400) sits well inside their radius
    # 0.16 sqrt(d), so a chain does not leak out (at the paper's 100, d = 10 chains escape)
    memorizing = rs.scores.memorization_trap(
        rs.scores.gaussian(jnp.zeros(dim), 1.0), train, stiffness=400.0
    )

    def starts(key):
        return train[jax.random.choice(key, num_train, (NUM_CHAINS,), replace=False)]

    return Case(
        "trap",
        rs.ula(memorizing, 0.001),
        starts,
        rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=VP),
        step=(0.001, lambda h: rs.ula(memorizing, h)),
        train_data=train,
    )


SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def eight_schools(sigma, y=None):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def two_mode_model(dim):
    """A positive scale site, a deterministic site, and a d-dimensional location whose
    first coordinate has two modes 10 apart (at 8, NUTS chains now and then cross)."""
    import numpyro
    import numpyro.distributions as dist

    scale = numpyro.sample("scale", dist.LogNormal(0.0, 0.1))
    mixture = dist.MixtureSameFamily(
        dist.Categorical(probs=jnp.ones(2) / 2), dist.Normal(jnp.array([-5.0, 5.0]), 1.0)
    )
    first = numpyro.sample("first", mixture)
    rest = numpyro.sample("rest", dist.Normal(0.0, scale).expand([dim - 1]).to_event(1))
    numpyro.deterministic("norm", jnp.sqrt(first**2 + jnp.sum(rest**2)))


def nuts_eight_schools(dim):
    from numpyro.infer import NUTS

    return Case("clean", NUTS, None, numpyro=(eight_schools, {"sigma": SIGMA, "y": Y}, None))


def score_langevin_eight_schools(dim):
    def kernel(model):
        return rs.numpyro.ScoreLangevin(model, adjust=True)

    return Case("clean", kernel, None, numpyro=(eight_schools, {"sigma": SIGMA, "y": Y}, None))


def nuts_one_mode(dim):
    from numpyro.infer import NUTS

    # every chain starts in the mode at -5; NUTS does not cross 10 sd in 1000 steps
    start = {"scale": 1.0, "first": -5.0, "rest": np.zeros(dim - 1)}
    return Case("trap", NUTS, None, numpyro=(lambda: two_mode_model(dim), {}, start))


CASES = {  # name: (build, dims)
    "clean MALA, isotropic Gaussian": (clean_mala_isotropic, (2, 10, 100, 1000)),
    "clean MALA, anisotropic Gaussian": (clean_mala, (2, 10, 100, 1000)),
    "clean ULA, slowly mixing (ESS < 10)": (slow_ula, (10, 100, 1000)),
    "coarse-step ULA, exact score": (coarse_ula, (2, 10, 100, 1000)),
    "off-center trap, anisotropic Gaussian": (off_center_trap, (2, 10, 100, 1000)),
    "chains never leave one mode": (mode_dropping, (2, 10, 100, 1000)),
    "well between mixture modes": (well_between_modes, (2, 10, 100)),
    "memorization (Thm 7)": (memorization, (10, 100)),
    "NumPyro eight schools, NUTS": (nuts_eight_schools, (10,)),
    "NumPyro eight schools, ScoreLangevin MALA": (score_langevin_eight_schools, (10,)),
    "NumPyro two-mode model, NUTS in one mode": (nuts_one_mode, (2, 10)),
}
LEVELS = ("sampler", "sampler + time score", "+ training data")


def report_inputs(case: Case, starts, level: str) -> dict:
    inputs = {"sampler": case.sampler}
    if level != "sampler":
        inputs.update(time_score_fn=case.time_score, schedule=VP)
        if case.step is not None:
            inputs.update(step_size=case.step[0], sampler_at=case.step[1])
    if level == "+ training data":
        inputs.update(train_data=case.train_data, starts=starts)
    return inputs


def run_numpyro_case(case: Case, seed: int):
    """The user's MCMC (4 chains x (1000 warm-up + 1000 draws)) and its sampler-only
    report, which re-runs the MCMC's own kernel."""
    from numpyro.infer import MCMC, init_to_value

    model, kwargs, start = case.numpyro
    key_run, key_report = jax.random.split(jax.random.key(seed))
    build = case.sampler
    kernel = (
        build(model) if start is None else build(model, init_strategy=init_to_value(values=start))
    )
    mcmc = MCMC(kernel, num_warmup=NUM_STEPS, num_samples=NUM_STEPS, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.run(key_run, **kwargs)
        started = time.perf_counter()
        report = rs.diagnostics.trap_report(mcmc, rng_key=key_report)
    return {"sampler": (report, time.perf_counter() - started)}


def run_case(case: Case, seed: int, levels):
    if case.numpyro is not None:
        return run_numpyro_case(case, seed)
    key_start, key_run, key_report = jax.random.split(jax.random.key(seed), 3)
    starts = case.starts(key_start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = rs.run(case.sampler, key_run, starts, case.num_steps)
        out = {}
        for level in levels:
            started = time.perf_counter()
            inputs = report_inputs(case, starts, level)
            report = rs.diagnostics.trap_report(tree, rng_key=key_report, **inputs)
            out[level] = (report, time.perf_counter() - started)
    return out


def outcome(report) -> dict:
    step = report.get(rs.diagnostics.STEP_SIZE)
    return {
        "status": report.status,
        "bias named": bool(step is not None and step.details.get("bias")),
    }


def summarize(results) -> list[str]:
    """Markdown rows: per case, dimension, level and half, the rates that matter."""
    rows = [
        "| case | kind | d | inputs | half | runs | fail | warn | unconverged | ok | "
        "bias named | report s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, kind, dim, level, half), entries in sorted(results.items()):
        statuses = [e["status"] for e in entries]
        rate = {s: np.mean([x == s for x in statuses]) for s in ("fail", "warn", "unconverged")}
        ok = np.mean([x in ("ok", "skipped") for x in statuses])
        named = np.mean([e["bias named"] for e in entries])
        seconds = np.median([e["seconds"] for e in entries])
        rows.append(
            f"| {name} | {kind} | {dim} | {level} | {half} | {len(entries)} "
            f"| {rate['fail']:.0%} | {rate['warn']:.0%} | {rate['unconverged']:.0%} "
            f"| {ok:.0%} | {named:.0%} | {seconds:.1f} |"
        )
    return rows


def held_out_table(results) -> list[str]:
    """TPR (traps: fail) and FPR (clean: warn or fail; fail) per kind and level, held out."""
    pooled = defaultdict(list)
    for (_, kind, _, level, half), entries in results.items():
        if half == "held-out":
            pooled[(kind, level)].extend(e["status"] for e in entries)
    rows = [
        "| kind | inputs | runs | fail | warn or fail | unconverged |",
        "|---|---|---|---|---|---|",
    ]
    for (kind, level), statuses in sorted(pooled.items()):
        fail = np.mean([s == "fail" for s in statuses])
        flagged = np.mean([s in ("warn", "fail") for s in statuses])
        unconverged = np.mean([s == "unconverged" for s in statuses])
        rows.append(
            f"| {kind} | {level} | {len(statuses)} | {fail:.0%} | {flagged:.0%} "
            f"| {unconverged:.0%} |"
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", default=None, help="substring of a case name")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from here; a fresh range is a held-out set no threshold has seen",
    )
    parser.add_argument("--held-out-only", action="store_true", help="run the odd seeds only")
    parser.add_argument("--max-dim", type=int, default=1000)
    parser.add_argument(
        "--digits", action="store_true", help="only the real-data memorization case (digits)"
    )
    parser.add_argument(
        "--diagnostics-page",
        default=None,
        help="a Markdown page whose block between the calibration markers gets the held-out table",
    )
    args = parser.parse_args(argv)
    if args.digits:
        import digits_memorization

        table = digits_memorization.markdown_table(digits_memorization.main())
        print("\n".join(table))
        if args.diagnostics_page:
            replace_block(
                args.diagnostics_page, _DIGITS, table, "calibrate_diagnostics.py --digits"
            )
        return
    results = defaultdict(list)
    started = time.perf_counter()
    for name, (build, dims) in CASES.items():
        if args.only and args.only not in name:
            continue
        for dim in (d for d in dims if d <= args.max_dim):
            case = build(dim)
            levels = LEVELS if case.train_data is not None else LEVELS[:2]
            levels = LEVELS[:1] if case.numpyro is not None else levels
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                half = "tuning" if seed % 2 == 0 else "held-out"
                if args.held_out_only and half == "tuning":
                    continue
                for level, (report, seconds) in run_case(case, seed, levels).items():
                    entry = {**outcome(report), "seconds": seconds}
                    results[(name, case.kind, dim, level, half)].append(entry)
            print(f"{name} d={dim}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    rows, held_out = summarize(results), held_out_table(results)
    print("\n".join(held_out))
    command = (
        f"benchmarks/calibrate_diagnostics.py --seeds {args.seeds} --max-dim {args.max_dim}"
        + (f" --first-seed {args.first_seed}" if args.first_seed else "")
        + (" --held-out-only" if args.held_out_only else "")
    )
    if args.diagnostics_page:
        write_held_out(args.diagnostics_page, held_out, command)
    title = "# Trap-report calibration" + (": fresh held-out seeds" if args.held_out_only else "")
    title += "\n\n"
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(
                title + f"Generated by `{command}` "
                f"in {time.perf_counter() - started:.0f} s: {NUM_CHAINS} chains x "
                f"{NUM_STEPS} steps per run; even seeds are the tuning half, odd seeds "
                "the held-out half. See the script's docstring for the cases.\n\n"
                "## Held out, per kind and inputs\n\n"
                + "\n".join(held_out)
                + "\n\n## Every case\n\n"
                + "\n".join(rows)
                + "\n"
            )


_HELD_OUT = ("<!-- calibration table: start -->", "<!-- calibration table: end -->")
_DIGITS = ("<!-- digits table: start -->", "<!-- digits table: end -->")


def write_held_out(page: str, held_out: list[str], command: str):
    """Replace the block between the calibration markers of ``page`` with the table."""
    replace_block(page, _HELD_OUT, held_out, command)


def replace_block(page: str, markers: tuple[str, str], lines: list[str], command: str):
    """Replace the block between ``markers`` in ``page`` with ``lines``."""
    start, end = markers
    with open(page) as handle:
        text = handle.read()
    if start not in text or end not in text:
        raise SystemExit(f"{page} has no '{start}' ... '{end}' block")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    block = f"{start}\n\nHeld out (`{command}`):\n\n" + "\n".join(lines) + f"\n\n{end}"
    with open(page, "w") as handle:
        handle.write(head + block + tail)


if __name__ == "__main__":
    main()
