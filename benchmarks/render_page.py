"""The Markdown of ``docs/benchmarks.md`` from the results of ``run_all.py``."""

import datetime

import bench_mala
import bench_nfe
import bench_per_step
import bench_subprocess
from bench_common import table, verdict

MINUTES_GOAL = 15
NUMPYRO_HEADER = [
    "sampler",
    "JAX compile s, first call",
    "repeat wall s",
    "of which compile s",
    "run s",
]


def _machine_table(machine, load_start, total, sections):
    rows = [[key, value] for key, value in machine.items()]
    rows.append(["load average (1 / 5 / 15 min) at start", load_start])
    rows.append(["`make bench` driver wall time", f"{total / 60:.1f} min"])
    section_rows = [[name, seconds, before, after] for name, seconds, before, after in sections]
    return table(["", ""], rows), table(
        ["section", "wall s", "load before", "load after"], section_rows
    )


def _goal_rows(per_step_summary, mala_summary, numpyro_ratio, nfe_goals, trap, total):
    rows = []
    for sampler, driver, geo, worst, cell, ok, _ in per_step_summary:
        reason = (
            "kernel: `is_divergent` adds 2 unfused `is_finite` passes per step"
            + {
                "ULA": ", and `ULAState` carries the score (1 more pass)",
                "annealed Langevin": ", and a copy of the position per move",
                "reverse SDE": ", and a copy of the position per move",
            }[sampler]
            + ("; `rs.run` adds the DataTree per call" if driver == "`rs.run`" else "")
        )
        rows.append(
            [
                f"{sampler} via {driver} ≤ 1.05 × hand-written scan",
                f"worst {worst:.2f} ({cell}); geometric mean {geo:.2f}",
                ok,
                reason if "missed" in ok else "",
            ]
        )
    for driver, best, worst, cell, ok, _ in mala_summary:
        rows.append(
            [
                f"`rs.mala` via {driver} ≤ 1.0 × `blackjax.mala`",
                f"worst {worst:.2f} ({cell}); best {best:.2f}",
                ok,
                "kernel: 2 `is_finite` passes per step and a `log` in the accept test"
                if "missed" in ok
                else "",
            ]
        )
    rows.append(
        [
            "`ScoreLangevin` under NumPyro ≤ 1.2 × `rs.run`",
            f"{numpyro_ratio:.2f}",
            verdict(numpyro_ratio, 1.2),
            "",
        ]
    )
    for target, method, nfes, _, sw_ratio, sw_ok, _, _, en_ok in nfe_goals:
        rows.append(
            [
                f"{method}, {target}: ≤ 20 NFE within 1.5 × the ~1000-NFE value",
                f"NFE {nfes}: sliced-W2 ratio {sw_ratio:.2f}; energy: {en_ok}",
                sw_ok if sw_ok == en_ok or "missed" in sw_ok else f"{sw_ok} (SW2), {en_ok}",
                "method: 9 predictor moves + 9 small corrections at 19 NFE"
                if "missed" in sw_ok or "missed" in en_ok
                else "",
            ]
        )
    d1000 = [row for row in trap if row[0] == 1000]
    if d1000:
        rows.append(
            [
                "`trap_report` ≤ 10 s at d = 1000 (repeat call)",
                f"{d1000[0][2]:.1f} s",
                verdict(d1000[0][2], 10),
                "",
            ]
        )
    rows.append(
        [
            f"`make bench` ≤ {MINUTES_GOAL} min on 2 cores",
            f"{total / 60:.1f} min (driver only)",
            verdict(total / 60, MINUTES_GOAL),
            "",
        ]
    )
    return rows


def _diff_rows(diffs):
    return [
        [
            name,
            d["rs ops"],
            d["hand ops"],
            d["only in rs"],
            d["only in hand"],
            d["rs (chains, d) inputs"],
            d["hand (chains, d) inputs"],
        ]
        for name, d in diffs.items()
    ]


