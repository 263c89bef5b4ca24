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

The library's loops also compute ``is_divergent`` -- ``rs.ula`` per step
(``~all(isfinite(x_new))``: a boolean reduction of the new position per chain), reduced over
the thinning block by ``rs.sample_chains``; the diffusion samplers once, on the end point of
each path (``_annealing.trajectory_diverged``) -- and the plain ``hand`` loops do not: that is
part of what is measured.

The anatomy section (``anatomy``, ``hlo_programs``, ``compile_anatomy``) adds those checks to
the hand loops one at a time, and also re-implements the arithmetic of the previous release
(before commit 14f2828: the score carried in ``ULAState``, ``all(isfinite)`` per leaf of the
position and the score, stacked, after every move; schedule levels evaluated op by op while
tracing), labelled "before", so the page shows both. For ULA it also times the float-sum check
``~isfinite(sum(x_new))``, tried for this release and rejected (labelled so): XLA:CPU hands
the sum to a multi-threaded reduction, which the anatomy's CPU-time column measures.
"""

import collections
import math
import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from bench_common import compare, compile_events, log, previous_all_finite, table, verdict

import robust_score as rs
from robust_score.kernels._annealing import Levels, grid_levels
from robust_score.kernels.annealed_langevin import annealing_levels

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
F32 = np.dtype(np.float32)


def _start_flag(x, check):
    return previous_all_finite(x) if check == "before" else jnp.asarray(True)


def _tweedie_and_flag(x, s, finite, sigma, alpha, check):
    """The hand loops' last step: Tweedie's formula, then the divergence flag of ``check``."""
    x = (x + sigma**2 * s) / alpha
    if check == "end":
        return x, ~jnp.all(jnp.isfinite(x))
    if check == "before":
        return x, ~(finite & previous_all_finite(s) & previous_all_finite(x))
    return x


def hand_annealed(time_score_fn, num_levels, steps_per_level, chains, dim, check=None):
    """Annealed Langevin with the NCSN rule, one path per chain, Tweedie step at the end.

    The schedule constants are the library's (``annealing_levels``: NumPy arrays computed once
    per grid), the per-level step sizes are computed in NumPy as the library does. ``check``:
    ``None``; ``"end"``, the library's flag now (``~all(isfinite(x))`` of the path's end
    point, ``_annealing.trajectory_diverged``); or
    ``"before"``, the previous release's (``all(isfinite)`` per leaf of ``s`` and ``x`` after
    every move, of the start, of the last score and of the end point). With a check, returns
    ``(x, is_divergent)``."""
    levels = annealing_levels(SCHEDULE, num_levels, float(SCHEDULE.T), None, F32)
    with jax.ensure_compile_time_eval():
        prior_std = SCHEDULE.prior_std()
    step_sizes = AL_EPS * (levels.sigma / levels.sigma[-1]) ** 2
    t = np.repeat(levels.t, steps_per_level)
    h = np.repeat(step_sizes, steps_per_level)
    last_sigma, last_alpha, last_t = levels.sigma[-1], levels.alpha[-1], levels.t[-1]
    moves = num_levels * steps_per_level

    def path(key, shape):
        key_start, key_path = jax.random.split(key)
        x = prior_std * jax.random.normal(key_start, shape)

        def move(carry, inputs):
            x, finite = carry
            k, t_i, h_i = inputs
            s = time_score_fn(x, t_i)
            x = x + h_i * s + jnp.sqrt(2.0 * h_i) * jax.random.normal(k, shape)
            if check == "before":
                finite = finite & previous_all_finite(s, x)
            return (x, finite), None

        keys = jax.random.split(key_path, moves)
        (x, finite), _ = jax.lax.scan(move, (x, _start_flag(x, check)), (keys, t, h))
        s = time_score_fn(x, last_t)
        return _tweedie_and_flag(x, s, finite, last_sigma, last_alpha, check)

    return jax.jit(lambda key: jax.vmap(lambda k: path(k, (dim,)))(jax.random.split(key, chains)))


def hand_reverse_sde(time_score_fn, num_steps, chains, dim, check=None):
    """Euler–Maruyama on the reverse SDE, one path per chain, Tweedie step at the end, with the
    library's schedule constants (``grid_levels``). ``check``: ``None``; ``"end"``, the
    library's flag now (``~all(isfinite(x))`` of the path's end point: every move adds to ``x``
    with coefficient one, so a NaN or inf that entered stays); or ``"before"``, the previous
    release's (``all_finite(s, x_new)`` per move, ``all(isfinite)`` per leaf, plus the start,
    the last score and the end point). With a check, returns ``(x, is_divergent)``."""
    levels = grid_levels(SCHEDULE, num_steps, float(SCHEDULE.T), None, F32)
    with jax.ensure_compile_time_eval():
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
            if check == "before":
                finite = finite & previous_all_finite(s, x_new)
            return (x_new, finite), None

        keys = jax.random.split(key_path, num_steps)
        xs = (keys, now.t, nxt.t, now.drift, now.diffusion_squared)
        (x, finite), _ = jax.lax.scan(move, (x, _start_flag(x, check)), xs)
        s = time_score_fn(x, end_t)
        return _tweedie_and_flag(x, s, finite, end_sigma, end_alpha, check)

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
    ``(chains, d)`` positions) that write or read an array of ``chains * d`` entries, by opcode
    and result type: each is one pass over a ``(chains, d)`` array per step. One that only
    reads it (a reduction) is labelled with its smaller result, ``"fusion→f32[1000]"``; a
    custom fusion (e.g. a YNNPACK one) by its name. ``fn`` must return everything the library
    returns (e.g. ``return_info=True``): what it drops, XLA removes."""
    hlo = jax.jit(fn).lower().compile().as_text()
    computations = _computations(hlo)
    shape = f"f32[{chains},{dim}]"
    bodies = [body for carry, body in re.findall(_WHILE, hlo) if shape in carry]
    inner = [
        body
        for body in bodies
        if not any(shape in carry for carry, _ in re.findall(_WHILE, computations[body]))
    ]
    entries, counts = {}, collections.Counter()
    for line in computations[inner[0]].splitlines():
        match = re.match(r"\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\]\S* (\S+?)\((.*?)\)", line)
        if not match:
            continue
        name, dtype, dims, opcode, operands = match.groups()
        size = math.prod(int(n) for n in dims.split(",") if n)
        entries[name] = size
        if opcode in ("get-tuple-element", "parameter", "tuple", "bitcast"):
            continue
        reads = any(
            entries.get(operand) == chains * dim for operand in re.findall(r"%([\w.\-]+)", operands)
        )
        if size != chains * dim and not reads:
            continue
        if "is-finite" in name:
            label = "is-finite"
        elif opcode == "fusion" and "kind=kCustom" in line:
            label = name.split(".")[0]
        else:
            label = opcode
        result = f"{dtype}" if size == chains * dim else f"→{dtype}[{dims}]"
        counts[f"{label} {result}" if size == chains * dim else f"{label}{result}"] += 1
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


