"""Drive any ``blackjax.SamplingAlgorithm`` over many chains and return an ArviZ DataTree."""

import threading
import warnings
from functools import partial

import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import DictKey, GetAttrKey, SequenceKey

from robust_score._checks import check_finite_tree

__all__ = ["run", "sample_chains", "DivergenceWarning"]


class DivergenceWarning(RuntimeWarning):
    """Some draws of a run were flagged divergent (non-finite position, score or density)."""


def run(
    algorithm,
    rng_key,
    initial_positions,
    num_steps: int,
    *,
    num_warmup: int = 0,
    thin: int = 1,
    progress_bar: bool = False,
):
    """Run ``len(initial_positions)`` chains of ``algorithm`` and return an ``xarray.DataTree``.

    Parameters
    ----------
    algorithm
        Any ``blackjax.SamplingAlgorithm`` (``init(position[, rng_key])``,
        ``step(rng_key, state)``): ``rs.ula``, ``rs.mala``, or BlackJAX's own.
    rng_key
        A JAX PRNG key. Chain ``c`` uses ``fold_in(key, c)``, so its draws do not depend on
        how many chains run beside it; the same key gives bitwise-identical draws.
    initial_positions
        An array or pytree whose leaves share a leading chain axis.
    num_steps
        Steps after warm-up; every ``thin``-th is kept (``num_steps // thin`` draws).
    num_warmup
        Steps run first and discarded (burn-in; no tuning happens here).
    thin
        Keep one step in ``thin``: memory grows with the kept draws only.
    progress_bar
        Show a tqdm bar fed from inside the compiled loop.

    Returns
    -------
    ``xarray.DataTree`` with ``posterior`` (dims ``chain, draw, ...``; an array position is
    the variable ``x``, a dict position one variable per key) and ``sample_stats`` holding
    every scalar ``Info`` field (``is_divergent`` under ArviZ's name ``diverging``; boolean
    fields are OR-ed and numeric ones averaged over each thinning block). Divergent draws
    also raise a :class:`DivergenceWarning` naming how many.

    Calls with the same algorithm object, shapes and settings reuse one compiled program.
    """
    positions, stats = sample_chains(
        algorithm,
        rng_key,
        initial_positions,
        num_steps,
        num_warmup=num_warmup,
        thin=thin,
        progress_bar=progress_bar,
    )
    num_chains = jax.tree.leaves(initial_positions)[0].shape[0]
    return _to_datatree(positions, stats, num_chains, num_warmup=num_warmup, thin=thin)


def sample_chains(
    algorithm,
    rng_key,
    initial_positions,
    num_steps: int,
    *,
    num_warmup: int = 0,
    thin: int = 1,
    progress_bar: bool = False,
):
    """:func:`run` without the DataTree: returns ``(positions, stats)`` as JAX arrays shaped
    ``(chain, draw, ...)``, ``stats`` a dict of the reduced scalar ``Info`` fields. For code
    (diagnostics, benchmarks) that consumes the draws itself."""
    if not (hasattr(algorithm, "init") and hasattr(algorithm, "step")):
        raise TypeError(
            "`algorithm` must be a blackjax.SamplingAlgorithm with `init` and `step`, "
            f"got {type(algorithm).__name__}."
        )
    for name, value, minimum in (("num_steps", num_steps, 1), ("thin", thin, 1)):
        _check_int(value, name, minimum)
    _check_int(num_warmup, "num_warmup", 0)
    if thin > num_steps:
        raise ValueError(f"`thin` ({thin}) must not exceed `num_steps` ({num_steps}).")
    rng_key = _check_key(rng_key)
    _check_positions(initial_positions)
    num_draws = num_steps // thin

    args = (algorithm, num_warmup, num_draws, thin, progress_bar)
    try:
        hash(args)
        sampler = partial(_sample, *args)
    except TypeError:  # an unhashable algorithm still runs, compiled afresh per call
        sampler = jax.jit(partial(_sample.__wrapped__, *args))
    with _ProgressBar(progress_bar, num_warmup + num_draws * thin):
        positions, stats = sampler(rng_key, initial_positions)
    return positions, stats


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _sample(algorithm, num_warmup, num_draws, thin, progress_bar, rng_key, initial_positions):
    num_chains = jax.tree.leaves(initial_positions)[0].shape[0]
    chain_keys = jax.vmap(partial(jax.random.fold_in, rng_key))(jnp.arange(num_chains))
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, -1 & 0x7FFFFFFF))(chain_keys)
    states = jax.vmap(algorithm.init)(initial_positions, init_keys)
    total = num_warmup + num_draws * thin
    report_every = max(1, total // 100)
    vmapped_step = jax.vmap(algorithm.step)

    def one_step(states, step_index):
        keys = jax.vmap(jax.random.fold_in, (0, None))(chain_keys, step_index)
        states, info = vmapped_step(keys, states)
        if progress_bar:
            done = step_index + 1
            jax.lax.cond(
                (done % report_every == 0) | (done == total),
                lambda: jax.debug.callback(_ProgressBar.update_active, done, ordered=True),
                lambda: None,
            )
        return states, info

    def keep_one_draw(states, block_start):
        states, infos = jax.lax.scan(one_step, states, block_start + jnp.arange(thin))
        return states, (states.position, _reduce_block(infos))

    if num_warmup:
        states, _ = jax.lax.scan(one_step, states, jnp.arange(num_warmup))
    block_starts = num_warmup + thin * jnp.arange(num_draws)
    _, (positions, infos) = jax.lax.scan(keep_one_draw, states, block_starts)
    # scan stacks draws first; ArviZ wants (chain, draw, ...)
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), (positions, infos))