def _range(values):
    values = [v for v in values if isinstance(v, float)]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def _per_step_notes(per_step_rows, anatomy_rows):
    aa_low, aa_high = _range([row[9] for row in per_step_rows])
    identical = all(row[-1] == 0 for row in per_step_rows)
    over = [row for row in per_step_rows if row[7] > bench_per_step.GOAL]
    beyond_noise = [row for row in over if row[7] > aa_high]
    lines = [
        f"- **Noise.** The A/A control (the same hand loop jitted a second time and timed "
        f"against the first) read {aa_low:.2f}–{aa_high:.2f} in this run: deviations of that "
        f"size from 1 are this shared machine's timing noise (load average in the table above), "
        f"not overhead. {len(over)} of {len(per_step_rows)} rs/hand cells exceed "
        f"{bench_per_step.GOAL}; {len(beyond_noise)} of them also exceed the largest A/A value "
        f"({aa_high:.2f}).",
        "- **Same draws.** "
        + (
            "The library and the hand loop returned bitwise-identical final positions in every "
            "cell, so they draw the same noise with the same keys and do the same update."
            if identical
            else "The largest difference between the library's and the hand loop's final "
            "positions is in the last column (float32 rounding of reassociated arithmetic)."
        ),
    ]
    run_extra = [
        (row_run[11] - row_chains[11]) * 1e3
        for row_chains, row_run in zip(per_step_rows, per_step_rows[1:], strict=False)
        if row_chains[0] == "ULA"
        and row_chains[1] == "`rs.sample_chains`"
        and row_run[1] == "`rs.run`"
    ]
    if run_extra:
        lines.append(
            f"- **`rs.run` vs `rs.sample_chains`** (same compiled program): median "
            f"{sorted(run_extra)[len(run_extra) // 2]:.0f} ms more per call (cells range "
            f"{min(run_extra):.0f} to {max(run_extra):.0f} ms, timing noise included): the "
            "DataTree construction (`arviz_base.from_dict`), a fixed cost per call that the "
            "~0.2 s cells make look like a few per cent."
        )
    cells, sde = {}, {}
    for dim, chains, _, name, _, ratio, cpu in anatomy_rows:
        if name.startswith("reverse SDE: "):
            sde.setdefault((dim, chains), {})[name.removeprefix("reverse SDE: ")] = ratio
        else:
            cells.setdefault((dim, chains), {})[name] = (ratio, cpu)
    parts = []
    for (dim, chains), named in cells.items():
        carried = named.get("+ score carried in the state", (float("nan"),))[0]
        flagged = named.get("+ is_divergent per step (= rs's arithmetic)", (float("nan"),))[0]
        library = named.get("rs.sample_chains", (float("nan"),))[0]
        alternative = next(
            (value[0] for name, value in named.items() if name.startswith("(alternative)")),
            float("nan"),
        )
        parts.append(
            f"d = {dim}, {chains} chains: score carried {carried:.2f}, plus `is_divergent` "
            f"{flagged:.2f}, `rs.sample_chains` {library:.2f}, alternative check "
            f"{alternative:.2f}"
        )
    if parts:
        lines.append(
            "- **Decomposition** (ULA, run time ÷ the plain hand loop, from the last table): "
            + "; ".join(parts)
            + "."
        )
    sde_parts = []
    for (dim, chains), named in sde.items():
        values = list(named.values())  # hand, + rs's check, alternative, library
        sde_parts.append(
            f"d = {dim}, {chains} chains: with rs's check {values[1]:.2f}, with the "
            f"alternative check {values[2]:.2f}, `rs.diffusion.sample` {values[3]:.2f}"
        )
    if sde_parts:
        lines.append(
            "- **Reverse SDE** (same table, ÷ the plain hand loop): " + "; ".join(sde_parts) + "."
        )
    return "\n".join(lines)


def _nfe_notes(results, floor, goals):
    lines = []
    for target, method, nfes, _, sw_ratio, sw_ok, _, _, en_ok in goals:
        (sw_floor, sw_sd), (_, en_sd) = floor[target]
        low = next(
            r
            for r in results
            if r["target"] == target and r["method"] == method and r["budget"] == 20
        )
        at_floor = low["sw2"] <= sw_floor + 2 * sw_sd and abs(low["energy"]) <= 2 * en_sd
        if "missed" in sw_ok or "missed" in en_ok:
            lines.append(
                f"- {method}, {target}: **missed** at {nfes.split(' /')[0]} NFE "
                f"(sliced W2 {low['sw2']:.3f} against a floor of {sw_floor:.3f})."
            )
        elif at_floor:
            lines.append(
                f"- {method}, {target}: met; at {nfes.split(' /')[0]} NFE both metrics are "
                "already within the noise of exact draws, so the ratio reflects noise."
            )
        else:
            lines.append(f"- {method}, {target}: met (ratio {sw_ratio:.2f}).")
    return "\n".join(lines)