# Names of the anatomy's loops (the page refers to them). "now": what the library computes in
# this release; "before": the previous release's arithmetic (before commit 14f2828),
# re-implemented in a hand loop so that both are measured in the same run; "rejected": a
# cheaper-looking check tried for this release and not kept.
ULA_PLAIN = "hand (x only)"
ULA_NOW = "hand + ~all(isfinite x) per step (= rs.ula now)"
ULA_SUM = "(rejected alternative) hand + ~isfinite(sum x) per step"
ULA_BEFORE_CARRIED = "before: hand + score carried in the state"
ULA_BEFORE = "before: hand + score carried + all(isfinite) per leaf (= rs.ula, previous release)"
ULA_LIBRARY = "rs.sample_chains(rs.ula)"
DIFF_PLAIN = "hand"
DIFF_NOW = "hand + one end-point check ~all(isfinite x) (= rs now)"
DIFF_BEFORE = "before: hand + all_finite(s, x_new) per move, per leaf (= rs, previous release)"
DIFF_LIBRARY = "rs.diffusion.sample"
MALA_BLACKJAX = "`rs.sample_chains(blackjax.mala)`"
MALA_NOW = "`rs.sample_chains(rs.mala)`"
MALA_BEFORE = "before: `rs.sample_chains(rs.mala)`, previous release's kernel"


