"""What every kernel of :mod:`robust_score.numpyro` does the same way at ``init``: set the model
up through NumPyro, batch over chains for ``chain_method="vectorized"``, and refuse bad input
with a message that names the site (the checks themselves live in :mod:`robust_score._checks`)."""

import jax
import jax.numpy as jnp
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import ParamInfo, initialize_model
from numpyro.util import identity, is_prng_key

from robust_score._checks import (
    check_continuous,
    check_finite_tree,
    check_mass_matches_position,
    check_mass_structure,
)
from robust_score.kernels import window_adaptation as windows
from robust_score.kernels.mass import resolve_dense_mass
from robust_score.numpyro.score_prior import score_prior_sites, without_prior_densities
from robust_score.numpyro.transforms import constrains_to_itself, latent, model_sites

__all__ = ["ModelSetup", "ScoreKernelBase", "mass_structure", "phase_switch", "setup_model"]


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

    def _setup_model(
        self, rng_key, init_params, model_args, model_kwargs, forward_mode_differentiation=False
    ):
        """:func:`setup_model` for this kernel; keeps its potential and postprocessing."""
        setup = setup_model(
            type(self).__name__,
            self._model,
            self._init_strategy,
            rng_key,
            init_params,
            model_args,
            model_kwargs,
            forward_mode_differentiation,
        )
        self._potential_fn_gen, self._postprocess_fn = setup.potential_fn_gen, setup.postprocess_fn
        return setup

    def _get_potential_fn(self, model_args, model_kwargs):
        if self._potential_fn_gen is not None:
            return self._potential_fn_gen(*model_args, **(model_kwargs or {}))
        return self._potential_fn


class ModelSetup:
    """The outcome of :func:`setup_model` (a plain record, not traced)."""

    def __init__(
        self, rng_key, init_params, vectorized, potential_fn_gen, postprocess_fn, model, priors
    ):
        self.rng_key = rng_key
        self.init_params = init_params
        self.vectorized = vectorized
        self.potential_fn_gen = potential_fn_gen
        self.postprocess_fn = postprocess_fn
        # the model NumPyro runs: with ScorePrior sites, their densities left out
        self.model = model
        self.priors = priors  # {site: ScorePrior}

    @property
    def prototype(self):
        """One chain's ``init_params`` (for shape checks)."""
        if self.vectorized:
            return jax.tree.map(lambda x: x[0], self.init_params)
        return self.init_params


def setup_model(
    kernel_name: str,
    model,
    init_strategy,
    rng_key,
    init_params,
    model_args,
    model_kwargs,
    forward_mode_differentiation: bool = False,
) -> ModelSetup:
    """Split the key(s), refuse discrete latent sites, and call NumPyro's
    ``initialize_model``. ``rng_key`` is one key, or a batch of keys under
    ``chain_method="vectorized"`` (then everything returned carries a chain axis). A model
    with :class:`~robust_score.numpyro.ScorePrior` sites is set up with their densities left
    out (:func:`~robust_score.numpyro.score_prior.without_prior_densities`): the kernel adds
    their scores."""
    vectorized = not is_prng_key(rng_key)
    if vectorized:
        rng_key, key_model = jnp.swapaxes(jax.vmap(random.split)(rng_key), 0, 1)
    else:
        rng_key, key_model = random.split(rng_key)
    potential_fn_gen = postprocess_fn = None
    priors = {}
    if model is not None:
        # before initialize_model, which would try to enumerate them out
        sites = model_sites(
            model, model_args, model_kwargs, key_model[0] if vectorized else key_model
        )
        check_continuous(latent(sites), kernel_name)
        priors = score_prior_sites(sites)
        if priors:
            model = without_prior_densities(model)
        params_info, potential_fn_gen, postprocess_fn, _ = initialize_model(
            key_model,
            model,
            dynamic_args=True,
            init_strategy=init_strategy,
            model_args=model_args,
            model_kwargs=model_kwargs,
            forward_mode_differentiation=forward_mode_differentiation,
        )
        if init_params is None:
            init_params = params_info.z
        if constrains_to_itself(sites):
            # NumPyro would replay the model at every kept draw (half of a cheap model's
            # sampling time) to return the draws as they are
            postprocess_fn = None
    elif init_params is None:
        raise ValueError("`init_params` must be given to `MCMC.run` with `potential_fn`.")
    if isinstance(init_params, ParamInfo):
        init_params = init_params.z
    if jax.tree.leaves(init_params) or model is None:
        # a model with no latent site runs on an empty position, as under NUTS
        check_finite_tree(init_params, "init_params")
    return ModelSetup(
        rng_key, init_params, vectorized, potential_fn_gen, postprocess_fn, model, priors
    )


def mass_structure(dense_mass, inverse_mass_matrix, z):
    """``dense_mass`` in the form the warm-up core takes: for a model (dict ``z``) NUTS's
    list of dense blocks, for an array position a bool."""
    imm = inverse_mass_matrix
    if isinstance(z, dict):
        check_mass_structure(dense_mass, imm, z)
    elif isinstance(imm, dict) or isinstance(dense_mass, list):
        raise TypeError(
            "a mass in blocks of site names (`dense_mass` as a list, `inverse_mass_matrix` "
            "as a dict) needs a model, whose latent sites name the blocks."
        )
    elif imm is not None:
        check_mass_matches_position(imm, z)
    if isinstance(dense_mass, list):
        return dense_mass
    if isinstance(imm, dict) and dense_mass is None:
        return [sites for sites, block in imm.items() if jnp.ndim(block) == 2]
    size = ravel_pytree(z)[0].size
    dense = resolve_dense_mass(dense_mass, size, None if isinstance(imm, dict) else imm)
    if not isinstance(z, dict):
        return dense
    # NUTS's rule: the sites sorted by name, as ravel_pytree orders them
    return [tuple(sorted(z))] if dense and z else []


def phase_switch(sample_kernel, num_warmup: int, schedule):
    """``sample_kernel`` for a batch of chains (``chain_method="vectorized"``): the chains
    share their iteration count, so the phase is decided once, outside the batch. Under
    ``vmap`` a per-chain ``lax.switch`` runs every branch, which made every sampling step pay
    for the window-end eigendecompositions (20x the wall time at d = 31)."""
    kernel = jax.vmap(sample_kernel, in_axes=(0, None, None, None))

    def sample(state, model_args, model_kwargs):
        return kernel(
            state, model_args, model_kwargs, windows.warmup_phase(schedule, num_warmup, state.i[0])
        )

    return sample