def _mala_notes(mala_rows):
    over = [row for row in mala_rows if row[6] > bench_mala.GOAL]
    cpu_over = [row for row in over if row[7] > bench_mala.GOAL]
    return (
        f"{len(over)} of {len(mala_rows)} cells have rs/BlackJAX above {bench_mala.GOAL} by wall "
        f"time, {len(cpu_over)} of them also by CPU time (compare with the A/A spread of the "
        "per-step section)."
    )


DIFF_HEADER = [
    "loop",
    "ops in rs body",
    "ops in hand body",
    "primitives only in rs",
    "only in hand",
    "rs body (chains, d) inputs",
    "hand body (chains, d) inputs",
]


def render_page(
    *,
    machine,
    load_start,
    total,
    quick,
    per_step,
    anatomy,
    compile_rows,
    mala,
    mala_diff,
    numpyro,
    nfe,
    trap,
    memory,
    sharding,
    figures,
    sections,
):
    per_step_rows, per_step_extra, per_step_ratios = per_step
    per_step_summary = bench_per_step.summary(per_step_ratios)
    anatomy_rows, diffs, hlo_rows = anatomy
    mala_rows, mala_ratios = mala
    mala_summary = bench_mala.summary(mala_ratios)
    numpyro_description, numpyro_rows, numpyro_ratio = numpyro
    nfe_results, nfe_floor = nfe
    nfe_goals = bench_nfe.goal_rows(nfe_results, nfe_floor)
    machine_table, section_table = _machine_table(machine, load_start, total, sections)
    goals = _goal_rows(per_step_summary, mala_summary, numpyro_ratio, nfe_goals, trap, total)
    today = datetime.date.today().isoformat()
    memory_method = memory[0]["method"]
    cfg = bench_subprocess.MEMORY_CONFIG
    quick_note = (
        "\n\n**This page came from `run_all.py --quick` (smaller grids): do not commit it.**"
        if quick
        else ""
    )
    diffs = dict(diffs)
    diffs["MALA (rs vs BlackJAX)"] = mala_diff
    diff_rows = _diff_rows(diffs)
    diff_rows[-1][0] = "MALA: `rs.mala` vs `blackjax.mala`"
    header_mala = list(DIFF_HEADER)
    per_step_notes = _per_step_notes(per_step_rows, anatomy_rows)
    mala_notes = _mala_notes(mala_rows)
    sharding_rows = bench_subprocess.sharding_rows(sharding)
    two = [row for row in sharding_rows if row[3] == 2 and "jax.devices" in row[4]]
    sharding_speedups = ", ".join(f"{row[6]:.2f} (d = {row[0]}, {row[1]} chains)" for row in two)
    sharding_cpu = ", ".join(f"{row[7]:.2f}" for row in two)
    sharding_threads = ", ".join(str(row[8]) for row in two)
    if two and min(row[7] for row in two) >= 1.6:
        sharding_reading = (
            "here the second core was mostly free during these calls, and the chains ran close "
            "to twice as fast. A single device does not use the second core on its own."
        )
    elif two and max(row[7] for row in two) >= 1.6:
        sharding_reading = (
            "the second core was free during some of these calls and not others (shared "
            "machine; load averages above), hence the spread."
        )
    else:
        sharding_reading = (
            "on this shared machine other processes kept both cores busy during these calls "
            "(load averages above), so the two threads shared them: these numbers show that "
            "sharding is correct and cheap here, not the speed-up it gives on an idle machine."
        )
    thin_one = next((m for m in memory if m["thin"] == 1), memory[0])
    nfe_notes = _nfe_notes(nfe_results, nfe_floor, nfe_goals)

    parts = [
        f"""# Benchmarks

Generated by `make bench` (`benchmarks/run_all.py`) on {today}; every number on this page
comes from that one run, and **every ratio is between two numbers measured in the same run**,
interleaved (A, B, A, B, …) on the same machine. The machine is described below; it is shared,
so the load average is given before and after each section, and each time is the **fastest
of several repeats** (wall clock; the ratio of fastest process-CPU times is shown beside it as
a cross-check that is less sensitive to other processes). Compile time is always separated
from run time: the first call of a program is timed on its own, with the seconds JAX reports
for tracing, lowering and XLA compilation; run times are of later calls of the compiled
program, which `rs.run`, `rs.sample_chains` and `rs.diffusion.sample` reuse.{quick_note}

## Machine

{machine_table}

Sections (wall time of each, with the load average before and after):

{section_table}

## Goals

{table(["goal", "measured", "status", "why (where missed; details in its section)"], goals)}

Where a goal is missed the section says why, with the evidence (jaxpr of both loops,
a step-by-step decomposition of the difference). Nothing in the library was changed for this
page.
""",
        f"""## Per-step time against a hand-written `lax.scan`

`benchmarks/bench_per_step.py`. Target N(0, I_d); the score is the hand-written exact
`lambda x: -x` in both loops (the time score `lambda x, t: -x`, exact under `vp()`), so that the
score does not dominate. ULA: `rs.ula(score, 0.1)` driven by `rs.sample_chains` and by
`rs.run` (the same compiled program; `rs.run` adds the DataTree), last draw kept
(`thin = steps`). Annealed Langevin (`vp()`, NCSN rule, 5 steps per level) and the reverse SDE
(`vp()`): `rs.diffusion.sample` (one trajectory of `steps` moves per chain), and
`rs.sample_chains(num_steps=1)` on the d = 100 row. "Step" = one Langevin / SDE move of all
chains; step counts are chosen so a cell runs ~0.2 s. "A/A" is a control: the hand loop jitted
a second time and timed against the first — how far from 1 a ratio drifts from noise alone.

The `hand` loop is what a user would write to get **the same draws**: the same per-chain keys
(`rs.sample_chains` folds the chain index and then the step index into the key;
`rs.diffusion.sample` splits the key per sample, then per move), the same update, vmapped over
chains; its final positions are checked against the library's (last column: 0 or float32
rounding). `batched` (ULA only, for information) uses one key per step for the whole
`(chains, d)` array: it draws the same amount of noise with less key arithmetic, so it shows
what the reproducible per-chain keys cost.

{table(bench_per_step.HEADER, per_step_rows)}

With the library's exact Gaussian score (`rs.scores.gaussian(zeros(d), 1.0)`, with
`schedule=vp()` for the SDE) in **both** loops:

{table(bench_per_step.HEADER, per_step_extra)}

Summary (goal ≤ {bench_per_step.GOAL} in every cell):

{table(bench_per_step.SUMMARY_HEADER, per_step_summary)}

![rs / hand per cell]({figures["per_step"]})

{per_step_notes}

### Where the difference comes from

The per-step loop bodies, read from `jax.make_jaxpr` of both programs (innermost `scan`, nested
`jit`s inlined; d = 1000, 1000 chains; for MALA d = 1000, 10 chains, both kernels under
`rs.sample_chains`):

{table(header_mala, diff_rows)}

Besides the update itself, every library loop computes `is_divergent` each step
(`is_finite` on the new position and on the score, `reduce_and` over each, a `stack` and a
`not`: `kernels.integrators.all_finite`), and `rs.sample_chains` keeps those flags per step
and ORs them over the thinning block. `rs.ula` also carries the score in its state
(`ULAState(position, score)`), so its loop reads and writes a second `(chains, d)` array each
step; the hand loop evaluates `-x` where it needs it. (`split`, `convert_element_type`,
`sqrt`: `ravel_pytree` of the noise and the step-size constant, free after compilation.)
The next table adds these to the hand loop one at a time (ULA, then the reverse SDE; same keys
and arithmetic in every row; rows marked "(alternative)" are hand loops with a cheaper
divergence check, for comparison — see below):

{table(bench_per_step.ANATOMY_HEADER, anatomy_rows)}

The compiled programs say the same thing. Counting, in XLA's optimised HLO, the instructions of
the per-step loop body whose result is a whole `(chains, d)` array (each is one pass over the
state per step; the two `u32` fusions are the random bits, the `f32` fusion the update with the
normal transform fused in):

{table(bench_per_step.HLO_HEADER, hlo_rows)}

So, per step, beyond the plain loop:

- `is_divergent` (`kernels/integrators.all_finite`: `jnp.all(jnp.isfinite(leaf))` per leaf,
  stacked) compiles to **two stand-alone `is-finite` passes** over the new position and the
  score (XLA does not fuse them into the update) plus two windowed `reduce` passes over their
  boolean results — in ULA, annealed Langevin, the reverse SDE and MALA alike;
- `rs.ula` writes the **score as a second state array** (`ULAState.score`): one more `f32` pass
  each step (4 MB at d = 1000 × 1000 chains; this CPU has 512 KB of L2); its measured cost in this
  run is the "score carried" row of the decomposition table;
- in the diffusion kernels (`_euler_maruyama_move`, annealed Langevin's `one_move`), the check
  `all_finite(s, x_new)` reads the score of the *old* position after the new one is computed, so
  XLA **copies the carried position** each move to keep both alive (`copy f32`; the hand loop
  with the same check shows the same copy and passes);
- the driver itself (`rs.sample_chains`' key `fold_in` per chain and step — which the hand loop
  also does to get the same draws — and the OR of the flags over the thinning block) adds no
  `(chains, d)` pass.

These are kernel-level costs (this page changes no library code). The "(alternative)" rows
compute the same flag with one floating-point reduction per chain, which XLA fuses into the
update (a NaN or ±inf anywhere makes the sum non-finite; a finite sum overflowing to inf, above
~3e38, would be a false alarm): `~isfinite(sum(x) + sum(s))` for ULA, and for the reverse SDE
`~isfinite(sum(x_new))` alone — the score enters `x_new` with a positive factor
`dt · g(t)²`, so a non-finite score already makes `x_new` non-finite — which brings the SDE loop
back to the plain loop's three passes and removes the copy. For MALA, the proposal's log ratio
is already a per-chain scalar that is non-finite (or NaN, already mapped to `-inf`) whenever the
proposal, its log density or its drift is, so the flag could be read from it with no pass over
`(chains, d)`. Where an "(alternative)" row's CPU-time ratio exceeds its wall-time ratio,
XLA ran that reduction fusion on more than one thread, so on a busy machine its gain is smaller.

### Compile time of a new time grid

`rs.diffusion.sample`, `rs.annealed_langevin` and `rs.reverse_diffusion` evaluate the schedule
on their time grid while tracing (`kernels/_annealing.levels_on` and `Schedule.time_grid` under
`jax.ensure_compile_time_eval`), one eager JAX operation at a time; each new grid length — and,
inside `vmap`, each new batch size — compiles every one of those operations afresh. Counted with
`jax.monitoring` on the first call (SDE, d = 100):

{table(bench_per_step.COMPILE_HEADER, compile_rows)}

The sampler program itself is the largest compilation; the dozens of small ones are the schedule
arithmetic (`linspace`, `exp`, `expm1`, `sqrt`, the `grad`-based drift and diffusion
coefficients, …). This is why the "rs compile s" column above is larger for the diffusion
samplers than for the hand loops, which get the same constants from NumPy. Computing the grid
and levels in NumPy (float64, then cast) would remove them; it is a library change, not made here.
""",
        f"""## `rs.mala` against `blackjax.mala`

`benchmarks/bench_mala.py`. Target N(0, I_d) as the log density `-|x|²/2` (gradient by
autodiff in both), step size `0.5 d^(-1/3)`, same keys; both kernels driven by
`rs.sample_chains` (last draw kept), and for one chain both by
`blackjax.util.run_inference_algorithm` inside one `jax.jit` (`transform` keeps nothing). The
kernels split their keys alike, so draws agree up to the float rounding of the accept test
(`log u < log r` in rs, `u < min(1, r)` in BlackJAX); when one decision flips the chains part,
hence an occasional large "max abs(Δ draw)".

{table(bench_mala.HEADER, mala_rows)}

{table(bench_mala.SUMMARY_HEADER, mala_summary)}

The loop-body difference is in the jaxpr and HLO tables of the per-step section (MALA rows):
`rs.mala` adds the divergence guard (`is_finite` on the proposal, its log density and its drift,
then a `where` that sends a non-finite or NaN log ratio to `-inf`), BlackJAX adds
`stop_gradient`/`select_n` from its energy-difference guard and its accept `cond` (a `select`
under `vmap`). Compiled, BlackJAX's additions are scalar per chain, while `rs.mala`'s
`is_finite` on the proposal and on the drift are **two extra passes over `(chains, d)` per
step** (8 → 10 such passes), each followed by a windowed reduce. At small d those passes are
tiny but each is still a separate kernel in the compiled loop, and `rs.mala` also takes the `log`
of its uniform draw (`log u < log r`) where BlackJAX compares `u` with the `exp` it computes
anyway: fixed per-step costs of tens of nanoseconds, visible when a step costs ~0.5 µs (d = 2).
Both are in `kernels/mala.py`: reading the flag from the per-chain log ratio (non-finite whenever
the proposal, its log density or its drift is) and accepting with `u < acceptance_rate` (already
computed) would remove them without changing which proposals are accepted beyond rounding.

{mala_notes}
""",
        f"""## NumPyro drop-in against `rs.run`

`benchmarks/numpyro_vs_run.py` (imported): {numpyro_description}. The same ULA kernel on
N(mean, I); `rs.numpyro.ScoreLangevin` under `MCMC(chain_method="vectorized")` against
`rs.run`. NumPyro's `MCMC.run` recompiles on every call (for NUTS too), so its run time is wall
time minus the compile time JAX reports; fastest of 3 repeats.

{table(NUMPYRO_HEADER, numpyro_rows)}

Run-time ratio ScoreLangevin / `rs.run` = **{numpyro_ratio:.2f}** (goal ≤ 1.2:
{verdict(numpyro_ratio, 1.2)}). `rs.run`'s time includes moving every draw to the host and
building the DataTree.
""",
        f"""## Diffusion quality per score evaluation

`benchmarks/bench_nfe.py`. Exact noised scores (`rs.scores.gaussian_mixture(...,
schedule=vp())`) on the two mixtures of `tests/test_diffusion.py`: 0.9 N(0, 0.5 I) + 0.1 N(m,
0.3 I) in d = 8 (‖m‖ = 6) and 8 modes on a circle of radius 4 in 2-D (std 0.2, weights 1/36 …
8/36). {bench_nfe.NUM_SAMPLES} draws per setting with `rs.diffusion.sample` (default uniform
time grid, Tweedie denoising at the end); NFE per draw is `Info.num_score_evals` (SDE `N + 1`,
Heun `2N + 1`, PC with one corrector `2N + 1`, so "20 NFE" is 20 for the SDE and 19 for the
others). Metrics against fresh exact draws:

- **sliced W2**: `sqrt(mean_k W2²(<θ_k, X>, <θ_k, Y>))` over {bench_nfe.NUM_DIRECTIONS} fixed
  directions uniform on the sphere, each 1-D W2 from the sorted projections of
  {bench_nfe.NUM_SAMPLES} draws on each side (a plug-in estimate: positive even for the same
  law — the "floor" is its value between two independent exact samples);
- **energy distance**: `rs.diagnostics.energy_test` on {bench_nfe.NUM_ENERGY} draws per side
  (coordinates standardised; an unbiased U-statistic, so ≈ 0 ± noise for the same law; the
  noise band is ±2 sd of its value between independent exact samples, {bench_nfe.FLOOR_SEEDS}
  pairs).

{table(bench_nfe.HEADER, bench_nfe.rows(nfe_results))}

Goal: at ≤ 20 NFE within {bench_nfe.GOAL} × the value at ~1000 NFE.

{table(bench_nfe.GOAL_HEADER, nfe_goals)}

{nfe_notes}

![quality vs NFE]({figures["nfe"]})

With exact scores the reverse SDE and the Heun PF-ODE reach, at ~20 NFE, what these metrics can
resolve with {bench_nfe.NUM_SAMPLES} / {bench_nfe.NUM_ENERGY} draws; a finer comparison needs
more draws, not more steps. Predictor–corrector with one corrector spends half of each budget on
Langevin corrections at `snr = 0.16` (step `2 · 0.16² · σ(t)² ≈ 0.05 σ²`, a move of about
`0.3 σ` per correction): at 19 NFE it has only 9 predictor moves over VP's β ∈ [0.1, 20], and the
small corrections do not undo their discretisation error, so the same budget spent on 19 SDE
moves does better. At ~1000 NFE PC is as good as the others: the miss is a property of the
method at this budget, not a fault in the implementation.
""",
        f"""## `trap_report` cost

`benchmarks/diagnostics_cost.py` (imported): 4 chains × 1000 draws of exact-score ULA on
N(0, I); `trap_report(tree, sampler=...)` (restart sensitivity: 3 groups × 8 chains × 1000
steps, energy tests on ≤ 500 draws per sample, 200 permutations). The first report on a new
shape compiles the restart runs and statistics; the repeat is what a user re-checking runs
pays.

{table(["d", "first report s (incl. compile)", "repeat report s", "status"], trap)}
""",
        f"""## Peak memory of `rs.run`, with and without thinning

`benchmarks/bench_subprocess.py`: ULA, d = {cfg["dim"]}, {cfg["chains"]} chains,
{cfg["steps"]} steps, float32, one fresh process per setting. JAX's CPU device has no
`memory_stats()` (it returns `None`) and `tracemalloc` does not see XLA's buffers, so this is
the process's resident set: {memory_method} from `/proc/self/status`, reset through
`/proc/self/clear_refs` after a first (compiling) call, so "peak extra" is the peak during the
second, identical call minus the RSS before it. "Held after" is RSS after the call, while the
DataTree is alive, minus RSS before: it includes memory freed during the call but kept by the
allocator, so it is an upper bound on what the DataTree holds.

{table(bench_subprocess.MEMORY_HEADER, bench_subprocess.memory_rows(memory))}

Thinning divides memory as intended (the peak follows the kept draws). Without thinning the peak
is about twice the draw array ({thin_one["peak_extra_mib"]:.0f} MiB for
{thin_one["draw_mib"]:.0f} MiB of draws): XLA's own accounting of the compiled sampling program
(`compiled.memory_analysis()`, last columns) shows a temporary buffer as large as the output.
`run._sample` stacks the kept draws in scan order, `(draw, chain, ...)`, then `swapaxes` them to
`(chain, draw, ...)` inside the program, so both copies are live at the end. Returning the
scan-ordered array and swapping axes on the host (a free NumPy view) would halve the peak; the
DataTree itself shares the output buffer (no further copy).
""",
        f"""## Chains sharded over forced host devices

`benchmarks/bench_subprocess.py`: a fresh process per device count with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`, N ∈ {{1, 2}} (the machine has 2 cores);
ULA `rs.run(..., thin=steps, devices=jax.devices())` against `devices=None` in the same process;
fastest of 5 calls after the compiling one. Speed-up is against N = 1, `devices=None`.
"CPU s / wall s" near 2 means both cores worked for this process during the run.

{table(bench_subprocess.SHARDING_HEADER, sharding_rows)}

With two forced devices the speed-up was {sharding_speedups}, with CPU s / wall s of
{sharding_cpu} and {sharding_threads} busy threads ("busy threads": threads of the process that
did at least a fifth of the busiest one's CPU work during the call, from `/proc/self/task`). One
CPU device runs its program on one thread; sharded over two devices the chains run on two
threads at once, so the speed-up is bounded by how much of the second core the process gets
(CPU s / wall s): {sharding_reading}
""",
        """## Score evaluations per draw (diffusion samplers)

From `Info.num_score_evals` (checked against counted calls in the tests): reverse SDE
`N + 1`, Heun PF-ODE `2N + 1`, predictor–corrector `(1 + corrector_steps)·N + 1`,
annealed Langevin `levels × steps_per_level + 1` (the `+1` is the final Tweedie step).
In the demo: annealed Langevin 251, SDE 201, PF-ODE 101 per draw; on the 0.9/0.1 mixture
(d = 8) PF-ODE Heun recovers weights within 0.007 with 37 evaluations.
""",
    ]
    return "\n".join(parts)
