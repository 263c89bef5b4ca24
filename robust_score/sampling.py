"""Drive any ``blackjax.SamplingAlgorithm`` over many chains and return an ArviZ DataTree."""

import warnings
from functools import partial
from typing import Any, NamedTuple

import numpyro  # isort: skip  # noqa: F401  (before ArviZ: see robust_score/__init__.py)
import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import DictKey, GetAttrKey, SequenceKey

from robust_score._checks import (
    check_chain_axis,
    check_count,
    check_finite_tree,
    check_flag,
    check_key,
    check_labels,
    check_position_dtype,
    check_sampling_algorithm,
    explain_failed_init,
)
from robust_score._devices import (
    as_mesh,
    chain_sharding,
    chains_on_host,
    constrain,
    gather_to_host,
    spans_processes,
)
from robust_score._progress import ProgressBar
from robust_score.run_health import DivergenceWarning, warn_about_run

__all__ = ["run", "sample_chains", "RunState"]


class RunState(NamedTuple):
    """Where a run stopped: every chain's algorithm state, how many steps (warm-up included)
    the chains have taken and how many draws were kept. Pass it back as
    ``initial_positions`` with the same key to continue: the continued draws equal those of
    one longer run, and their ``draw`` coordinates follow the earlier ones, so the trees
    concatenate along ``draw``."""

    states: Any
    step: int
    num_draws: int = 0


