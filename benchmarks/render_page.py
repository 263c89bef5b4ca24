"""The Markdown of ``docs/benchmarks.md`` from the results of ``run_all.py``.

Every verdict and every sentence that depends on a measurement is computed here from the
results; the fixed prose describes methods, and what the previous run found and what was
changed since (commits 14f2828 and d6ae172), never what this run measures.
"""

import datetime
import statistics

import bench_mala
import bench_nfe
import bench_per_step as bps
import bench_subprocess
from bench_common import table, verdict

MINUTES_GOAL = 15
MEMORY_GOAL = 1.25  # peak extra RSS of rs.run without thinning, in draw arrays: one copy
NUMPYRO_HEADER = [
    "sampler",
    "JAX compile s, first call",
    "repeat wall s",
    "of which compile s",
    "run s",
]
NAN = float("nan")
PLAIN = {"ULA": bps.ULA_PLAIN, "annealed Langevin": bps.DIFF_PLAIN, "reverse SDE": bps.DIFF_PLAIN}
BEFORE = {
    "ULA": bps.ULA_BEFORE,
    "annealed Langevin": bps.DIFF_BEFORE,
    "reverse SDE": bps.DIFF_BEFORE,
}


def _machine_table(machine, load_start, total, sections):
    rows = [[key, value] for key, value in machine.items()]
    rows.append(["load average (1 / 5 / 15 min) at start", load_start])
    rows.append(["`make bench` driver wall time", f"{total / 60:.1f} min"])
    section_rows = [[name, seconds, before, after] for name, seconds, before, after in sections]
    return table(["", ""], rows), table(
        ["section", "wall s", "load before", "load after"], section_rows
    )


# ------------------------------------------------------------------- numbers the prose uses
def _range(values):
    values = [v for v in values if isinstance(v, float)]
    return (min(values), max(values)) if values else (NAN, NAN)


def _aa_range(per_step_rows):
    return _range([row[9] for row in per_step_rows])


def _run_extra_ms(per_step_rows):
    """Per ULA cell, ``rs.run``'s run time minus ``rs.sample_chains``' (same program), in ms."""
    return [
        (row_run[11] - row_chains[11]) * 1e3
        for row_chains, row_run in zip(per_step_rows, per_step_rows[1:], strict=False)
        if row_chains[0] == "ULA"
        and row_chains[1] == "`rs.sample_chains`"
        and row_run[1] == "`rs.run`"
    ]


def _median(values):
    return statistics.median(values) if values else NAN


def _is_finite_passes(by_opcode):
    """Stand-alone ``is-finite`` passes in a ``step_loop_ops`` opcode summary."""
    total = 0
    for part in by_opcode.split(", "):
        if part.startswith("is-finite"):
            total += int(part.rsplit("×", 1)[1])
    return total


def _has(by_opcode, opcode):
    return any(part.startswith(opcode + " ") for part in by_opcode.split(", "))


def _anatomy_cells(anatomy_rows):
    """``{(sampler, d, chains): {loop: (run ratio, CPU ratio)}}``."""
    cells = {}
    for sampler, dim, chains, _, name, _, ratio, cpu in anatomy_rows:
        cells.setdefault((sampler, dim, chains), {})[name] = (ratio, cpu)
    return cells


def _compile_row(compile_rows, label):
    return next((row for row in compile_rows if row[0] == label), None)


# ------------------------------------------------------------------------------ the goals
def _per_step_reason(sampler, driver, worst, aa_high, passes, run_extra_ms):
    group = passes.get(sampler, {})
    hand = group.get(PLAIN[sampler])
    library = group.get(bps.hlo_library_label(sampler, driver))
    parts = []
    if hand and library:
        if library[0] > hand[0]:
            parts.append(
                f"compiled step loop: {library[0]} `(chains, d)` passes per step against the "
                f"hand loop's {hand[0]}"
            )
        else:
            parts.append(
                f"compiled step loop: {library[0]} `(chains, d)` passes per step, as many as "
                "the hand loop"
            )
    parts.append(
        f"worst cell {'within' if worst <= aa_high else 'above'} this run's A/A range "
        f"(up to {aa_high:.2f})"
    )
    if driver == "`rs.run`" and run_extra_ms:
        parts.append(f"`rs.run` adds the DataTree: median {_median(run_extra_ms):.0f} ms per call")
    return "measured: " + "; ".join(parts)


def _mala_reason(worst, aa_high, passes):
    group = passes.get("MALA", {})
    rs_passes = group.get(bps.MALA_NOW, (None,))[0]
    bj_passes = group.get(bps.MALA_BLACKJAX, (None,))[0]
    parts = []
    if rs_passes is not None and bj_passes is not None:
        relation = "against" if rs_passes != bj_passes else "as many as"
        parts.append(
            f"compiled step loop: {rs_passes} `(chains, d)` passes per step, {relation} "
            f"`blackjax.mala`'s {bj_passes}"
        )
    parts.append(
        f"worst cell {'within' if worst <= aa_high else 'above'} the per-step section's A/A "
        f"range (up to {aa_high:.2f})"
    )
    return "measured: " + "; ".join(parts)


def _plural(count, word):
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith("s") else f"{count} {word}s"