def ula_variants(score_fn, step_size, num_steps):
    """Hand ULA loops with the same keys and update as ``rs.ula`` under ``rs.sample_chains``:
    plain; with the library's per-step ``is_divergent`` now (``~all(isfinite(x))`` per chain:
    ``integrators.all_finite`` of the new position); with the rejected float-sum check
    (``~isfinite(sum x)`` per chain); and the previous release's arithmetic, one piece at a time
    (the score carried in the state, then ``all(isfinite)`` of the position and the score, per
    leaf, stacked)."""
    scale = jnp.sqrt(2.0 * step_size)

    def build(carry_score, check):
        @jax.jit
        def run(key, x0):
            chain_keys = jax.vmap(partial(jax.random.fold_in, key))(jnp.arange(x0.shape[0]))

            def noise(i, x):
                keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, i)
                return jax.vmap(lambda k, xi: jax.random.normal(k, xi.shape, xi.dtype))(keys, x)

            def step(carry, i):
                x, s = carry if carry_score else (carry, score_fn(carry))
                x = x + step_size * s + scale * noise(i, x)
                if carry_score:
                    s = score_fn(x)
                if check == "all":  # rs now: integrators.all_finite(x), a boolean reduction
                    flag = ~jnp.all(jnp.isfinite(x), axis=1)
                elif check == "sum":  # rejected: one float reduction per chain
                    flag = ~jnp.isfinite(jnp.sum(x, axis=1))
                elif check == "per leaf":  # the previous release's all_finite(x, s)
                    flag = ~jax.vmap(previous_all_finite)(x, s)
                else:
                    flag = None
                return ((x, s) if carry_score else x), flag

            init = (x0, score_fn(x0)) if carry_score else x0
            carry, flags = jax.lax.scan(step, init, jnp.arange(num_steps))
            x = carry[0] if carry_score else carry
            return (x, jnp.any(flags, 0)) if check else x

        return run

    return {
        ULA_PLAIN: build(False, None),
        ULA_NOW: build(False, "all"),
        ULA_SUM: build(False, "sum"),
        ULA_BEFORE_CARRIED: build(True, None),
        ULA_BEFORE: build(True, "per leaf"),
    }


def _anatomy_rows(sampler, dim, chains, steps, timings, base):
    rows = []
    for name, timing in timings.items():
        rows.append(
            [
                sampler,
                dim,
                chains,
                steps,
                name,
                timing.run * 1e6 / steps,
                timing.run / timings[base].run,
                timing.cpu / timings[base].cpu,
            ]
        )
        log(*rows[-1])
    return rows


def anatomy(
    cells=((1000, 1000), (1000, 1), (100, 100), (2, 1000)),
    sde_cells=((1000, 1000), (1000, 1)),
    target_s=0.25,
    repeats=7,
):
    """Where the overhead goes, cell by cell (ULA and the reverse SDE: the plain hand loop, the
    library's checks now, the previous release's arithmetic, the library), the jaxpr difference
    of the loop bodies, and the compiled loops' passes over ``(chains, d)``."""
    rows = []
    for dim, chains in cells:
        steps = num_moves(dim, chains, target_s, overhead_s=3e-7)
        key, x0 = jax.random.key(1), jnp.zeros((chains, dim))
        algorithm = rs.ula(isotropic_score, ULA_STEP)
        fns = {
            name: partial(fn, key, x0)
            for name, fn in ula_variants(isotropic_score, ULA_STEP, steps).items()
        }
        fns[ULA_LIBRARY] = partial(_all, rs.sample_chains, algorithm, key, x0, steps)
        rows += _anatomy_rows("ULA", dim, chains, steps, compare(fns, repeats), ULA_PLAIN)
    for dim, chains in sde_cells:
        moves = num_moves(dim, chains, target_s, overhead_s=6e-7, per_entry_s=1.6e-8)
        key = jax.random.key(2)
        fns = {
            name: partial(hand_reverse_sde(isotropic_time_score, moves, chains, dim, check), key)
            for name, check in ((DIFF_PLAIN, None), (DIFF_NOW, "end"), (DIFF_BEFORE, "before"))
        }
        fns[DIFF_LIBRARY] = partial(
            rs.diffusion.sample,
            key,
            isotropic_time_score,
            SCHEDULE,
            chains,
            (dim,),
            num_steps=moves,
            return_info=True,
        )
        timings = compare(fns, repeats)
        rows += _anatomy_rows("reverse SDE", dim, chains, moves, timings, DIFF_PLAIN)
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


def hlo_library_label(sampler, driver):
    """The ``hlo_programs`` row of the library program a per-step goal row measures."""
    if sampler == "ULA":
        return f"`{ULA_LIBRARY}`"  # rs.run runs the same compiled program
    if driver == "`rs.sample_chains`":
        kernel = "annealed_langevin" if sampler == "annealed Langevin" else "reverse_diffusion"
        return f"`rs.sample_chains(rs.{kernel})`"
    return f"`{DIFF_LIBRARY}`"


