"""Read draws out of what users have: a DataTree from ``rs.run`` / ``az.from_numpyro``, a
NumPyro ``MCMC``, or plain arrays.

A NumPyro run is read in the model's unconstrained latent space, the space its kernel moves
in: the latent sample sites only (no deterministic or observed site), each mapped by
``biject_to(site.support).inv`` (:func:`numpyro_datatree`)."""

import warnings
from typing import NamedTuple

import numpyro  # isort: skip  # noqa: F401  (before ArviZ: see robust_score/__init__.py)
import arviz_base
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

__all__ = [
    "UNCONSTRAINED",
    "Draws",
    "parse_draws",
    "as_datatree",
    "as_sample_matrix",
    "is_numpyro_mcmc",
    "numpyro_datatree",
    "posterior_draws",
]

#: ``posterior.attrs["space"]`` of a tree read from a NumPyro run by :func:`numpyro_datatree`:
#: its variables are the model's latent sites in unconstrained space, positions are dicts.
UNCONSTRAINED = "unconstrained latent"


class Draws(NamedTuple):
    """The user's draws, parsed once: ``flat`` is ``(chain, draw, dim)`` (independent draws:
    ``(n, 1, dim)``, ``n`` chains of one draw each, with ``independent`` set), with the way
    back to positions."""

    flat: np.ndarray
    unravel: callable  # flat (dim,) vector -> position pytree, as the sampler/score take it
    var_names: tuple[str, ...]
    slices: dict  # variable name -> its slice of the flat vector
    tree: xr.DataTree | None = None  # the posterior the draws came from (None: arrays)
    thin: int = 1  # steps between kept draws in the user's run
    independent: bool = False  # draws from a sampler of independent draws, not chains

    @property
    def num_chains(self) -> int:
        return self.flat.shape[0]

    @property
    def dim(self) -> int:
        return self.flat.shape[-1]

    @property
    def kept(self) -> np.ndarray:
        """``(chain, draw, dim)`` the checks judge: each chain's second half (the first is
        burn-in), or every draw when they are independent."""
        return self.flat if self.independent else self.flat[:, self.flat.shape[1] // 2 :]

    @property
    def points(self) -> np.ndarray:
        """:attr:`kept` with the chains pooled, ``(n, dim)``."""
        return self.kept.reshape(-1, self.dim)


def parse_draws(data) -> Draws:
    """The one parser of what users have: a DataTree with a ``posterior`` group (``rs.run``,
    ``az.from_numpyro``), a NumPyro ``MCMC`` (read in its unconstrained latent space), or
    independent draws, an array ``(n, ...)`` or a pytree of arrays with one leading axis
    (``rs.sample_batch``'s output: each row one draw, nothing dropped as burn-in)."""
    if isinstance(data, xr.DataTree) or is_numpyro_mcmc(data):
        return posterior_draws(as_datatree(data))
    leaves = jax.tree.leaves(data)
    if not leaves or not all(hasattr(leaf, "shape") and np.ndim(leaf) >= 1 for leaf in leaves):
        raise TypeError(
            "`data` must be an xarray.DataTree (from rs.run or az.from_numpyro), a "
            "numpyro.infer.MCMC, or independent draws: an array shaped (num_draws, ...) or a "
            f"pytree of such arrays (rs.sample_batch's output), got {type(data).__name__}."
        )
    sizes = {np.shape(leaf)[0] for leaf in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            "independent draws in `data` need one leading axis (num_draws, ...) shared by "
            f"every leaf, with at least one draw; got leading sizes {sorted(sizes)}."
        )
    template = jax.tree.map(lambda leaf: jnp.asarray(leaf[0]), data)
    flat_template, unravel = ravel_pytree(template)
    flat = jax.vmap(lambda position: ravel_pytree(position)[0])(data)
    names = ("x",) if not isinstance(data, dict) else tuple(sorted(data))
    slices, offset = {}, 0
    for name in names:
        size = int(np.size(template[name])) if isinstance(data, dict) else flat_template.size
        slices[name] = slice(offset, offset + size)
        offset += size
    return Draws(np.asarray(flat, np.float64)[:, None, :], unravel, names, slices, independent=True)


def as_datatree(data) -> xr.DataTree:
    """A DataTree with a ``posterior`` group, from a DataTree or a NumPyro ``MCMC`` (read in
    its unconstrained latent space by :func:`numpyro_datatree`)."""
    if is_numpyro_mcmc(data):
        return numpyro_datatree(data)
    if not isinstance(data, xr.DataTree):
        raise TypeError(
            "`data` must be an xarray.DataTree (from rs.run or az.from_numpyro) or a "
            f"numpyro.infer.MCMC, got {type(data).__name__}."
        )
    if "posterior" not in data.children:
        raise ValueError(
            "`data` has no `posterior` group: expected the output of rs.run or "
            f"az.from_numpyro; it has groups {sorted(data.children)}."
        )
    return data


def posterior_draws(tree: xr.DataTree) -> Draws:
    """Flatten every posterior variable per draw; a lone ``x`` stays an array position (as
    ``rs.run`` made it), several variables become a dict position (as NumPyro sites)."""
    posterior = tree["posterior"].to_dataset()
    names = tuple(str(name) for name in posterior.data_vars)
    if not names:
        raise ValueError("`data.posterior` holds no variables.")
    for name in names:
        if posterior[name].dims[:2] != ("chain", "draw"):
            raise ValueError(
                f"posterior variable `{name}` must have leading dims (chain, draw), "
                f"got {posterior[name].dims}."
            )
    arrays = {name: np.asarray(posterior[name].values) for name in names}
    num_chains, num_draws = arrays[names[0]].shape[:2]
    # NumPyro's latent sites are a dict even when the only one is called x
    array_position = names == ("x",) and posterior.attrs.get("space") != UNCONSTRAINED
    ordered = ("x",) if array_position else tuple(sorted(names))
    slices, offset = {}, 0
    for name in ordered:
        size = int(np.prod(arrays[name].shape[2:], dtype=int))
        slices[name] = slice(offset, offset + size)
        offset += size
    if array_position:
        template = jnp.asarray(arrays["x"][0, 0])
        flat = arrays["x"].reshape(num_chains, num_draws, -1)
    else:
        template = {name: jnp.asarray(arrays[name][0, 0]) for name in names}
        # ravel_pytree orders dict leaves by sorted key: flatten the same way
        flat = np.concatenate(
            [arrays[name].reshape(num_chains, num_draws, -1) for name in sorted(names)], axis=-1
        )
    _, unravel = ravel_pytree(template)
    thin = int(posterior.attrs.get("thin", 1))
    return Draws(flat.astype(np.float64), unravel, names, slices, tree, thin)


def as_sample_matrix(samples, name: str) -> np.ndarray:
    """``samples`` as ``(n, dim)``, read by :func:`parse_draws`: a DataTree's posterior or an
    MCMC's draws (every draw, chains pooled), or independent draws (an array ``(n, ...)``,
    or a pytree of them)."""
    try:
        draws = parse_draws(samples)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"`{name}` must be draws: an array shaped (num_points, ...) with at least one "
            f"point, a pytree of such arrays, or a DataTree with a posterior ({err})"
        ) from err
    return draws.flat.reshape(-1, draws.dim)