def run(
    algorithm,
    rng_key,
    initial_positions,
    num_steps: int,
    *,
    num_warmup: int = 0,
    thin: int = 1,
    progress_bar: bool = False,
    devices=None,
    gather: bool = True,
    return_state: bool = False,
    check_convergence: bool = True,
    var_names=None,
    dims=None,
    coords=None,
):
    """Run ``len(initial_positions)`` chains of ``algorithm`` and return an ``xarray.DataTree``.

    Parameters
    ----------
    algorithm
        Any ``blackjax.SamplingAlgorithm`` (``init(position[, rng_key])``,
        ``step(rng_key, state)``): ``rs.ula``, ``rs.mala``, or BlackJAX's own.
    rng_key
        A JAX PRNG key. Chain ``c`` uses ``fold_in(key, c)`` and step ``i`` of it
        ``fold_in(fold_in(key, c), i)``, so its draws depend neither on how many chains run
        beside it nor on how the run is split, up to floating-point rounding (XLA compiles
        each device's batch of chains for its size); the same key, chain count and number
        of devices give bitwise-identical draws, in one process or several.
    initial_positions
        An array or pytree whose leaves share a leading chain axis, or a :class:`RunState`
        from an earlier call with ``return_state=True`` (then the chains continue from it).
    num_steps
        Steps after warm-up; every ``thin``-th is kept (``num_steps // thin`` draws).
    num_warmup
        Steps run first and discarded (burn-in; no tuning happens here).
    thin
        Keep one step in ``thin``: memory grows with the kept draws only.
    progress_bar
        Show a tqdm bar fed from inside the compiled loop: its description reads
        ``warmup`` during the warm-up steps, then ``sampling``; its postfix counts the
        divergent steps so far (summed over chains), when the algorithm's info reports
        ``is_divergent``.
    devices
        ``None`` (the default device), a sequence of devices, or a ``jax.sharding.Mesh`` with
        one axis: chains are sharded over them (the number of chains must divide evenly).
        Draws are the same as on one device, up to floating-point rounding. Under
        ``jax.distributed`` the devices may span processes (``devices=jax.devices()``):
        every process makes the same call with the same ``initial_positions``, and each
        computes the chains on its own devices.
    gather
        With devices that span processes: ``True`` gathers every chain's draws to every
        process (the tree is the same on each); ``False`` keeps each process's own chains
        only, with their global ``chain`` coordinates, for runs too large to gather. In one
        process, every chain is local and ``gather`` changes nothing.
    return_state
        Also return the final :class:`RunState`, to continue the run later.
    check_convergence
        Warn (``ConvergenceWarning``) when some quantity's R̂ or bulk ESS says the draws
        cannot be trusted yet (:func:`robust_score.run_health.convergence_problems`). Every
        quantity is checked, on draws thinned to about 40,000 values unless R̂'s own noise
        needs more; the check costs about 0.15 µs per value read on one CPU core (4 chains x
        1000 draws x 10 quantities: 5 ms; x 10,000 quantities: seconds). ``False`` skips it,
        as PyMC's ``compute_convergence_checks=False``; divergent draws are still counted.
    var_names
        The posterior variables' names, as ``arviz_base.from_dict`` would have them: a string
        for an array position (instead of ``x``), or a list with one name per array of a
        pytree position (in ``jax.tree.leaves`` order). ``None``: ``x`` for an array, the
        keys (joined by ``.``) for a pytree.
    dims
        ``{variable: [dim names]}``, one name per axis of a single draw (after ``chain`` and
        ``draw``), as in ``arviz_base.from_dict``; unnamed axes are ``<variable>_dim_<i>``.
    coords
        ``{dim name: values}`` for the dims named in ``dims`` (not ``chain`` or ``draw``,
        which ``rs.run`` numbers itself).

    Returns
    -------
    ``xarray.DataTree`` with ``posterior`` (dims ``chain, draw, ...``; an array position is
    the variable ``x``, a dict position one variable per key, unless ``var_names`` says
    otherwise; ``draw`` counts from 0, or on from the earlier draws of a continued
    :class:`RunState`) and ``sample_stats`` holding
    every scalar ``Info`` field (``is_divergent`` under ArviZ's name ``diverging``; boolean
    fields are OR-ed and numeric ones averaged over each thinning block). Divergent draws
    also raise a :class:`DivergenceWarning` naming how many. With ``return_state=True``, a
    ``(tree, RunState)`` pair; over processes, each process's :class:`RunState` holds its own
    chains' states (pass it back with the same ``devices``).

    Calls with the same algorithm object, shapes and settings reuse one compiled program.
    """
    resumed = isinstance(initial_positions, RunState)
    template = initial_positions.states.position if resumed else initial_positions
    var_names = check_labels(var_names, None, None, {}, len(jax.tree.leaves(template)))
    check_flag(gather, "gather")
    check_flag(check_convergence, "check_convergence")
    positions, stats, final = _sample_draw_major(
        algorithm,
        rng_key,
        initial_positions,
        num_steps,
        num_warmup=num_warmup,
        thin=thin,
        progress_bar=progress_bar,
        devices=devices,
    )
    # gathered straight to host memory, where (chain, draw, ...) is a view: no copy
    chains, (positions, stats) = chains_on_host((positions, stats), gather)
    positions, stats = jax.tree.map(lambda a: np.swapaxes(a, 0, 1), (positions, stats))
    first_draw = initial_positions.num_draws if resumed else 0
    labels = {"var_names": var_names, "dims": dims, "coords": coords, "first_draw": first_draw}
    tree = _to_datatree(positions, stats, chains, num_warmup=num_warmup, thin=thin, **labels)
    if check_convergence:
        warn_about_run(tree, stacklevel=2)
    return (tree, final) if return_state else tree


def sample_chains(
    algorithm,
    rng_key,
    initial_positions,
    num_steps: int,
    *,
    num_warmup: int = 0,
    thin: int = 1,
    progress_bar: bool = False,
    devices=None,
    gather: bool = True,
):
    """:func:`run` without the DataTree: returns ``(positions, stats, run_state)``, the first
    two as JAX arrays shaped ``(chain, draw, ...)`` (``stats`` a dict of the reduced scalar
    ``Info`` fields). For code (diagnostics, benchmarks) that consumes the draws itself.

    With ``devices`` that span processes, ``gather=True`` returns every chain on every
    process (on its default device); ``gather=False`` returns the global arrays as computed,
    each process reading its own chains from ``.addressable_shards`` (a shard's ``.index``
    gives its chains)."""
    check_flag(gather, "gather")
    positions, stats, final = _sample_draw_major(
        algorithm,
        rng_key,
        initial_positions,
        num_steps,
        num_warmup=num_warmup,
        thin=thin,
        progress_bar=progress_bar,
        devices=devices,
    )
    positions, stats = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), (positions, stats))
    if gather and spans_processes(positions):
        positions, stats = jax.tree.map(jnp.asarray, gather_to_host((positions, stats)))
    return positions, stats, final


