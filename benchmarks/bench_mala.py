"""``rs.mala`` against ``blackjax.mala``: same target (N(0, I_d) as the log density
``-|x|^2 / 2``, gradient by autodiff in both), same step size, same driver.

Drivers: both through ``rs.sample_chains`` (chains vmapped in one scan, the last draw kept),
and, for one chain, both through ``blackjax.util.run_inference_algorithm`` (inside one
``jax.jit``; ``transform`` keeps nothing, so only the loop is timed). The two kernels use the
same proposal (``x + h grad + sqrt(2h) z``), split their keys the same way and accept alike
(``jax.random.bernoulli(key, min(1, r))``), so their draws agree up to the float rounding of
the MH log ratio, which they compute in a different order; the largest difference is printed
as a check.

``previous_mala`` re-implements ``rs.mala`` as the previous release had it (before commit
14f2828), for the "before" row of the compiled-loop comparison in ``bench_per_step``.
"""

from functools import partial

import blackjax
import jax
import jax.numpy as jnp
from bench_common import compare, log, previous_all_finite, verdict
from blackjax.base import SamplingAlgorithm
from blackjax.util import run_inference_algorithm

import robust_score as rs
from robust_score.kernels.integrators import langevin_log_proposal, langevin_step
from robust_score.kernels.mala import MALAInfo, MALAState

DIMS = (2, 100, 1000)
CHAINS = (1, 100, 1000)
GOAL = 1.0


def logdensity(x):
    return -0.5 * jnp.sum(x**2)


def step_size(dim):
    return 0.5 * dim ** (-1 / 3)


def previous_mala(logdensity_fn, step_size):
    """``rs.mala`` (gradient drift) with the previous release's kernel: ``is_divergent`` from
    ``all(isfinite)`` per leaf of the proposal, its log density and its drift, and the accept
    test ``log u < log r``. The proposal and the MH ratio are the library's."""
    logdensity_and_drift = jax.value_and_grad(logdensity_fn)

    def step(rng_key, state):
        key_proposal, key_accept = jax.random.split(rng_key)
        proposal = langevin_step(key_proposal, state.position, state.score, step_size)
        logdensity, drift = logdensity_and_drift(proposal)
        log_ratio = (
            logdensity
            - state.logdensity
            + langevin_log_proposal(state.position, proposal, drift, step_size)
            - langevin_log_proposal(proposal, state.position, state.score, step_size)
        )
        is_divergent = ~previous_all_finite(proposal, logdensity, drift)
        log_ratio = jnp.where(is_divergent | jnp.isnan(log_ratio), -jnp.inf, log_ratio)
        acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
        is_accepted = jnp.log(jax.random.uniform(key_accept, dtype=log_ratio.dtype)) < log_ratio
        new_state = jax.tree.map(
            lambda new, old: jnp.where(is_accepted, new, old),
            MALAState(proposal, logdensity, drift),
            state,
        )
        return new_state, MALAInfo(acceptance_rate, is_accepted, is_divergent)

    return SamplingAlgorithm(rs.mala(logdensity_fn, step_size).init, step)


def num_steps(dim, chains, target_s, overhead_s=1e-6, per_entry_s=2.5e-8):
    steps = target_s / (overhead_s + per_entry_s * dim * chains)
    return int(min(max(steps, 10), 1_000_000))


def _last_draw(sample_chains, algorithm, key, x0, steps):
    positions, stats, _ = sample_chains(algorithm, key, x0, steps, thin=steps)
    return positions, stats["acceptance_rate"]


def chains_cell(dim, chains, target_s, repeats):
    steps = num_steps(dim, chains, target_s)
    key = jax.random.key(3)
    x0 = jax.random.normal(jax.random.key(4), (chains, dim))
    h = step_size(dim)
    algorithms = {"rs.mala": rs.mala(logdensity, h), "blackjax.mala": blackjax.mala(logdensity, h)}
    fns = {
        name: partial(_last_draw, rs.sample_chains, algorithm, key, x0, steps)
        for name, algorithm in algorithms.items()
    }
    timings = compare(fns, repeats)
    (rs_x, rs_acc), (bj_x, bj_acc) = fns["rs.mala"](), fns["blackjax.mala"]()
    difference = float(jnp.max(jnp.abs(rs_x - bj_x)))
    return steps, timings, difference, float(rs_acc.mean()), float(bj_acc.mean())