def is_numpyro_mcmc(data) -> bool:
    """Whether ``data`` is a ``numpyro.infer.MCMC`` (by its protocol: no import needed)."""
    return hasattr(data, "get_samples") and hasattr(data, "sampler") and hasattr(data, "run")


def numpyro_datatree(
    data, model=None, model_args=None, model_kwargs=None, *, num_warmup=None
) -> xr.DataTree:
    """A NumPyro run's latent sites in unconstrained space, as a DataTree's ``posterior``.

    ``data``: a NumPyro ``MCMC`` after ``run`` (its kernel's model and the arguments it ran
    with are used unless ``model`` / ``model_args`` / ``model_kwargs`` are given), or a tree
    from ``az.from_numpyro`` (then ``model`` is required, and ``model_args`` /
    ``model_kwargs`` when the model takes arguments). Deterministic and observed sites are
    dropped; each latent site is mapped to unconstrained space with the model's transforms
    (``numpyro.infer.util.unconstrain_fn``, which replays the model per draw so a support
    that depends on another site is handled). A kernel built from a ``potential_fn`` already
    samples in its own space: its draws are kept as they are. A tree that already holds
    unconstrained latent draws is returned unchanged. The posterior's attrs record
    ``space`` (:data:`UNCONSTRAINED`), ``thin`` and ``num_warmup``.
    """
    if isinstance(data, xr.DataTree) and _is_unconstrained(data):
        return data
    thin = 1
    if is_numpyro_mcmc(data):
        model = data.sampler.model if model is None else model
        model_args = getattr(data, "_args", ()) if model_args is None else model_args
        model_kwargs = getattr(data, "_kwargs", {}) if model_kwargs is None else model_kwargs
        num_warmup = data.num_warmup if num_warmup is None else num_warmup
        thin = data.thinning
        try:
            samples = data.get_samples(group_by_chain=True)
        except AssertionError as err:  # NumPyro's own "`run` must be called ..."
            raise ValueError("`data` is a numpyro MCMC that has not been run yet.") from err
    elif isinstance(data, xr.DataTree):
        as_datatree(data)  # the same checks and messages as any tree
        if model is None:
            raise TypeError(
                "reading an az.from_numpyro tree in unconstrained space needs the NumPyro "
                "model: pass the run's kernel (`sampler=mcmc.sampler`) or the MCMC itself."
            )
        posterior = data["posterior"].to_dataset()
        samples = {str(name): np.asarray(posterior[name].values) for name in posterior.data_vars}
        thin = int(posterior.attrs.get("thin", 1))
    else:
        raise TypeError(
            "`data` must be a numpyro MCMC or an xarray.DataTree from az.from_numpyro, got "
            f"{type(data).__name__}."
        )
    model_args = () if model_args is None else tuple(model_args)
    model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
    if model is None:  # a potential_fn kernel: its draws are its positions
        if isinstance(samples, dict):
            posterior = {name: np.asarray(value) for name, value in samples.items()}
        else:
            posterior = {"x": np.asarray(samples)}
    else:
        posterior = _unconstrained_latents(samples, model, model_args, model_kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer")
        tree = arviz_base.from_dict({"posterior": posterior})
    tree["posterior"].attrs.update(
        {
            "space": UNCONSTRAINED,
            "created_by": "robust_score.diagnostics from a NumPyro run",
            "thin": thin,
            "num_warmup": -1 if num_warmup is None else int(num_warmup),
        }
    )
    if model is None and not isinstance(samples, dict):
        tree["posterior"].attrs["space"] = "potential_fn positions"
    return tree


def _is_unconstrained(tree: xr.DataTree) -> bool:
    return "posterior" in tree.children and tree["posterior"].attrs.get("space") in (
        UNCONSTRAINED,
        "potential_fn positions",
    )


def _unconstrained_latents(samples: dict, model, model_args, model_kwargs) -> dict:
    """``{site: (chain, draw, *unconstrained shape)}`` for the model's continuous latent
    sites, from constrained ``samples`` (which may hold other sites too)."""
    from numpyro.infer.util import unconstrain_fn

    from robust_score.numpyro.transforms import latent_sites

    try:
        sites = latent_sites(model, model_args, model_kwargs)
    except Exception as err:  # name what is missing rather than the model's own error
        raise TypeError(
            "could not run the NumPyro model to find its latent sites "
            f"({type(err).__name__}: {err}); pass the arguments it was run with as "
            "`model_args=` (a tuple) and `model_kwargs=` (a dict)."
        ) from err
    names = sorted(name for name, site in sites.items() if not site["fn"].support.is_discrete)
    missing = [name for name in names if name not in samples]
    if missing:
        raise ValueError(
            f"the posterior lacks the model's latent site(s) {missing} (it has "
            f"{sorted(samples)}): expected the draws of this model's run, e.g. "
            "az.from_numpyro(mcmc) of it."
        )
    if not names:
        raise ValueError("the NumPyro model has no continuous latent sample site.")
    values = {name: jnp.asarray(samples[name]) for name in names}
    chains, draws = values[names[0]].shape[:2]
    for name in names:
        if values[name].shape[:2] != (chains, draws):
            raise ValueError(
                f"latent site `{name}` has leading shape {values[name].shape[:2]}; "
                f"expected (chain, draw) = {(chains, draws)} like `{names[0]}`."
            )
    flat = {name: value.reshape(chains * draws, *value.shape[2:]) for name, value in values.items()}
    unconstrained = jax.vmap(lambda p: unconstrain_fn(model, model_args, model_kwargs, p))(flat)
    return {
        name: np.asarray(value).reshape(chains, draws, *value.shape[1:])
        for name, value in unconstrained.items()
    }