def _sample_draw_major(
    algorithm, rng_key, initial_positions, num_steps, *, num_warmup, thin, progress_bar, devices
):
    """:func:`sample_chains`'s draws as the loop lays them out, ``(draw, chain, ...)``."""
    check_sampling_algorithm(algorithm)
    check_count(num_steps, "num_steps")
    check_count(thin, "thin")
    check_count(num_warmup, "num_warmup", minimum=0)
    if thin > num_steps:
        raise ValueError(f"`thin` ({thin}) must not exceed `num_steps` ({num_steps}).")
    rng_key = check_key(rng_key)
    if isinstance(initial_positions, RunState):
        num_chains = check_chain_axis(initial_positions.states, "initial_positions")
        check_count(initial_positions.step, "RunState.step", minimum=0)
        check_count(initial_positions.num_draws, "RunState.num_draws", minimum=0)
        if devices is None and spans_processes(initial_positions.states):
            raise ValueError(
                "`initial_positions` is a RunState whose chains span processes: pass the "
                "`devices` it ran on."
            )
    else:
        check_position_dtype(initial_positions, "initial_positions")
        check_finite_tree(initial_positions, "initial_positions")
        num_chains = check_chain_axis(initial_positions, "initial_positions")
    mesh = as_mesh(devices, num_chains)
    num_draws = num_steps // thin

    init_args = (algorithm, mesh)
    sample_args = (algorithm, num_warmup, num_draws, thin, progress_bar, mesh)
    try:
        hash(sample_args)
        initialize, sampler = partial(_init, *init_args), partial(_sample, *sample_args)
    except TypeError:  # an unhashable algorithm still runs, compiled afresh per call
        initialize = jax.jit(partial(_init.__wrapped__, *init_args))
        sampler = jax.jit(partial(_sample.__wrapped__, *sample_args))
    if isinstance(initial_positions, RunState):
        states, start = initial_positions.states, initial_positions.step
        kept_before = initial_positions.num_draws
        if mesh is not None:  # a no-op for states already laid out over `devices`
            states = jax.device_put(states, chain_sharding(mesh))
    else:
        if mesh is not None:
            initial_positions = jax.device_put(initial_positions, chain_sharding(mesh))
        try:
            states = initialize(rng_key, initial_positions)
        except (TypeError, ValueError) as err:
            explain_failed_init(err, initial_positions, "initial_positions")
            raise
        start, kept_before = 0, 0
    with ProgressBar(progress_bar, num_warmup + num_draws * thin, num_warmup):
        states, positions, stats = sampler(rng_key, states, jnp.asarray(start, jnp.int32))
    final = RunState(states, start + num_warmup + num_draws * thin, kept_before + num_draws)
    return positions, stats, final


def _chain_keys(rng_key, num_chains):
    return jax.vmap(partial(jax.random.fold_in, rng_key))(jnp.arange(num_chains))


@partial(jax.jit, static_argnums=(0, 1))
def _init(algorithm, mesh, rng_key, initial_positions):
    num_chains = jax.tree.leaves(initial_positions)[0].shape[0]
    chain_keys = _chain_keys(rng_key, num_chains)
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0x7FFFFFFF))(chain_keys)
    return constrain(jax.vmap(algorithm.init)(initial_positions, init_keys), mesh)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _sample(algorithm, num_warmup, num_draws, thin, progress_bar, mesh, rng_key, states, start):
    num_chains = jax.tree.leaves(states)[0].shape[0]
    chain_keys = constrain(_chain_keys(rng_key, num_chains), mesh)
    total = num_warmup + num_draws * thin
    report_every = max(1, total // 100)
    vmapped_step = jax.vmap(algorithm.step)

    def one_step(carry, step_index):
        # carry: the chains' states and, with a progress bar, the divergent steps so far
        states, divergent = carry
        keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, start + step_index)
        states, info = vmapped_step(keys, constrain(states, mesh))
        if progress_bar:
            flags = getattr(info, "is_divergent", None)
            if flags is not None:
                divergent = divergent + jnp.sum(flags, dtype=jnp.int32)
            done, shown = step_index + 1, None if flags is None else divergent
            jax.lax.cond(
                (done % report_every == 0) | (done == total),
                # ordered callbacks are not supported across several devices
                lambda: jax.debug.callback(
                    ProgressBar.update_active, done, shown, ordered=mesh is None
                ),
                lambda: None,
            )
        return (states, divergent), info

    def run_block(carry, block_start):
        if thin == 1:
            carry, info = one_step(carry, block_start)
            infos = jax.tree.map(lambda a: a[None], info)
        else:
            carry, infos = jax.lax.scan(one_step, carry, block_start + jnp.arange(thin))
        return carry, (carry[0].position, _reduce_block(infos))

    carry = (states, jnp.zeros((), jnp.int32) if progress_bar else None)
    if num_warmup:
        carry, _ = jax.lax.scan(one_step, carry, jnp.arange(num_warmup))
    # The kept draws are the scan's outputs, laid out (draw, chain, ...): writing them into
    # (chain, draw, ...) buffers carried through the loop instead cost 1.3x the whole loop
    # for MALA at d = 10 (callers transpose; rs.run as a view in host memory, with no copy).
    (states, _), (positions, infos) = jax.lax.scan(
        run_block, carry, num_warmup + thin * jnp.arange(num_draws)
    )
    return states, *constrain((positions, infos), mesh, chain_axis=1)