def _mib(value):
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _memory_numbers(memory):
    thin_one = next((m for m in memory if m["thin"] == 1), memory[0])
    ratio = thin_one["peak_extra_mib"] / thin_one["draw_mib"]
    return thin_one, ratio


def _goal_rows(per_step_summary, mala_summary, numpyro_ratio, nfe_goals, trap, total, context):
    aa_high, passes, run_extra_ms, memory, numpyro_rows = context
    numpyro_run = ", ".join(f"{row[0]} {row[4]:.2f} s" for row in numpyro_rows)
    rows = []
    for sampler, driver, geo, worst, cell, ok, _ in per_step_summary:
        rows.append(
            [
                f"{sampler} via {driver} ≤ {bps.GOAL} × hand-written scan",
                f"worst {worst:.2f} ({cell}); geometric mean {geo:.2f}",
                ok,
                _per_step_reason(sampler, driver, worst, aa_high, passes, run_extra_ms)
                if "missed" in ok
                else "",
            ]
        )
    for driver, best, worst, cell, ok, _ in mala_summary:
        rows.append(
            [
                f"`rs.mala` via {driver} ≤ {bench_mala.GOAL} × `blackjax.mala`",
                f"worst {worst:.2f} ({cell}); best {best:.2f}",
                ok,
                _mala_reason(worst, aa_high, passes) if "missed" in ok else "",
            ]
        )
    numpyro_ok = verdict(numpyro_ratio, 1.2)
    rows.append(
        [
            "`ScoreLangevin` under NumPyro ≤ 1.2 × `rs.run`",
            f"{numpyro_ratio:.2f}",
            numpyro_ok,
            f"measured: {numpyro_run}; fastest of 3 calls each (compare the per-step "
            f"section's A/A range, up to {aa_high:.2f})"
            if "missed" in numpyro_ok
            else "",
        ]
    )
    for target, method, nfes, _, sw_ratio, sw_ok, _, _, en_ok in nfe_goals:
        missed = "missed" in sw_ok or "missed" in en_ok
        rows.append(
            [
                f"{method}, {target}: ≤ 20 NFE within 1.5 × the ~1000-NFE value",
                f"NFE {nfes}: sliced-W2 ratio {sw_ratio:.2f}; energy: {en_ok}",
                sw_ok if sw_ok == en_ok or "missed" in sw_ok else f"{sw_ok} (SW2), {en_ok}",
                "method: at 19 NFE only 9 predictor moves, plus 9 small corrections"
                if missed and method.startswith("PC")
                else ("see the section" if missed else ""),
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
    else:
        rows.append(
            [
                "`trap_report` ≤ 10 s at d = 1000 (repeat call)",
                "not run (d = 1000 skipped)",
                "–",
                "",
            ]
        )
    thin_one, ratio = _memory_numbers(memory)
    memory_ok = verdict(ratio, MEMORY_GOAL)
    rows.append(
        [
            f"`rs.run` holds one copy of its draws: peak extra memory ≤ {MEMORY_GOAL} × the draw "
            "array (no thinning)",
            f"{ratio:.2f} × ({thin_one['peak_extra_mib']:.0f} MiB for "
            f"{thin_one['draw_mib']:.0f} MiB of draws)",
            memory_ok,
            f"measured: XLA temporary buffer {_mib(thin_one['xla_temp_mib'])} MiB against an "
            f"output of {_mib(thin_one['xla_output_mib'])} MiB"
            if "missed" in memory_ok
            else "",
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


# ---------------------------------------------------------------- what changed, measured
def _timing_phrase(cells, sampler, now_name, before_name):
    parts = []
    for (name, dim, chains), named in cells.items():
        if name != sampler:
            continue
        now = named.get(now_name, (NAN,))[0]
        before = named.get(before_name, (NAN,))[0]
        parts.append(f"d = {dim}, {chains} chains: {now:.2f} now, {before:.2f} before")
    return "; ".join(parts)


def _ula_check_costs(cells):
    """Per ULA cell of the anatomy: run-time and CPU-time ratios to the plain hand loop of the
    library's ``all(isfinite)`` check and of the rejected float sum."""
    parts = []
    for (sampler, dim, chains), named in cells.items():
        if sampler != "ULA" or bps.ULA_SUM not in named or bps.ULA_NOW not in named:
            continue
        (all_run, all_cpu), (sum_run, sum_cpu) = named[bps.ULA_NOW], named[bps.ULA_SUM]
        parts.append(
            f"d = {dim}, {chains} chains: sum {sum_run:.2f} wall / {sum_cpu:.2f} CPU, "
            f"`all(isfinite)` {all_run:.2f} / {all_cpu:.2f}"
        )
    return "; ".join(parts)


def _threaded_cells(cells, name, margin=0.1):
    """ULA cells where ``name``'s CPU-time ratio exceeds its run-time ratio by ``margin``:
    the loop used more than one thread's worth of CPU time beyond the plain loop's."""
    return [
        (dim, chains, *named[name])
        for (sampler, dim, chains), named in cells.items()
        if sampler == "ULA" and name in named and named[name][1] > named[name][0] + margin
    ]


def _changes_rows(anatomy_rows, passes, compile_rows, memory):
    cells = _anatomy_cells(anatomy_rows)
    ula = passes.get("ULA", {})
    sde = passes.get("reverse SDE", {})
    annealed = passes.get("annealed Langevin", {})
    mala = passes.get("MALA", {})
    library = {
        "ULA": ula.get(f"`{bps.ULA_LIBRARY}`"),
        "annealed Langevin": annealed.get(f"`{bps.DIFF_LIBRARY}`"),
        "reverse SDE": sde.get(f"`{bps.DIFF_LIBRARY}`"),
        "MALA": mala.get(bps.MALA_NOW),
    }
    before = {
        "ULA": ula.get(bps.ULA_BEFORE),
        "annealed Langevin": annealed.get(bps.DIFF_BEFORE),
        "reverse SDE": sde.get(bps.DIFF_BEFORE),
        "MALA": mala.get(bps.MALA_BEFORE),
    }
    reference = {
        "ULA": ula.get(bps.ULA_PLAIN),
        "annealed Langevin": annealed.get(bps.DIFF_PLAIN),
        "reverse SDE": sde.get(bps.DIFF_PLAIN),
        "MALA": mala.get(bps.MALA_BLACKJAX),
    }
    beyond = []
    for name, ref in reference.items():
        if not (ref and library[name] and before[name]):
            continue
        now_extra = library[name][0] - ref[0]
        before_extra = before[name][0] - ref[0]
        beyond.append(
            f"{name} {now_extra} now"
            + (f" ({library[name][2]})" if library[name][2] != "–" else "")
            + f", {before_extra} before"
            + (f" (of which `is-finite`: {_is_finite_passes(before[name][1])})")
        )

    def passes_now_before(group, now, old, plain):
        return (
            f"`(chains, d)` passes per step: library {group.get(now, ('–',))[0]}, plain hand "
            f"loop {group.get(plain, ('–',))[0]}, before {group.get(old, ('–',))[0]}"
        )

    ula_time = _timing_phrase(cells, "ULA", bps.ULA_LIBRARY, bps.ULA_BEFORE)
    sde_time = _timing_phrase(cells, "reverse SDE", bps.DIFF_LIBRARY, bps.DIFF_BEFORE)
    copies = [
        f"{name}: {'a' if _has(value[1], 'copy') else 'no'} `copy` per move"
        for name, value in (
            ("now", library["reverse SDE"]),
            ("before", before["reverse SDE"]),
        )
        if value
    ]
    level_now = _compile_row(compile_rows, bps.COMPILE_LEVELS_NOW)
    level_before = _compile_row(compile_rows, bps.COMPILE_LEVELS_BEFORE)
    new_steps = _compile_row(compile_rows, bps.COMPILE_SAMPLER_NEW)
    new_batch = _compile_row(compile_rows, bps.COMPILE_SAMPLER_BATCH)
    levels_measured = (
        f"levels of a new grid: now {_plural(level_now[2], 'compilation')}, {level_now[1]:.2f} "
        f"s; before {_plural(level_before[2], 'compilation')}, {level_before[1]:.2f} s. A "
        f"sampler's first call with a new `num_steps`: "
        f"{_plural(new_steps[2], 'compilation')}, {new_steps[1]:.2f} s"
        + (
            f"; with a new batch size on the same grid: "
            f"{_plural(new_batch[2], 'compilation')}"
            + (f" (besides the largest: {new_batch[6]})" if new_batch[6] != "–" else "")
            if new_batch
            else ""
        )
        if level_now and level_before and new_steps
        else "–"
    )
    rejected = ula.get(bps.ULA_SUM)
    rejected_measured = ""
    if rejected and reference["ULA"]:
        costs = _ula_check_costs(cells)
        rejected_measured = (
            f". The rejected float sum (ULA hand loop): "
            f"{_plural(rejected[0] - reference['ULA'][0], 'pass')} beyond the plain loop "
            f"({rejected[2]})" + (f"; ÷ plain hand loop, {costs}" if costs else "")
        )
    thin_one, ratio = _memory_numbers(memory)
    return [
        [
            "`integrators.all_finite` stacked `all(isfinite(leaf))` per leaf, and every kernel "
            "called it on the position and the score after every move: XLA compiled it to "
            "stand-alone `is-finite` passes over `(chains, d)` plus their reductions, every "
            "step, in every kernel",
            "`all_finite` is a boolean reduction per leaf, `all(isfinite(leaf))`, combined with "
            "`&` (no stacking), and the kernels check only what is needed: ULA the new position, "
            "the diffusion samplers the end point of a path, MALA the log ratio "
            "(`~isfinite(log_ratio)`). A float-sum version (`isfinite(sum)`) was tried and "
            "rejected: XLA:CPU hands a float sum to a multi-threaded reduction, which cost more "
            "CPU time than the boolean one when it was measured (this run's numbers: third "
            "column)",
            "`(chains, d)` passes per step beyond the reference loop (plain hand loop; "
            "`blackjax.mala` for MALA), in the compiled programs: "
            + ("; ".join(beyond) or "–")
            + rejected_measured,
        ],
        [
            "`ULAState` carried the score: a second `(chains, d)` array read and written per step",
            "the state is the position only; each step evaluates `score_fn` once, moves, and "
            "flags `is_divergent = ~all_finite(new position)`",
            passes_now_before(ula, f"`{bps.ULA_LIBRARY}`", bps.ULA_BEFORE, bps.ULA_PLAIN)
            + (f". Run time ÷ plain hand loop: {ula_time}" if ula_time else ""),
        ],
        [
            "reverse diffusion and annealed Langevin checked `all_finite(s, x_new)` after every "
            "move; reading the old position's score after the new position exists made XLA copy "
            "the carried position each move",
            "the moves carry only `x`; one check of the end point "
            "(`_annealing.trajectory_diverged`) flags the whole path, since every move adds to "
            "`x` with coefficient one and a NaN or inf that entered stays",
            "reverse SDE "
            + passes_now_before(sde, f"`{bps.DIFF_LIBRARY}`", bps.DIFF_BEFORE, bps.DIFF_PLAIN)
            + (f" ({', '.join(copies)})" if copies else "")
            + "; annealed Langevin "
            + passes_now_before(annealed, f"`{bps.DIFF_LIBRARY}`", bps.DIFF_BEFORE, bps.DIFF_PLAIN)
            + (f". Run time ÷ plain hand loop: {sde_time}" if sde_time else ""),
        ],
        [
            "schedule levels were evaluated op by op while tracing "
            "(`jax.ensure_compile_time_eval`): each new grid length compiled dozens of small "
            "programs",
            "one small compiled program per grid (`_annealing.grid_levels`, cached per setting); "
            "annealed Langevin's per-level step sizes in NumPy; the factories check `spacing` "
            "without building a grid (`Schedule.check_spacing`), and the prior's standard "
            "deviation is computed once per schedule, not per traced batch shape",
            levels_measured,
        ],
        [
            "`rs.mala`: `is_divergent = ~all_finite(proposal, logdensity, drift)` (passes over "
            "`(chains, d)`) and the accept test `log u < log r` (a `log` per step)",
            "`is_divergent = ~isfinite(log_ratio)` (a per-chain scalar); accept with "
            "`jax.random.bernoulli(key, acceptance_rate)`, as `blackjax.mala`",
            f"`(chains, d)` passes per step: `rs.mala` {mala.get(bps.MALA_NOW, ('–',))[0]}, "
            f"`blackjax.mala` {mala.get(bps.MALA_BLACKJAX, ('–',))[0]}, before "
            f"{mala.get(bps.MALA_BEFORE, ('–',))[0]}",
        ],
        [
            "`rs.run` stacked the kept draws `(draw, chain, ...)` and transposed them inside the "
            "program, so both copies were live at the end",
            "each kept draw is written in place into a `(chain, draw, ...)` buffer carried by "
            "the scan",
            f"peak extra memory without thinning: {thin_one['peak_extra_mib']:.0f} MiB for "
            f"{thin_one['draw_mib']:.0f} MiB of draws ({ratio:.2f} ×); XLA temporary buffer "
            f"{_mib(thin_one['xla_temp_mib'])} MiB",
        ],
    ]


CHANGES_HEADER = [
    "found in the previous release",
    "changed (commits 14f2828 and d6ae172)",
    "measured in this run",
]


# --------------------------------------------------------------------------- section notes
def _hlo_index(hlo_rows):
    """``{sampler: {program: (passes, by opcode, beyond the group's first row)}}``."""
    out = {}
    for group, program, passes, by_opcode, extra in hlo_rows:
        out.setdefault(group.split(",")[0], {})[program] = (passes, by_opcode, extra)
    return out


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


def _per_step_notes(per_step_rows, anatomy_rows):
    aa_low, aa_high = _aa_range(per_step_rows)
    identical = all(row[-1] == 0 for row in per_step_rows)
    over = [row for row in per_step_rows if row[7] > bps.GOAL]
    beyond_noise = [row for row in over if row[7] > aa_high]
    lines = [
        f"- **Noise.** The A/A control (the same hand loop jitted a second time and timed "
        f"against the first) read {aa_low:.2f}–{aa_high:.2f} in this run: deviations of that "
        f"size from 1 are this shared machine's timing noise (load average in the table above), "
        f"not overhead. {len(over)} of {len(per_step_rows)} rs/hand cells exceed "
        f"{bps.GOAL}; {len(beyond_noise)} of them also exceed the largest A/A value "
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
    run_extra = _run_extra_ms(per_step_rows)
    if run_extra:
        lines.append(
            f"- **`rs.run` vs `rs.sample_chains`** (same compiled program): median "
            f"{_median(run_extra):.0f} ms more per call (cells range "
            f"{min(run_extra):.0f} to {max(run_extra):.0f} ms, timing noise included): the "
            "DataTree construction (`arviz_base.from_dict`) and the copy of the draws to the "
            "host, a fixed cost per call that the short cells make look like a few per cent."
        )
    cells = _anatomy_cells(anatomy_rows)
    parts, sde_parts = [], []
    for (sampler, dim, chains), named in cells.items():
        value = {name: ratio for name, (ratio, _) in named.items()}
        if sampler == "ULA":
            rejected = named.get(bps.ULA_SUM, (NAN, NAN))
            parts.append(
                f"d = {dim}, {chains} chains: with `rs.ula`'s check "
                f"{value.get(bps.ULA_NOW, NAN):.2f}, `rs.sample_chains` "
                f"{value.get(bps.ULA_LIBRARY, NAN):.2f}; the rejected float sum "
                f"{rejected[0]:.2f} (CPU time {rejected[1]:.2f}); before: score carried "
                f"{value.get(bps.ULA_BEFORE_CARRIED, NAN):.2f}, plus the per-leaf check "
                f"{value.get(bps.ULA_BEFORE, NAN):.2f}"
            )
        else:
            sde_parts.append(
                f"d = {dim}, {chains} chains: with the end-point check "
                f"{value.get(bps.DIFF_NOW, NAN):.2f}, `rs.diffusion.sample` "
                f"{value.get(bps.DIFF_LIBRARY, NAN):.2f}; before (per-move check) "
                f"{value.get(bps.DIFF_BEFORE, NAN):.2f}"
            )
    if parts:
        lines.append(
            "- **ULA decomposition** (run time ÷ the plain hand loop, from the anatomy table "
            "below): " + "; ".join(parts) + "."
        )
    if sde_parts:
        lines.append("- **Reverse SDE** (same table): " + "; ".join(sde_parts) + ".")
    return "\n".join(lines)


def _hlo_reading(hlo):
    """One bullet per sampler: the library's compiled loop against the plain and the
    "before" hand loops."""
    lines = []
    groups = (
        ("ULA", (f"`{bps.ULA_LIBRARY}`",), bps.ULA_PLAIN, bps.ULA_NOW, bps.ULA_BEFORE),
        (
            "annealed Langevin",
            (f"`{bps.DIFF_LIBRARY}`", "`rs.sample_chains(rs.annealed_langevin)`"),
            bps.DIFF_PLAIN,
            bps.DIFF_NOW,
            bps.DIFF_BEFORE,
        ),
        (
            "reverse SDE",
            (f"`{bps.DIFF_LIBRARY}`", "`rs.sample_chains(rs.reverse_diffusion)`"),
            bps.DIFF_PLAIN,
            bps.DIFF_NOW,
            bps.DIFF_BEFORE,
        ),
        ("MALA", (bps.MALA_NOW,), bps.MALA_BLACKJAX, None, bps.MALA_BEFORE),
    )
    for sampler, libraries, plain, now, before in groups:
        group = hlo.get(sampler, {})
        if plain not in group:
            continue
        reference = group[plain][0]
        reference_name = "`blackjax.mala`" if sampler == "MALA" else "the plain hand loop"
        library_parts = []
        for name in libraries:
            if name not in group:
                continue
            passes, by_opcode, extra = group[name]
            relation = (
                "as many as"
                if passes == reference
                else ("fewer than" if passes < reference else "more than")
            )
            library_parts.append(
                f"{name} makes {passes} `(chains, d)` passes per step, {relation} "
                f"{reference_name} ({reference})"
                + (f"; beyond it: {extra}" if extra != "–" else "")
            )
        text = f"- **{sampler}**: " + "; ".join(library_parts)
        if now and now in group and libraries[0] in group:
            driver = group[libraries[0]][0] - group[now][0]
            text += f". The hand loop with the library's check makes {group[now][0]}" + (
                ", so the driver adds no such pass"
                if driver == 0
                else f"; the driver adds {driver}"
            )
        if before and before in group:
            passes, _, extra = group[before]
            text += f". The previous release's arithmetic makes {passes}" + (
                f" (beyond {reference_name}: {extra})" if extra != "–" else ""
            )
        lines.append(text + ".")
    return "\n".join(lines)


def _fusion_reading(hlo, anatomy_rows):
    """Whether ``rs.ula``'s per-step finiteness check (the one kernel that still checks every
    step) compiled into the update or into passes of its own, and the same for the rejected
    float sum, from the pass counts of the HLO table; the sum's CPU time from the anatomy."""
    group = hlo.get("ULA", {})
    now, plain = group.get(bps.ULA_NOW), group.get(bps.ULA_PLAIN)
    library = group.get(f"`{bps.ULA_LIBRARY}`")
    rejected, before = group.get(bps.ULA_SUM), group.get(bps.ULA_BEFORE)
    if not (now and plain):
        return ""
    lines = []
    extra = now[0] - plain[0]
    if extra <= 0:
        lines.append(
            "In this build XLA fused `rs.ula`'s per-step `all(isfinite)` into the update: the "
            "hand loop with the check makes as many `(chains, d)` passes as the plain one."
        )
    else:
        lines.append(
            f"In this build XLA did **not** fuse `rs.ula`'s per-step `all(isfinite)` into the "
            f"update: the hand loop with the check makes {_plural(extra, 'pass')} more than the "
            f"plain one ({now[2]}), reading the state again every step"
            + (
                f", fewer than the previous release's {before[0] - plain[0]} ({before[2]})"
                if before and before[0] > now[0]
                else ""
            )
            + "."
        )
    if library:
        lines.append(
            f"The library's loop makes {library[0]} passes"
            + (", as many as that hand loop." if library[0] == now[0] else f" against {now[0]}.")
        )
    if rejected:
        sum_extra = rejected[0] - plain[0]
        relation = (
            "as many as"
            if sum_extra == extra
            else ("fewer than" if sum_extra < extra else "more than")
        )
        custom = [part for part in rejected[2].split(", ") if part.startswith("ynn_fusion")]
        text = (
            f"The rejected float sum makes {_plural(sum_extra, 'pass')} beyond the plain loop, "
            f"{relation} `all(isfinite)`"
            + (f" ({rejected[2]})" if rejected[2] != "–" else "")
            + (": `ynn_fusion` is the custom fusion XLA:CPU hands to YNNPACK" if custom else "")
        )
        threaded = _threaded_cells(_anatomy_cells(anatomy_rows), bps.ULA_SUM)
        if threaded:
            text += (
                "; its CPU time exceeds its wall time beyond the plain loop's in "
                + ", ".join(
                    f"d = {dim}, {chains} chains ({run:.2f} wall, {cpu:.2f} CPU)"
                    for dim, chains, run, cpu in threaded
                )
                + ", so it ran on more than one thread"
            )
        lines.append(
            text + '. What each check costs per cell is in the anatomy table ("~all(isfinite x)" '
            'against "~isfinite(sum x)" and the previous release\'s per-leaf check).'
        )
    return " ".join(lines)


def _compilations(row):
    """A ``_first_call`` row in words: how many XLA compilations, the largest, the others."""
    text = f"{_plural(row[2], 'XLA compilation')}, {row[3]:.2f} s"
    if row[2] == 0:
        return text
    text += f", the largest {row[4]}"
    if row[2] == 1:
        return text + ", no other"
    others = "the other" if row[2] == 2 else f"the {row[2] - 1} others"
    return text + f"; {others} took {row[5]:.2f} s ({row[6]})"


def _compile_notes(compile_rows, per_step_rows):
    lines = []
    new_steps = _compile_row(compile_rows, bps.COMPILE_SAMPLER_NEW)
    batch = _compile_row(compile_rows, bps.COMPILE_SAMPLER_BATCH)
    cached = _compile_row(compile_rows, bps.COMPILE_SAMPLER_CACHED)
    if new_steps and batch:
        lines.append(
            f"- A new `num_steps`: {_compilations(new_steps)}. A new batch size with the same "
            f"grid: {_compilations(batch)}."
            + (f" A repeat call compiled {cached[2]}." if cached else "")
        )
    now = _compile_row(compile_rows, bps.COMPILE_LEVELS_NOW)
    before = _compile_row(compile_rows, bps.COMPILE_LEVELS_BEFORE)
    if now and before:
        faster = before[1] / now[1] if now[1] > 0 else NAN
        lines.append(
            f"- The levels of one new grid alone: {_plural(now[2], 'compilation')} and "
            f"{now[1]:.2f} s wall now, against {_plural(before[2], 'compilation')} and "
            f"{before[1]:.2f} s op by op as the "
            f"previous release computed them ({faster:.1f} × the time); both are free for a "
            "grid seen before."
        )
    diffusion = [
        row
        for row in per_step_rows
        if row[0] in ("annealed Langevin", "reverse SDE") and row[1] == "`rs.diffusion.sample`"
    ]
    if diffusion:
        rs_compile = _median([row[12] for row in diffusion])
        hand_compile = _median([row[13] for row in diffusion])
        lines.append(
            f"- In the per-step table, the diffusion samplers' first calls through "
            f"`rs.diffusion.sample` compiled in {rs_compile:.2f} s (median) against "
            f"{hand_compile:.2f} s for their hand loops."
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


def _nfe_reading(goals):
    def missed(method_prefix):
        return [
            target
            for target, method, _, _, _, sw_ok, _, _, en_ok in goals
            if method.startswith(method_prefix) and ("missed" in sw_ok or "missed" in en_ok)
        ]

    fast = missed("reverse SDE") + missed("PF-ODE")
    pc = missed("PC")
    if not fast:
        lines = [
            f"With exact scores the reverse SDE and the Heun PF-ODE met the goal on every target "
            f"in this run: at ~20 NFE they reach what these metrics can resolve with "
            f"{bench_nfe.NUM_SAMPLES} / {bench_nfe.NUM_ENERGY} draws, or close to it (notes "
            "above); a finer comparison needs more draws, not more steps."
        ]
    else:
        lines = [
            "The reverse SDE or the Heun PF-ODE missed the goal on "
            + " and ".join(sorted(set(fast)))
            + " in this run (rows above)."
        ]
    if pc:
        lines.append(
            "Predictor–corrector with one corrector missed it on "
            + " and ".join(pc)
            + ": it spends half of each budget on Langevin corrections at `snr = 0.16` (step "
            "`2 · 0.16² · σ(t)² ≈ 0.05 σ²`, a move of about `0.3 σ` per correction), so at 19 NFE "
            "it has only 9 predictor moves over VP's β ∈ [0.1, 20], and the small corrections "
            "do not undo their discretisation error; compare its ~1000-NFE rows with the other "
            "methods' to see whether the miss is the budget or the method."
        )
    else:
        lines.append("Predictor–corrector with one corrector met the goal too in this run.")
    return " ".join(lines)


def _mala_notes(mala_rows, mala_diff, aa_high):
    over = [row for row in mala_rows if row[6] > bench_mala.GOAL]
    cpu_over = [row for row in over if row[7] > bench_mala.GOAL]
    beyond = [row for row in over if row[6] > aa_high]
    same = [row for row in mala_rows if row[11] == 0]
    return "\n".join(
        [
            f"- {len(over)} of {len(mala_rows)} cells have rs/BlackJAX above {bench_mala.GOAL} by "
            f"wall time, {len(cpu_over)} of them also by CPU time, {len(beyond)} of them above "
            f"the largest A/A value of the per-step section ({aa_high:.2f}).",
            f"- {len(same)} of {len(mala_rows)} cells returned identical draws from both kernels.",
            "- Loop bodies (jaxpr, `rs.sample_chains`, d = 1000, 10 chains): "
            f"{mala_diff['rs ops']} primitives in `rs.mala`'s, {mala_diff['hand ops']} in "
            "`blackjax.mala`'s; only in "
            f"`rs.mala`: {mala_diff['only in rs']}; only in `blackjax.mala`: "
            f"{mala_diff['only in hand']}.",
        ]
    )


def _memory_notes(memory):
    thin_one, ratio = _memory_numbers(memory)
    ratios = ", ".join(
        f"thin {m['thin']}: {m['peak_extra_mib'] / m['draw_mib']:.2f}" for m in memory
    )
    temp, output = thin_one["xla_temp_mib"], thin_one["xla_output_mib"]
    if ratio <= MEMORY_GOAL:
        reading = (
            f"so the sampling program holds one copy of the draws (XLA's accounting: a "
            f"temporary buffer of {_mib(temp)} MiB beside the {_mib(output)} MiB output)."
        )
    else:
        reading = (
            f"more than one copy of the draws (XLA's accounting: a temporary buffer of "
            f"{_mib(temp)} MiB beside the {_mib(output)} MiB output)."
        )
    held = thin_one["held_mib"] / thin_one["draw_mib"]
    return (
        f"Peak extra memory ÷ draw array: {ratios}. Without thinning the peak is {ratio:.2f} × "
        f"the draw array ({thin_one['peak_extra_mib']:.0f} MiB for {thin_one['draw_mib']:.0f} "
        f"MiB of draws), {reading} The previous release stacked the kept draws in scan order, "
        "`(draw, chain, ...)`, and swapped axes to `(chain, draw, ...)` inside the program, so "
        "both copies were live at the end; `run._sample` now writes each kept draw in place "
        "into a `(chain, draw, ...)` buffer carried by the scan. After the call the process "
        f"holds {held:.2f} × the draw array more than before it (the DataTree and whatever the "
        "allocator kept)."
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
    per_step_summary = bps.summary(per_step_ratios)
    anatomy_rows, diffs, hlo_rows = anatomy
    hlo = _hlo_index(hlo_rows)
    mala_rows, mala_ratios = mala
    mala_summary = bench_mala.summary(mala_ratios)
    numpyro_description, numpyro_rows, numpyro_ratio = numpyro
    nfe_results, nfe_floor = nfe
    nfe_goals = bench_nfe.goal_rows(nfe_results, nfe_floor)
    machine_table, section_table = _machine_table(machine, load_start, total, sections)
    _, aa_high = _aa_range(per_step_rows)
    context = (aa_high, hlo, _run_extra_ms(per_step_rows), memory, numpyro_rows)
    goals = _goal_rows(
        per_step_summary, mala_summary, numpyro_ratio, nfe_goals, trap, total, context
    )
    changes = _changes_rows(anatomy_rows, hlo, compile_rows, memory)
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
    per_step_notes = _per_step_notes(per_step_rows, anatomy_rows)
    hlo_reading = _hlo_reading(hlo)
    fusion_reading = _fusion_reading(hlo, anatomy_rows)
    compile_notes = _compile_notes(compile_rows, per_step_rows)
    mala_notes = _mala_notes(mala_rows, mala_diff, aa_high)
    memory_notes = _memory_notes(memory)
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
    nfe_notes = _nfe_notes(nfe_results, nfe_floor, nfe_goals)
    nfe_reading = _nfe_reading(nfe_goals)

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

Every status is computed from this run's numbers. Where a goal is missed, the last column gives
what this run measured about it — the `(chains, d)` passes per step of the compiled library
loop against the reference loop's, and whether the worst cell lies beyond the timing noise of
the A/A control — and the section has the evidence.

## What changed since the previous run

The previous run of this page found where the kernels lost time and memory against
hand-written loops; the library was changed after it (commits 14f2828 and d6ae172). The first
two columns say what was found and what was changed; the third is measured in this run. Rows
and loops marked "before" re-implement the previous release's arithmetic in hand-written loops
(`benchmarks/bench_per_step.py`, `bench_mala.previous_mala`, `bench_per_step.previous_levels`),
so that before and after are both measured here, on the same keys.

{table(CHANGES_HEADER, changes)}
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
`rs.diffusion.sample` splits the key per sample, then per move), the same update and the same
schedule constants, vmapped over chains; its final positions are checked against the
library's (last column: 0 or float32 rounding). It computes no divergence flag, which the
library does (`rs.ula` per step, the diffusion samplers once per trajectory): that is part of
what the ratio measures. `batched` (ULA only, for information) uses one key per step for the
whole `(chains, d)` array: it draws the same amount of noise with less key arithmetic, so it
shows what the reproducible per-chain keys cost.

{table(bps.HEADER, per_step_rows)}

With the library's exact Gaussian score (`rs.scores.gaussian(zeros(d), 1.0)`, with
`schedule=vp()` for the SDE) in **both** loops:

{table(bps.HEADER, per_step_extra)}

Summary (goal ≤ {bps.GOAL} in every cell):

{table(bps.SUMMARY_HEADER, per_step_summary)}

![rs / hand per cell]({figures["per_step"]})

{per_step_notes}

### Where the difference comes from

The per-step loop bodies, read from `jax.make_jaxpr` of both programs (innermost `scan`, nested
`jit`s inlined; d = 1000, 1000 chains; for MALA d = 1000, 10 chains, both kernels under
`rs.sample_chains`):

{table(DIFF_HEADER, diff_rows)}

Besides the update itself, the library's loops now compute: `rs.ula`, `is_divergent =
~all(isfinite(x_new))` per chain and step (`kernels.integrators.all_finite` of the new
position: a boolean reduction), which `rs.sample_chains` keeps and ORs over the thinning block;
the diffusion samplers, nothing per move (their moves carry only `x`) and one such check of the
end point of each path (`_annealing.trajectory_diverged`); `rs.mala`, `is_divergent =
~isfinite(log_ratio)` on a per-chain scalar, and the accept test
`bernoulli(key, acceptance_rate)`. Where `split`, `convert_element_type` or `sqrt` appear only
in rs, they are `ravel_pytree` of the noise and the step-size constant, free after compilation.

The next table times, cell by cell, the plain hand loop; the hand loop with the library's
check of this release; for ULA, the float-sum check `~isfinite(sum(x_new))` that was tried for
this release and rejected ("rejected alternative"; compare its CPU-time column with its
run-time column); the previous release's arithmetic ("before": for ULA the score carried in the
state, then `all(isfinite)` per leaf of the position and the score, stacked, every step; for
the reverse SDE `all_finite(s, x_new)` per leaf after every move); and the library. Same keys
and update in every row:

{table(bps.ANATOMY_HEADER, anatomy_rows)}

The compiled programs: counting, in XLA's optimised HLO, the instructions of the per-step loop
body that write or read a whole `(chains, d)` array — each is one pass over the state per step.
`is-finite pred` is a stand-alone finiteness pass, `copy` a copy of the carried position, and an
entry written `op→type[shape]` reads a `(chains, d)` array and writes a smaller one (a
reduction; `ynn_fusion`, where it appears, is a custom fusion XLA:CPU hands to its YNNPACK
backend); in the plain loops the fusions are the random bits and the update. The last column is
what a program has beyond the first row of its group:

{table(bps.HLO_HEADER, hlo_rows)}

{hlo_reading}

{fusion_reading}

### Compile time of a new time grid

The diffusion samplers need the schedule's quantities (α, σ, drift, g²) on their time grid as
constants of the compiled program. The previous release evaluated them while tracing, op by op
under `jax.ensure_compile_time_eval` (`_annealing.levels_on`), so each new grid length compiled
each of those operations afresh; they are now computed by one small compiled program per grid
(`_annealing.grid_levels`, cached per schedule, length, start, spacing and dtype). Counted with
`jax.monitoring` (compilations named as JAX reports them) on first calls of the SDE sampler
(d = 100), and for the levels of one new grid alone, now and as the previous release computed
them (`bench_per_step.previous_levels`; one warm-up grid each first, so that only what a new
grid length costs is counted):

{table(bps.COMPILE_HEADER, compile_rows)}

{compile_notes}
""",
        f"""## `rs.mala` against `blackjax.mala`

`benchmarks/bench_mala.py`. Target N(0, I_d) as the log density `-|x|²/2` (gradient by
autodiff in both), step size `0.5 d^(-1/3)`, same keys; both kernels driven by
`rs.sample_chains` (last draw kept), and for one chain both by
`blackjax.util.run_inference_algorithm` inside one `jax.jit` (`transform` keeps nothing). The
kernels split their keys alike and both accept with `jax.random.bernoulli(key, min(1, r))`
(the previous release of `rs.mala` compared `log u` with `log r`), so draws agree up to the
float rounding of the MH log ratio, which the two compute in a different order; when one
decision flips the chains part, hence an occasional large "max abs(Δ draw)".

{table(bench_mala.HEADER, mala_rows)}

{table(bench_mala.SUMMARY_HEADER, mala_summary)}

{mala_notes}

The compiled step loops (passes over `(chains, d)` per step, including the previous release's
kernel) are in the HLO table of the per-step section, MALA rows.
""",
        f"""## NumPyro drop-in against `rs.run`

`benchmarks/numpyro_vs_run.py` (imported): {numpyro_description}. The same ULA update on
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

{nfe_reading}
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
allocator, so it is an upper bound on what the DataTree holds. The last columns are XLA's own
accounting of the compiled sampling program (`compiled.memory_analysis()`).

{table(bench_subprocess.MEMORY_HEADER, bench_subprocess.memory_rows(memory))}

{memory_notes}
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