def _reduce_block(infos):
    """Summarise a thinning block per chain: scalar fields only; bool -> any, number -> mean."""
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


def _to_datatree(positions, stats, num_chains, *, num_warmup, thin):
    posterior = {
        name: np.asarray(leaf)
        for name, leaf in zip(_variable_names(positions), jax.tree.leaves(positions), strict=True)
    }
    sample_stats = {}
    for name, value in stats.items():
        sample_stats["diverging" if name == "is_divergent" else name] = np.asarray(value)
    if "diverging" in sample_stats:
        diverging = sample_stats["diverging"]
        count = int(diverging.sum())
        if count:
            chains = int(diverging.any(axis=1).sum())
            warnings.warn(
                f"{count} of {diverging.size} draws ({chains} of {num_chains} chains) were "
                "flagged divergent (non-finite position or score): see "
                "sample_stats['diverging']; reduce the step size or check the score.",
                DivergenceWarning,
                stacklevel=3,
            )
    with warnings.catch_warnings():
        # many short chains are normal here (e.g. 1000 chains x 50 draws), not a mislabel
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer")
        tree = arviz_base.from_dict({"posterior": posterior, "sample_stats": sample_stats})
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


def _check_int(value, name, minimum):
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def _check_key(rng_key):
    key = jnp.asarray(rng_key) if not isinstance(rng_key, jax.Array) else rng_key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"`rng_key` must be a single key, got shape {key.shape}.")
        return key
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise ValueError(
            "`rng_key` must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), "
            f"got an array of shape {key.shape} and dtype {key.dtype}."
        )
    return key


def _check_positions(initial_positions) -> int:
    check_finite_tree(initial_positions, "initial_positions")
    shapes = [jnp.shape(leaf) for leaf in jax.tree.leaves(initial_positions)]
    if any(len(shape) == 0 for shape in shapes):
        raise ValueError(
            "`initial_positions` must have a leading chain axis (shape (num_chains, ...)); "
            "got a scalar leaf. For one chain, add an axis: positions[None]."
        )
    counts = {shape[0] for shape in shapes}
    if len(counts) != 1:
        raise ValueError(
            "every leaf of `initial_positions` must share the leading chain axis, got "
            f"leading sizes {sorted(counts)}."
        )
    (num_chains,) = counts
    if num_chains < 1:
        raise ValueError("`initial_positions` has zero chains.")
    return num_chains


class _ProgressBar:
    """A tqdm bar the compiled loop reports into through ``jax.debug.callback``.

    The compiled program is cached and reused, so it cannot close over one bar: it calls
    :meth:`update_active`, which feeds whichever bar is open now.
    """

    _active = None
    _lock = threading.Lock()

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc="sampling", unit="step")
            with _ProgressBar._lock:
                _ProgressBar._active = self.bar
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            with _ProgressBar._lock:
                _ProgressBar._active = None
            self.bar.close()
        return False

    @staticmethod
    def update_active(done):
        bar = _ProgressBar._active
        if bar is not None:
            bar.update(int(done) - bar.n)