def hlo_programs(steps=50):
    """The compiled step loops side by side (``step_loop_ops``), each at the shape of its
    worst timing cell; ``steps`` large enough that XLA keeps the loop (no full unrolling)."""
    import blackjax
    from bench_mala import previous_mala

    key = jax.random.key(1)
    rows = []

    def ula_group(dim, chains):
        x0 = jnp.zeros((chains, dim))
        ula = rs.ula(isotropic_score, ULA_STEP)
        variants = ula_variants(isotropic_score, ULA_STEP, steps)
        return {
            ULA_PLAIN: partial(variants[ULA_PLAIN], key, x0),
            ULA_NOW: partial(variants[ULA_NOW], key, x0),
            f"`{ULA_LIBRARY}`": partial(_all, rs.sample_chains, ula, key, x0, steps),
            ULA_SUM: partial(variants[ULA_SUM], key, x0),
            ULA_BEFORE: partial(variants[ULA_BEFORE], key, x0),
        }

    def diffusion_group(kind):
        def build(dim, chains):
            x0 = jnp.zeros((chains, dim))
            if kind == "sde":
                algorithm = rs.reverse_diffusion(
                    isotropic_time_score, SCHEDULE, steps, method="sde"
                )
                kwargs = {"method": "sde", "num_steps": steps}
                library_name = "reverse_diffusion"

                def hand(check):
                    return hand_reverse_sde(isotropic_time_score, steps, chains, dim, check)

            else:
                levels = steps // AL_STEPS_PER_LEVEL
                algorithm = rs.annealed_langevin(
                    isotropic_time_score, SCHEDULE, levels, AL_STEPS_PER_LEVEL, step_size=AL_EPS
                )
                kwargs = {
                    "method": kind,
                    "num_levels": levels,
                    "steps_per_level": AL_STEPS_PER_LEVEL,
                    "step_size": AL_EPS,
                }
                library_name = "annealed_langevin"

                def hand(check):
                    return hand_annealed(
                        isotropic_time_score, levels, AL_STEPS_PER_LEVEL, chains, dim, check
                    )

            return {
                DIFF_PLAIN: partial(hand(None), key),
                DIFF_NOW: partial(hand("end"), key),
                f"`{DIFF_LIBRARY}`": partial(
                    rs.diffusion.sample,
                    key,
                    isotropic_time_score,
                    SCHEDULE,
                    chains,
                    (dim,),
                    **kwargs,
                    return_info=True,
                ),
                f"`rs.sample_chains(rs.{library_name})`": partial(
                    _all, rs.sample_chains, algorithm, key, x0, 1
                ),
                DIFF_BEFORE: partial(hand("before"), key),
            }

        return build

    def mala_group(dim, chains):
        x0 = jnp.zeros((chains, dim))
        h = 0.5 * dim ** (-1 / 3)

        def logdensity(x):
            return -0.5 * jnp.sum(x**2)

        return {
            MALA_BLACKJAX: partial(
                _all, rs.sample_chains, blackjax.mala(logdensity, h), key, x0, steps
            ),
            MALA_NOW: partial(_all, rs.sample_chains, rs.mala(logdensity, h), key, x0, steps),
            MALA_BEFORE: partial(
                _all, rs.sample_chains, previous_mala(logdensity, h), key, x0, steps
            ),
        }

    for group, build, dim, chains in (
        ("ULA", ula_group, 1000, 1000),
        ("annealed Langevin", diffusion_group("annealed_langevin"), 1000, 1000),
        ("reverse SDE", diffusion_group("sde"), 1000, 1000),
        ("MALA", mala_group, 1000, 100),
    ):
        for row in hlo_table(build(dim, chains), chains, dim):
            rows.append([f"{group}, d = {dim}, {chains} chains", *row])
            log(*rows[-1])
    return rows


def previous_levels(schedule, num_steps, dtype=jnp.float32):
    """Levels of a time grid as the previous release computed them: ``Schedule.time_grid`` and
    the schedule's functions evaluated op by op under ``jax.ensure_compile_time_eval`` (its
    ``_annealing.levels_on``, which ran while the kernel was traced)."""
    with jax.ensure_compile_time_eval():
        times = jnp.asarray(schedule.time_grid(num_steps), dtype)
        return Levels(
            t=times,
            alpha=jnp.asarray(schedule.alpha(times), dtype),
            sigma=jnp.asarray(schedule.sigma(times), dtype),
            drift=jnp.asarray(schedule.drift_coefficient(times), dtype),
            diffusion_squared=jnp.asarray(schedule.diffusion_squared(times), dtype),
        )


