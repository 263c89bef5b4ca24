"""Per-step time of ``rs.ula``, ``rs.annealed_langevin`` and ``rs.reverse_diffusion`` against
hand-written ``jax.lax.scan`` loops doing the same arithmetic.

Target N(0, I_d) with the hand-written exact score ``lambda x: -x`` (for the diffusion samplers
the time score ``lambda x, t: -x``, exact under the VP schedule because ``alpha^2 + sigma^2 = 1``)
so that the score does not dominate and the loop overhead shows. Two hand-written baselines:

- ``hand``: the loop a user would write to get the *same draws* -- the same per-chain keys
  (``rs.sample_chains``: ``fold_in(fold_in(key, chain), step)``; ``rs.diffusion.sample``:
  ``split(key, num_samples)`` then the kernel's own splits), the same update, vmapped over
  chains. Its output is checked equal to the library's (``allclose``). The goal is against it.
- ``batched``: one key per step for all chains, the update on the ``(chains, d)`` array: no
  per-chain key derivation, so it does less random-number work; shown for information.

The library's loops also compute ``is_divergent`` (an ``isfinite`` reduction per step) and,
in ``rs.sample_chains``, reduce it over the thinning block: that is part of what is measured.
"""

import collections
import math
import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import compare, compile_events, log, table, verdict

import robust_score as rs
from robust_score.kernels._annealing import levels_on
from robust_score.kernels.annealed_langevin import noise_levels

DIMS = (2, 100, 1000)
CHAINS = (1, 100, 1000)
ULA_STEP = 0.1
AL_EPS = 2e-5  # NCSN rule h_i = eps sigma_i^2 / sigma_min^2; sigma_min^2 = 2e-4 under vp()
AL_STEPS_PER_LEVEL = 5
SCHEDULE = rs.schedules.vp()
GOAL = 1.05


def isotropic_score(x):
    return -x


def isotropic_time_score(x, t):
    return -x


def num_moves(dim, chains, target_s, overhead_s=4e-7, per_entry_s=1.4e-8):
    """Moves for a cell to take about ``target_s`` (a rough per-move cost model)."""
    moves = target_s / (overhead_s + per_entry_s * dim * chains)
    return int(min(max(moves, 10), 1_000_000))


# ----------------------------------------------------------------------------------- ULA
def hand_ula(score_fn, step_size, num_steps, batched=False):
    """ULA on ``(chains, d)`` from ``x0``: returns the final positions."""
    scale = jnp.sqrt(2.0 * step_size)
    per_chain_score = jax.vmap(score_fn)

    if batched:

        @jax.jit
        def run(key, x0):
            def step(x, k):
                z = jax.random.normal(k, x.shape, x.dtype)
                return x + step_size * per_chain_score(x) + scale * z, None

            x, _ = jax.lax.scan(step, x0, jax.random.split(key, num_steps))
            return x

        return run

    @jax.jit
    def run(key, x0):
        chain_keys = jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(x0.shape[0]))

        def step(x, i):
            keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, i)
            z = jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape, xi.dtype))(keys, x)
            return x + step_size * per_chain_score(x) + scale * z, None

        x, _ = jax.lax.scan(step, x0, jnp.arange(num_steps))
        return x

    return run


def ula_cell(dim, chains, target_s, repeats, score_fn=isotropic_score, label="-x"):
    steps = num_moves(dim, chains, target_s, overhead_s=3e-7)
    key = jax.random.key(1)
    x0 = jnp.zeros((chains, dim))
    algorithm = rs.ula(score_fn, ULA_STEP)
    hand = hand_ula(score_fn, ULA_STEP, steps)
    batched = hand_ula(score_fn, ULA_STEP, steps, batched=True)
    hand_copy = hand_ula(score_fn, ULA_STEP, steps)  # A/A control: the same loop, jitted again
    fns = {
        "rs.sample_chains": lambda: rs.sample_chains(algorithm, key, x0, steps, thin=steps)[0],
        "rs.run": lambda: rs.run(algorithm, key, x0, steps, thin=steps).posterior["x"].values,
        "hand": lambda: hand(key, x0),
        "batched": lambda: batched(key, x0),
        "hand copy": lambda: hand_copy(key, x0),
    }
    timings = compare(fns, repeats)
    error = float(jnp.max(jnp.abs(fns["rs.sample_chains"]()[:, 0] - fns["hand"]())))
    return steps, timings, error


