"""What every kernel of :mod:`robust_score.numpyro` does the same way at ``init``: set the model
up through NumPyro, batch over chains for ``chain_method="vectorized"``, and refuse bad input
with a message that names the site."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import ParamInfo, initialize_model
from numpyro.util import identity, is_prng_key

from robust_score._checks import check_finite_tree, check_score_output
from robust_score.numpyro.transforms import check_continuous, latent_sites

__all__ = [
    "ModelSetup",
    "ScoreKernelBase",
    "setup_model",
    "check_site_fn",
    "check_finite_start",
]


class ScoreKernelBase(MCMCKernel):
    """The MCMCKernel protocol both kernels share: the model, the sample field, the
    postprocessing to constrained sites, pickling and dispatch to the batched or single-chain
    ``_sample_one`` chosen at ``init``. Subclasses set ``_model``, ``_init_strategy``,
    ``_potential_fn`` and ``_sample_fn``; ``_setup_model`` (called by their ``init``) sets
    ``_potential_fn_gen`` and ``_postprocess_fn``."""

    # compiled or closure-holding attributes rebuilt by `init`, dropped when pickling
    _transient = ("_sample_fn",)

    @property
    def model(self):
        return self._model

    @property
    def sample_field(self):
        return "z"

    @property
    def default_fields(self):
        return ("z", "diverging")

    def postprocess_fn(self, model_args, model_kwargs):
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*model_args, **(model_kwargs or {}))

    def sample(self, state, model_args, model_kwargs):
        if self._sample_fn is None:
            raise RuntimeError("`init` must be called before `sample`.")
        return self._sample_fn(state, model_args, model_kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in self._transient:
            state[name] = None
        return state

    def _setup_model(self, rng_key, init_params, model_args, model_kwargs):
        """:func:`setup_model` for this kernel; keeps its potential and postprocessing."""
        setup = setup_model(
            type(self).__name__,
            self._model,
            self._init_strategy,
            rng_key,
            init_params,
            model_args,
            model_kwargs,
        )
        self._potential_fn_gen, self._postprocess_fn = setup.potential_fn_gen, setup.postprocess_fn
        return setup

    def _get_potential_fn(self, model_args, model_kwargs):
        if self._potential_fn_gen is not None:
            return self._potential_fn_gen(*model_args, **(model_kwargs or {}))
        return self._potential_fn


class ModelSetup:
    """The outcome of :func:`setup_model` (a plain record, not traced)."""

    def __init__(self, rng_key, init_params, vectorized, potential_fn_gen, postprocess_fn):
        self.rng_key = rng_key
        self.init_params = init_params
        self.vectorized = vectorized
        self.potential_fn_gen = potential_fn_gen
        self.postprocess_fn = postprocess_fn

    @property
    def prototype(self):
        """One chain's ``init_params`` (for shape checks)."""
        if self.vectorized:
            return jax.tree.map(lambda x: x[0], self.init_params)
        return self.init_params


def check_model_or_potential(model, potential_fn) -> None:
    """The constructors' common rule: exactly one of ``model`` or ``potential_fn``, callable."""
    if not (model is None) ^ (potential_fn is None):
        raise ValueError("Give exactly one of `model` or `potential_fn`.")
    for name, value in (("model", model), ("potential_fn", potential_fn)):
        if value is not None and not callable(value):
            raise TypeError(f"`{name}` must be callable, got {type(value).__name__}.")


def setup_model(
    kernel_name: str, model, init_strategy, rng_key, init_params, model_args, model_kwargs
) -> ModelSetup:
    """Split the key(s), refuse discrete latent sites, and call NumPyro's
    ``initialize_model``. ``rng_key`` is one key, or a batch of keys under
    ``chain_method="vectorized"`` (then everything returned carries a chain axis)."""
    vectorized = not is_prng_key(rng_key)
    if vectorized:
        rng_key, key_model = jnp.swapaxes(jax.vmap(random.split)(rng_key), 0, 1)
    else:
        rng_key, key_model = random.split(rng_key)
    potential_fn_gen = postprocess_fn = None
    if model is not None:
        # before initialize_model, which would try to enumerate them out
        sites = latent_sites(
            model, model_args, model_kwargs, key_model[0] if vectorized else key_model
        )
        check_continuous(sites, kernel_name)
        params_info, potential_fn_gen, postprocess_fn, _ = initialize_model(
            key_model,
            model,
            dynamic_args=True,
            init_strategy=init_strategy,
            model_args=model_args,
            model_kwargs=model_kwargs,
        )
        if init_params is None:
            init_params = params_info.z
    elif init_params is None:
        raise ValueError("`init_params` must be given to `MCMC.run` with `potential_fn`.")
    if isinstance(init_params, ParamInfo):
        init_params = init_params.z
    check_finite_tree(init_params, "init_params")
    return ModelSetup(rng_key, init_params, vectorized, potential_fn_gen, postprocess_fn)


def check_site_fn(fn: Callable, z, name: str, *extra_args) -> None:
    """``fn(z, *extra_args)`` must return a pytree shaped like ``z``; for NumPyro's dict of
    sites the message names the missing, extra or misshapen site."""
    if isinstance(z, dict):
        try:
            out = jax.eval_shape(fn, z, *extra_args)
        except Exception as err:  # name the argument, keep the user's error
            raise TypeError(
                f"`{name}` failed on the unconstrained latent sites {sorted(z)}: "
                f"{type(err).__name__}: {err}"
            ) from err
        if not isinstance(out, dict) or set(out) != set(z):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ValueError(
                f"`{name}` must return a dict keyed by the model's latent sites "
                f"{sorted(z)} (unconstrained values), got {got}."
            )
        for site in sorted(z):
            want, got = jnp.shape(z[site]), out[site].shape
            if got != want:
                raise ValueError(
                    f"`{name}` returned shape {got} at site '{site}'; expected {want}, "
                    "the site's unconstrained shape."
                )
    check_score_output(fn, z, name, *extra_args)


def check_finite_start(potential, score, vectorized: bool) -> None:
    """Refuse a start where the potential or score is non-finite (skipped under tracing,
    e.g. ``chain_method="parallel"``, where nothing is concrete)."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((potential, score))):
        return
    potential = np.atleast_1d(np.asarray(potential))
    bad = np.flatnonzero(~np.isfinite(potential))
    if bad.size:
        where = f" (chains {bad.tolist()})" if vectorized else ""
        raise ValueError(
            f"the potential energy at the initial position is not finite{where}: "
            f"{potential[bad[0]]}. The initial parameters lie outside the model's support "
            "(log density -inf) or the model returns NaN there; pass other `init_params` "
            "or another `init_strategy`."
        )
    bad_sites = [
        _site_name(path)
        for path, leaf in jax.tree_util.tree_flatten_with_path(score)[0]
        if not np.all(np.isfinite(leaf))
    ]
    if bad_sites:
        raise ValueError(
            f"the score at the initial position is not finite at {bad_sites}; check "
            "`score_fn` (or the model's gradient) there."
        )


def _site_name(path) -> str:
    if len(path) == 1 and isinstance(path[0], jax.tree_util.DictKey):
        return str(path[0].key)
    return jax.tree_util.keystr(path) or "the position"