COMPILE_SAMPLER_NEW = "`rs.diffusion.sample`, sde, new `num_steps` (777), 100 samples"
COMPILE_SAMPLER_BATCH = "same, same `num_steps`, 101 samples (new batch size)"
COMPILE_SAMPLER_CACHED = "same, 101 samples again (cached)"
COMPILE_LEVELS_NOW = "levels only, new grid (613 steps): `_annealing.grid_levels` (now)"
COMPILE_LEVELS_NOW_AGAIN = "levels only, same grid again: `grid_levels` (now, cached)"
COMPILE_LEVELS_BEFORE = (
    "levels only, new grid (613 steps): op by op under `ensure_compile_time_eval` "
    "(before: previous release's `levels_on`)"
)
COMPILE_LEVELS_BEFORE_AGAIN = "levels only, same grid again: op by op (before)"


def _first_call(label, fn):
    import time

    compile_events.clear()
    started = time.perf_counter()
    jax.block_until_ready(fn())
    wall = time.perf_counter() - started
    backend = [
        (s, name) for event, s, name in compile_events if event == "backend_compile_duration"
    ]
    trace = sum(s for event, s, _ in compile_events if event == "jaxpr_trace_duration")
    seconds = [s for s, _ in backend]
    largest = max(backend, default=(0.0, "–"))
    others = collections.Counter(name.removeprefix("jit(").removesuffix(")") for _, name in backend)
    others[largest[1].removeprefix("jit(").removesuffix(")")] -= 1
    names = [f"{name}×{n}" if n > 1 else name for name, n in others.items() if n > 0]
    shown = ", ".join(f"`{name}`" for name in names[:10])
    if len(names) > 10:
        shown += f", … ({len(names) - 10} more)"
    row = [
        label,
        wall,
        len(backend),
        sum(seconds),
        f"{largest[0]:.3f} (`{largest[1].removeprefix('jit(').removesuffix(')')}`)",
        sum(seconds) - largest[0],
        shown or "–",
        trace,
    ]
    log(*row)
    return row


def compile_anatomy():
    """What the first call of a diffusion sampler with a new time grid compiles, and the cost of
    the schedule levels of a new grid alone: now (one compiled program per grid) and as the
    previous release evaluated them (op by op while tracing)."""

    def sample(num_samples, num_steps):
        return rs.diffusion.sample(
            jax.random.key(0),
            isotropic_time_score,
            SCHEDULE,
            num_samples,
            (100,),
            method="sde",
            num_steps=num_steps,
        )

    def levels_now(num_steps):
        return grid_levels(SCHEDULE, num_steps, float(SCHEDULE.T), None, F32)

    rows = [
        _first_call(COMPILE_SAMPLER_NEW, partial(sample, 100, 777)),
        _first_call(COMPILE_SAMPLER_BATCH, partial(sample, 101, 777)),
        _first_call(COMPILE_SAMPLER_CACHED, partial(sample, 101, 777)),
    ]
    # one warm-up grid each, so that only what a new grid length costs is counted
    jax.block_until_ready((levels_now(611), previous_levels(SCHEDULE, 611)))
    rows += [
        _first_call(COMPILE_LEVELS_NOW, partial(levels_now, 613)),
        _first_call(COMPILE_LEVELS_NOW_AGAIN, partial(levels_now, 613)),
        _first_call(COMPILE_LEVELS_BEFORE, partial(previous_levels, SCHEDULE, 613)),
        _first_call(COMPILE_LEVELS_BEFORE_AGAIN, partial(previous_levels, SCHEDULE, 613)),
    ]
    return rows


COMPILE_HEADER = [
    "first call",
    "wall s",
    "XLA compilations",
    "XLA compile s",
    "largest one s (program)",
    "all others s",
    "the others (programs JAX compiled)",
    "tracing s",
]


def _all(sample_chains, algorithm, key, x0, steps):
    """Draws and stats: everything the compiled program computes (nothing left to DCE)."""
    return sample_chains(algorithm, key, x0, steps, thin=steps)[:2]


ANATOMY_HEADER = [
    "sampler",
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