# ------------------------------------------------------------------- annealed Langevin
def _levels(times):
    levels = levels_on(SCHEDULE, times, jnp.float32)
    return jax.tree.map(np.asarray, levels)


def hand_annealed(time_score_fn, num_levels, steps_per_level, chains, dim):
    with jax.ensure_compile_time_eval():
        levels = _levels(noise_levels(SCHEDULE, num_levels))
        prior_std = SCHEDULE.prior_std()
    t = np.repeat(levels.t, steps_per_level)
    sigma = np.repeat(levels.sigma, steps_per_level)
    last_sigma, last_alpha, last_t = levels.sigma[-1], levels.alpha[-1], levels.t[-1]
    moves = num_levels * steps_per_level

    def path(key, shape):
        key_start, key_path = jax.random.split(key)
        x = prior_std * jax.random.normal(key_start, shape)

        def move(x, inputs):
            k, t_i, sigma_i = inputs
            s = time_score_fn(x, t_i)
            h = AL_EPS * (sigma_i / last_sigma) ** 2
            return x + h * s + jnp.sqrt(2.0 * h) * jax.random.normal(k, shape), None

        keys = jax.random.split(key_path, moves)
        x, _ = jax.lax.scan(move, x, (keys, t, sigma))
        return (x + last_sigma**2 * time_score_fn(x, last_t)) / last_alpha

    return jax.jit(lambda key: jax.vmap(lambda k: path(k, (dim,)))(jax.random.split(key, chains)))


def hand_reverse_sde(time_score_fn, num_steps, chains, dim, check=None):
    """``check``: ``None``; ``"all_finite"``, the library's flag ``all_finite(s, x_new)``; or
    ``"sum"``, ``isfinite(sum(x_new))`` (``s`` enters ``x_new`` with a positive factor, so a
    non-finite score makes ``x_new`` non-finite too). With a check, returns ``(x, finite)``."""
    from robust_score.kernels.integrators import all_finite

    with jax.ensure_compile_time_eval():
        levels = _levels(SCHEDULE.time_grid(num_steps))
        prior_std = SCHEDULE.prior_std()
    now = jax.tree.map(lambda a: a[:-1], levels)
    nxt = jax.tree.map(lambda a: a[1:], levels)
    end_t, end_alpha, end_sigma = levels.t[-1], levels.alpha[-1], levels.sigma[-1]

    def path(key, shape):
        key_start, key_path = jax.random.split(key)
        x = prior_std * jax.random.normal(key_start, shape)

        def move(carry, inputs):
            x, finite = carry
            k, t, t_next, drift, g2 = inputs
            s = time_score_fn(x, t)
            dt = t - t_next
            noise = jax.random.normal(k, shape)
            x_new = x + dt * (g2 * s - drift * x) + jnp.sqrt(g2 * dt) * noise
            if check == "all_finite":
                finite = finite & all_finite(s, x_new)
            elif check == "sum":
                finite = finite & jnp.isfinite(jnp.sum(x_new))
            return (x_new, finite), None

        keys = jax.random.split(key_path, num_steps)
        xs = (keys, now.t, nxt.t, now.drift, now.diffusion_squared)
        (x, finite), _ = jax.lax.scan(move, (x, jnp.asarray(True)), xs)
        x = (x + end_sigma**2 * time_score_fn(x, end_t)) / end_alpha
        return x if check is None else (x, finite)

    return jax.jit(lambda key: jax.vmap(lambda k: path(k, (dim,)))(jax.random.split(key, chains)))