def one_chain_cell(dim, target_s, repeats):
    steps = num_steps(dim, 1, target_s, overhead_s=1.5e-6)
    key = jax.random.key(5)
    x0 = jax.random.normal(jax.random.key(6), (dim,))
    h = step_size(dim)
    programs = {}
    for name, algorithm in (
        ("rs.mala", rs.mala(logdensity, h)),
        ("blackjax.mala", blackjax.mala(logdensity, h)),
    ):

        @jax.jit
        def program(key, algorithm=algorithm):
            state, _ = run_inference_algorithm(
                key, algorithm, steps, initial_position=x0, transform=lambda state, info: None
            )
            return state.position

        programs[name] = partial(program, key)
    timings = compare(programs, repeats)
    difference = float(jnp.max(jnp.abs(programs["rs.mala"]() - programs["blackjax.mala"]())))
    return steps, timings, difference


HEADER = [
    "driver",
    "d",
    "chains",
    "steps",
    "rs.mala µs/step",
    "blackjax.mala µs/step",
    "**rs / blackjax**",
    "rs / blackjax (CPU s)",
    "rs compile s",
    "blackjax compile s",
    "acceptance rs / bj",
    "max abs(Δ draw)",
]


def main(target_s=0.2, repeats=6, dims=DIMS, chains_list=CHAINS):
    rows, ratios = [], {}
    for dim in dims:
        for chains in chains_list:
            steps, t, diff, rs_acc, bj_acc = chains_cell(dim, chains, target_s, repeats)
            ratio = t["rs.mala"].run / t["blackjax.mala"].run
            ratios[("rs.sample_chains", dim, chains)] = ratio
            rows.append(
                [
                    "`rs.sample_chains`",
                    dim,
                    chains,
                    steps,
                    t["rs.mala"].run * 1e6 / steps,
                    t["blackjax.mala"].run * 1e6 / steps,
                    ratio,
                    t["rs.mala"].cpu / t["blackjax.mala"].cpu,
                    t["rs.mala"].compile,
                    t["blackjax.mala"].compile,
                    f"{rs_acc:.2f} / {bj_acc:.2f}",
                    diff,
                ]
            )
            log(*rows[-1])
    for dim in dims:
        steps, t, diff = one_chain_cell(dim, target_s, repeats)
        ratio = t["rs.mala"].run / t["blackjax.mala"].run
        ratios[("run_inference_algorithm", dim, 1)] = ratio
        rows.append(
            [
                "`run_inference_algorithm`",
                dim,
                1,
                steps,
                t["rs.mala"].run * 1e6 / steps,
                t["blackjax.mala"].run * 1e6 / steps,
                ratio,
                t["rs.mala"].cpu / t["blackjax.mala"].cpu,
                t["rs.mala"].compile,
                t["blackjax.mala"].compile,
                "–",
                diff,
            ]
        )
        log(*rows[-1])
    return rows, ratios


def summary(ratios):
    out = []
    for driver in ("rs.sample_chains", "run_inference_algorithm"):
        cells = {key[1:]: value for key, value in ratios.items() if key[0] == driver}
        worst_cell = max(cells, key=cells.get)
        above = [f"d={d}, {c} ch ({v:.2f})" for (d, c), v in cells.items() if v > GOAL]
        out.append(
            [
                f"`{driver}`",
                min(cells.values()),
                cells[worst_cell],
                f"d={worst_cell[0]}, {worst_cell[1]} chains",
                verdict(cells[worst_cell], GOAL),
                "; ".join(above) or "none",
            ]
        )
    return out


SUMMARY_HEADER = [
    "driver",
    "best rs/blackjax",
    "worst rs/blackjax",
    "worst cell",
    f"goal ≤ {GOAL} in every cell",
    "cells above the goal",
]