def _reduce_block(infos):
    """Summarize a thinning block per chain: scalar fields only; bool -> any, number -> mean."""
    fields = infos._asdict() if hasattr(infos, "_asdict") else {}
    reduced = {}
    for name, value in fields.items():
        if not isinstance(value, jax.Array) or value.ndim != 2:  # (thin, chain) scalars only
            continue
        if value.dtype == jnp.bool_:
            reduced[name] = jnp.any(value, axis=0)
        elif jnp.issubdtype(value.dtype, jnp.inexact):
            reduced[name] = jnp.mean(value, axis=0)
        else:
            reduced[name] = value[-1]
    return reduced


def _to_datatree(
    positions, stats, chains, *, num_warmup, thin, var_names, dims, coords, first_draw
):
    """``chains``: the chains' global indices (``None``: all chains, numbered from 0)."""
    leaves = jax.tree.leaves(positions)
    names = var_names if var_names is not None else _variable_names(positions)
    posterior = {name: np.asarray(leaf) for name, leaf in zip(names, leaves, strict=True)}
    check_labels(None, dims, coords, {n: a.shape[2:] for n, a in posterior.items()}, len(names))
    num_chains, num_draws = leaves[0].shape[:2]
    coords = {**(coords or {}), "draw": np.arange(first_draw, first_draw + num_draws)}
    if chains is not None:
        coords["chain"] = chains
    sample_stats = {}
    for name, value in stats.items():
        sample_stats["diverging" if name == "is_divergent" else name] = np.asarray(value)
    if "diverging" in sample_stats:
        diverging = sample_stats["diverging"]
        count = int(diverging.sum())
        if count:
            divergent_chains = int(diverging.any(axis=1).sum())
            warnings.warn(
                f"{count} of {diverging.size} draws ({divergent_chains} of {num_chains} "
                "chains) were flagged divergent (a non-finite value, or a move the sampler's "
                "step cannot resolve): see sample_stats['diverging']; reduce the step size, "
                "precondition or reparameterize, or check the score.",
                DivergenceWarning,
                stacklevel=3,
            )
    with warnings.catch_warnings():
        # many short chains are normal here (e.g. 1000 chains x 50 draws), not a mislabel
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer")
        tree = arviz_base.from_dict(
            {"posterior": posterior, "sample_stats": sample_stats}, dims=dims, coords=coords
        )
    tree["posterior"].attrs.update(
        {"created_by": "robust_score.run", "num_warmup": num_warmup, "thin": thin}
    )
    return tree


def _variable_names(tree) -> list[str]:
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    if paths == [()]:
        return ["x"]
    names = []
    for path in paths:
        parts = []
        for entry in path:
            if isinstance(entry, DictKey):
                parts.append(str(entry.key))
            elif isinstance(entry, GetAttrKey):
                parts.append(entry.name)
            elif isinstance(entry, SequenceKey):
                parts.append(f"x{entry.idx}")
            else:
                parts.append(str(entry))
        names.append(".".join(parts))
    return names