def diffusion_cell(
    kind, dim, chains, target_s, repeats, time_score_fn=isotropic_time_score, with_chains=False
):
    moves = num_moves(dim, chains, target_s, overhead_s=6e-7, per_entry_s=1.6e-8)
    key = jax.random.key(2)
    start = jnp.zeros((chains, dim))
    if kind == "annealed_langevin":
        levels = max(2, moves // AL_STEPS_PER_LEVEL)
        moves = levels * AL_STEPS_PER_LEVEL
        settings = {"num_levels": levels, "steps_per_level": AL_STEPS_PER_LEVEL}
        algorithm = rs.annealed_langevin(
            time_score_fn, SCHEDULE, levels, AL_STEPS_PER_LEVEL, step_size=AL_EPS
        )
        sample_kwargs = {"method": kind, **settings, "step_size": AL_EPS}
        hand = hand_annealed(time_score_fn, levels, AL_STEPS_PER_LEVEL, chains, dim)
    else:
        algorithm = rs.reverse_diffusion(time_score_fn, SCHEDULE, moves, method="sde")
        sample_kwargs = {"method": "sde", "num_steps": moves}
        hand = hand_reverse_sde(time_score_fn, moves, chains, dim)

    def with_sample():
        return rs.diffusion.sample(key, time_score_fn, SCHEDULE, chains, (dim,), **sample_kwargs)

    hand_copy = hand_reverse_sde(time_score_fn, moves, chains, dim) if kind == "sde" else None
    if hand_copy is None:
        hand_copy = hand_annealed(
            time_score_fn, moves // AL_STEPS_PER_LEVEL, AL_STEPS_PER_LEVEL, chains, dim
        )
    fns = {
        "rs.diffusion.sample": with_sample,
        "hand": lambda: hand(key),
        "hand copy": lambda: hand_copy(key),
    }
    if with_chains:
        fns["rs.sample_chains"] = lambda: rs.sample_chains(algorithm, key, start, 1)[0]
    timings = compare(fns, repeats)
    error = float(jnp.max(jnp.abs(fns["rs.diffusion.sample"]() - fns["hand"]())))
    return moves, timings, error


# ----------------------------------------------------------------------------------- driver
def _row(sampler, driver, dim, chains, moves, timings, error):
    rs_t, hand_t, batched_t = timings[driver], timings["hand"], timings.get("batched")
    copy_t = timings.get("hand copy")
    per_move = 1e6 / moves
    return [
        sampler,
        f"`{driver}`",
        dim,
        chains,
        moves,
        rs_t.run * per_move,
        hand_t.run * per_move,
        rs_t.run / hand_t.run,
        rs_t.cpu / hand_t.cpu,
        copy_t.run / hand_t.run if copy_t else "–",
        batched_t.run * per_move if batched_t else "–",
        rs_t.run,
        rs_t.compile,
        hand_t.compile,
        error,
    ]


HEADER = [
    "sampler",
    "driver",
    "d",
    "chains",
    "steps",
    "rs µs/step",
    "hand µs/step",
    "**rs / hand**",
    "rs / hand (CPU s)",
    "A/A: hand copy / hand",
    "batched µs/step",
    "rs run s",
    "rs compile s",
    "hand compile s",
    "max abs(rs − hand)",
]


def main(target_s=0.2, repeats=6, dims=DIMS, chains_list=CHAINS, chains_driver_dim=100):
    """The grid: ULA through ``rs.sample_chains`` and ``rs.run`` (one compiled program);
    annealed Langevin and the reverse SDE through ``rs.diffusion.sample`` everywhere and
    through ``rs.sample_chains`` on the ``d = chains_driver_dim`` row."""
    rows, ratios = [], {}
    for dim in dims:
        for chains in chains_list:
            steps, timings, error = ula_cell(dim, chains, target_s, repeats)
            for driver in ("rs.sample_chains", "rs.run"):
                row = _row("ULA", driver, dim, chains, steps, timings, error)
                rows.append(row)
                ratios[("ULA", driver, dim, chains)] = row[7]
                log(*row[:10])
            for kind, name in (("annealed_langevin", "annealed Langevin"), ("sde", "reverse SDE")):
                with_chains = dim == chains_driver_dim
                moves, timings, error = diffusion_cell(
                    kind, dim, chains, target_s, repeats, with_chains=with_chains
                )
                drivers = ("rs.diffusion.sample",) + (("rs.sample_chains",) if with_chains else ())
                for driver in drivers:
                    row = _row(name, driver, dim, chains, moves, timings, error)
                    rows.append(row)
                    ratios[(name, driver, dim, chains)] = row[7]
                    log(*row[:10])
    # one row each with the library's exact Gaussian score in both loops
    dim, chains = 100, 100
    gaussian = rs.scores.gaussian(jnp.zeros(dim), 1.0)
    steps, timings, error = ula_cell(dim, chains, target_s, repeats, score_fn=gaussian)
    extra = [
        _row("ULA, rs.scores.gaussian", "rs.sample_chains", dim, chains, steps, timings, error)
    ]
    time_gaussian = rs.scores.gaussian(jnp.zeros(dim), 1.0, schedule=SCHEDULE)
    moves, timings, error = diffusion_cell(
        "sde", dim, chains, target_s, repeats, time_score_fn=time_gaussian
    )
    name = "reverse SDE, rs.scores.gaussian"
    extra.append(_row(name, "rs.diffusion.sample", dim, chains, moves, timings, error))
    for row in extra:
        log(*row[:10])
    return rows, extra, ratios


# --------------------------------------------------------------------------- anatomy
def _primitives(jaxpr, counter):
    """Count primitives of a jaxpr, descending into nested jit calls but not into loops."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("pjit", "jit", "closed_call", "custom_jvp_call"):
            sub = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
            _primitives(getattr(sub, "jaxpr", sub), counter)
        else:
            counter[eqn.primitive.name] += 1
    return counter


def innermost_scan(jaxpr):
    """The deepest ``scan`` equation (the per-step loop body) of a traced program."""
    best = (None, -1)

    def walk(jpr, depth):
        nonlocal best
        for eqn in jpr.eqns:
            for value in eqn.params.values():
                sub = getattr(value, "jaxpr", value)
                if hasattr(sub, "eqns"):
                    walk(sub, depth + (eqn.primitive.name == "scan"))
            if eqn.primitive.name == "scan" and depth >= best[1]:
                best = (eqn, depth)

    walk(jaxpr.jaxpr, 0)
    return best[0]


def loop_body_diff(rs_fn, hand_fn):
    """Per-step loop bodies of two zero-argument programs: primitives only in one of them
    (nested jit calls inlined; duplicates counted)."""
    bodies = {}
    for name, fn in (("rs", rs_fn), ("hand", hand_fn)):
        eqn = innermost_scan(jax.make_jaxpr(fn)())
        body = eqn.params["jaxpr"].jaxpr
        arrays = [str(v.aval) for v in body.invars if getattr(v.aval, "ndim", 0) >= 2]
        bodies[name] = (_primitives(body, collections.Counter()), arrays)
    rs_count, hand_count = bodies["rs"][0], bodies["hand"][0]
    extra = rs_count - hand_count
    missing = hand_count - rs_count
    return {
        "rs ops": sum(rs_count.values()),
        "hand ops": sum(hand_count.values()),
        "only in rs": ", ".join(f"{k}×{v}" for k, v in sorted(extra.items())) or "none",
        "only in hand": ", ".join(f"{k}×{v}" for k, v in sorted(missing.items())) or "none",
        "rs (chains, d) inputs": ", ".join(bodies["rs"][1]),
        "hand (chains, d) inputs": ", ".join(bodies["hand"][1]),
    }


def _computations(hlo):
    pattern = r"^(?:ENTRY )?%(\S+) .*?\{\n(.*?)\n\}"
    return {m.group(1): m.group(2) for m in re.finditer(pattern, hlo, re.S | re.M)}


_WHILE = r"= \(([^)]*)\) while\(.*?body=%(\S+?),"


def step_loop_ops(fn, chains, dim):
    """Instructions of the compiled per-step loop body (the innermost ``while`` carrying the
    ``(chains, d)`` positions) whose result has ``chains * d`` entries, by opcode and dtype:
    each is one pass over a ``(chains, d)`` array per step. ``fn`` must return everything the
    library returns (e.g. ``return_info=True``): what it drops, XLA removes."""
    hlo = jax.jit(fn).lower().compile().as_text()
    computations = _computations(hlo)
    shape = f"f32[{chains},{dim}]"
    bodies = [body for carry, body in re.findall(_WHILE, hlo) if shape in carry]
    inner = [
        body
        for body in bodies
        if not any(shape in carry for carry, _ in re.findall(_WHILE, computations[body]))
    ]
    counts = collections.Counter()
    for line in computations[inner[0]].splitlines():
        match = re.match(r"\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\]\S* (\S+?)\(", line)
        if not match:
            continue
        name, dtype, dims, opcode = match.groups()
        if math.prod(int(n) for n in dims.split(",") if n) != chains * dim:
            continue
        if opcode in ("get-tuple-element", "parameter", "tuple", "bitcast"):
            continue
        label = "is-finite" if "is-finite" in name else opcode
        counts[f"{label} {dtype}"] += 1
    return counts


def hlo_table(programs, chains, dim):
    """Rows: program, its per-step ``(chains, d)`` passes, and the difference to the first."""
    counted = {name: step_loop_ops(fn, chains, dim) for name, fn in programs.items()}
    base_name = next(iter(counted))
    rows = []
    for name, counts in counted.items():
        extra = counts - counted[base_name]
        rows.append(
            [
                name,
                sum(counts.values()),
                ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())),
                ", ".join(f"{k} ×{v}" for k, v in sorted(extra.items())) or "–",
            ]
        )
    return rows


HLO_HEADER = [
    "loop",
    "compiled program",
    "(chains, d) passes per step",
    "by opcode and result type",
    "beyond the first row",
]


def ula_variants(score_fn, step_size, num_steps):
    """Hand loops adding, one at a time, what ``rs.ula`` under ``rs.sample_chains`` does beyond
    the plain update: the score carried in the state, then the per-step ``is_divergent``."""
    scale = jnp.sqrt(2.0 * step_size)

    def build(carry_score, check, cheap=False):
        @jax.jit
        def run(key, x0):
            chain_keys = jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(x0.shape[0]))

            def noise(i, x):
                keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, i)
                return jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape, xi.dtype))(keys, x)

            def step(carry, i):
                x, s = carry if carry_score else (carry, score_fn(carry))
                x = x + step_size * s + scale * noise(i, x)
                s = score_fn(x)
                if cheap:  # one float reduction per chain: inf or nan anywhere makes it non-finite
                    flag = ~jnp.isfinite(jnp.sum(x, 1) + jnp.sum(s, 1))
                else:  # rs: kernels.integrators.all_finite
                    flag = ~(jnp.all(jnp.isfinite(x), 1) & jnp.all(jnp.isfinite(s), 1))
                return ((x, s) if carry_score else x), (flag if check else None)

            init = (x0, score_fn(x0)) if carry_score else x0
            carry, flags = jax.lax.scan(step, init, jnp.arange(num_steps))
            x = carry[0] if carry_score else carry
            return (x, jnp.any(flags, 0)) if check else x

        return run

    return {
        "hand (x only)": build(False, False),
        "+ score carried in the state": build(True, False),
        "+ is_divergent per step (= rs's arithmetic)": build(True, True),
        "(alternative) score carried, is_divergent as ~isfinite(sum x + sum s)": build(
            True, True, cheap=True
        ),
    }


def anatomy(
    cells=((1000, 1000), (1000, 1), (2, 1000)),
    sde_cells=((1000, 1000), (1000, 1)),
    target_s=0.25,
    repeats=7,
):
    """Where ULA's overhead goes, cell by cell, and the jaxpr difference of the loop bodies."""
    rows = []
    for dim, chains in cells:
        steps = num_moves(dim, chains, target_s, overhead_s=3e-7)
        key, x0 = jax.random.key(1), jnp.zeros((chains, dim))
        algorithm = rs.ula(isotropic_score, ULA_STEP)
        fns = {
            name: partial(fn, key, x0)
            for name, fn in ula_variants(isotropic_score, ULA_STEP, steps).items()
        }
        fns["rs.sample_chains"] = partial(_first, rs.sample_chains, algorithm, key, x0, steps)
        timings = compare(fns, repeats)
        base, base_cpu = timings["hand (x only)"].run, timings["hand (x only)"].cpu
        for name, timing in timings.items():
            rows.append(
                [
                    dim,
                    chains,
                    steps,
                    name,
                    timing.run * 1e6 / steps,
                    timing.run / base,
                    timing.cpu / base_cpu,
                ]
            )
            log(*rows[-1])
    for dim, chains in sde_cells:
        moves = num_moves(dim, chains, target_s, overhead_s=6e-7, per_entry_s=1.6e-8)
        key = jax.random.key(2)
        fns = {
            "reverse SDE: hand": partial(
                hand_reverse_sde(isotropic_time_score, moves, chains, dim), key
            ),
            "reverse SDE: hand + all_finite(s, x_new) (= rs's arithmetic)": partial(
                hand_reverse_sde(isotropic_time_score, moves, chains, dim, "all_finite"), key
            ),
            "reverse SDE: (alternative) hand + isfinite(sum x_new)": partial(
                hand_reverse_sde(isotropic_time_score, moves, chains, dim, "sum"), key
            ),
            "reverse SDE: rs.diffusion.sample": partial(
                rs.diffusion.sample,
                key,
                isotropic_time_score,
                SCHEDULE,
                chains,
                (dim,),
                num_steps=moves,
            ),
        }
        timings = compare(fns, repeats)
        base = timings["reverse SDE: hand"]
        for name, timing in timings.items():
            rows.append(
                [
                    dim,
                    chains,
                    moves,
                    name,
                    timing.run * 1e6 / moves,
                    timing.run / base.run,
                    timing.cpu / base.cpu,
                ]
            )
            log(*rows[-1])
    dim, chains, steps = 1000, 1000, 10
    key, x0 = jax.random.key(1), jnp.zeros((chains, dim))
    algorithm = rs.ula(isotropic_score, ULA_STEP)
    hand = hand_ula(isotropic_score, ULA_STEP, steps)
    diffs = {
        "ULA": loop_body_diff(
            lambda: rs.sample_chains(algorithm, key, x0, steps, thin=steps)[0],
            lambda: hand(key, x0),
        )
    }
    for kind, name in (("annealed_langevin", "annealed Langevin"), ("sde", "reverse SDE")):
        if kind == "sde":
            hand = hand_reverse_sde(isotropic_time_score, steps, chains, dim)
            kwargs = {"method": "sde", "num_steps": steps}
        else:
            hand = hand_annealed(isotropic_time_score, 2, 5, chains, dim)
            kwargs = {"method": kind, "num_levels": 2, "steps_per_level": 5, "step_size": AL_EPS}
        diffs[name] = loop_body_diff(
            lambda kwargs=kwargs: rs.diffusion.sample(
                key, isotropic_time_score, SCHEDULE, chains, (dim,), **kwargs
            ),
            lambda hand=hand: hand(key),
        )
    hlo = hlo_programs()
    return rows, diffs, hlo


def hlo_programs(steps=50):
    """The compiled step loops side by side (``step_loop_ops``), each at the shape of its
    worst timing cell; ``steps`` large enough that XLA keeps the loop (no full unrolling)."""
    import blackjax

    key = jax.random.key(1)
    rows = []

    def ula_group(dim, chains):
        x0 = jnp.zeros((chains, dim))
        ula = rs.ula(isotropic_score, ULA_STEP)
        variants = ula_variants(isotropic_score, ULA_STEP, steps)
        return {
            "hand (x only)": partial(variants["hand (x only)"], key, x0),
            "hand + score carried + is_divergent (rs's arithmetic)": partial(
                variants["+ is_divergent per step (= rs's arithmetic)"], key, x0
            ),
            "`rs.sample_chains(rs.ula)`": partial(_all, rs.sample_chains, ula, key, x0, steps),
            "(alternative) hand + score carried + ~isfinite(sum x + sum s)": partial(
                variants["(alternative) score carried, is_divergent as ~isfinite(sum x + sum s)"],
                key,
                x0,
            ),
        }

    def sde_group(dim, chains):
        x0 = jnp.zeros((chains, dim))
        sde = rs.reverse_diffusion(isotropic_time_score, SCHEDULE, steps, method="sde")
        hand_sde = hand_reverse_sde(isotropic_time_score, steps, chains, dim)
        checked = hand_reverse_sde(isotropic_time_score, steps, chains, dim, check="all_finite")
        alternative = hand_reverse_sde(isotropic_time_score, steps, chains, dim, check="sum")
        return {
            "hand": partial(hand_sde, key),
            "hand + all_finite(s, x_new) (rs's arithmetic)": partial(checked, key),
            "(alternative) hand + isfinite(sum x_new)": partial(alternative, key),
            "`rs.diffusion.sample`": partial(
                rs.diffusion.sample,
                key,
                isotropic_time_score,
                SCHEDULE,
                chains,
                (dim,),
                num_steps=steps,
                return_info=True,
            ),
            "`rs.sample_chains(rs.reverse_diffusion)`": partial(
                _all, rs.sample_chains, sde, key, x0, 1
            ),
        }

    def annealed_group(dim, chains):
        levels = steps // AL_STEPS_PER_LEVEL
        hand = hand_annealed(isotropic_time_score, levels, AL_STEPS_PER_LEVEL, chains, dim)
        return {
            "hand": partial(hand, key),
            "`rs.diffusion.sample`": partial(
                rs.diffusion.sample,
                key,
                isotropic_time_score,
                SCHEDULE,
                chains,
                (dim,),
                method="annealed_langevin",
                num_levels=levels,
                steps_per_level=AL_STEPS_PER_LEVEL,
                step_size=AL_EPS,
                return_info=True,
            ),
        }

    def mala_group(dim, chains):
        x0 = jnp.zeros((chains, dim))
        h = 0.5 * dim ** (-1 / 3)

        def logdensity(x):
            return -0.5 * jnp.sum(x**2)

        return {
            "`rs.sample_chains(blackjax.mala)`": partial(
                _all, rs.sample_chains, blackjax.mala(logdensity, h), key, x0, steps
            ),
            "`rs.sample_chains(rs.mala)`": partial(
                _all, rs.sample_chains, rs.mala(logdensity, h), key, x0, steps
            ),
        }

    for group, build, dim, chains in (
        ("ULA", ula_group, 1000, 1000),
        ("annealed Langevin", annealed_group, 1000, 1000),
        ("reverse SDE", sde_group, 1000, 1000),
        ("MALA", mala_group, 1000, 100),
    ):
        for row in hlo_table(build(dim, chains), chains, dim):
            rows.append([f"{group}, d = {dim}, {chains} chains", *row])
            log(*rows[-1])
    return rows


def compile_anatomy():
    """What the first call of a diffusion sampler with a new time grid compiles."""
    import time

    calls = {
        "`rs.diffusion.sample`, sde, new `num_steps` (777), 100 samples": (100, 777),
        "same, same `num_steps`, 101 samples (new batch size)": (101, 777),
        "same, 101 samples again (cached)": (101, 777),
    }
    rows = []
    for label, (num_samples, num_steps) in calls.items():
        compile_events.clear()
        started = time.perf_counter()
        jax.block_until_ready(
            rs.diffusion.sample(
                jax.random.key(0),
                isotropic_time_score,
                SCHEDULE,
                num_samples,
                (100,),
                method="sde",
                num_steps=num_steps,
            )
        )
        wall = time.perf_counter() - started
        backend = [s for event, s in compile_events if event == "backend_compile_duration"]
        trace = sum(s for event, s in compile_events if event == "jaxpr_trace_duration")
        largest = max(backend, default=0.0)
        rows.append(
            [label, wall, len(backend), sum(backend), largest, sum(backend) - largest, trace]
        )
        log(*rows[-1])
    return rows


COMPILE_HEADER = [
    "first call",
    "wall s",
    "XLA compilations",
    "XLA compile s",
    "largest one s (the sampler)",
    "all others s",
    "tracing s",
]


def _first(sample_chains, algorithm, key, x0, steps):
    return sample_chains(algorithm, key, x0, steps, thin=steps)[0]


def _all(sample_chains, algorithm, key, x0, steps):
    """Draws and stats: everything the compiled program computes (nothing left to DCE)."""
    return sample_chains(algorithm, key, x0, steps, thin=steps)[:2]


ANATOMY_HEADER = [
    "d",
    "chains",
    "steps",
    "loop",
    "µs/step",
    "÷ plain hand loop",
    "÷ plain hand loop, CPU s",
]


def summary(ratios):
    """Worst ratio per sampler and driver, and the cells above the goal."""
    out = []
    groups = sorted({key[:2] for key in ratios})
    for group in groups:
        cells = {key[2:]: value for key, value in ratios.items() if key[:2] == group}
        worst_cell = max(cells, key=cells.get)
        worst = cells[worst_cell]
        geo = math.exp(np.mean(np.log(list(cells.values()))))
        above = [f"d={d}, {c} ch ({v:.2f})" for (d, c), v in cells.items() if v > GOAL]
        out.append(
            [
                group[0],
                f"`{group[1]}`",
                geo,
                worst,
                f"d={worst_cell[0]}, {worst_cell[1]} chains",
                verdict(worst, GOAL),
                "; ".join(above) or "none",
            ]
        )
    return out


SUMMARY_HEADER = [
    "sampler",
    "driver",
    "geometric mean rs/hand",
    "worst rs/hand",
    "worst cell",
    f"goal ≤ {GOAL} in every cell",
    "cells above the goal",
]


if __name__ == "__main__":
    rows, extra, ratios = main()
    print(table(HEADER, rows + extra))
    print(table(SUMMARY_HEADER, summary(ratios)))
