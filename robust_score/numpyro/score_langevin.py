"""``ScoreLangevin``: ULA / MALA as a NumPyro ``MCMCKernel``, driven by the model's score or
a user's (learned, approximate) score.

Laid out as ``numpyro.infer.hmc``: :func:`score_langevin` is the functional core, returning
``init_kernel`` and ``sample_kernel``; the class is a thin shell that sets the model up and
speaks the ``MCMCKernel`` protocol. The moves are the kernels of :mod:`robust_score.kernels`
(MALA's, and ULA's shadow-ratio move), the step size and Stan's windows are NumPyro's own
(:func:`~numpyro.infer.hmc_util.warmup_adapter`; with the identity mass and nothing but the
step to tune, one :func:`~numpyro.infer.hmc_util.dual_averaging` run), the mass matrix comes
from NumPyro's Welford moments of the draws and their scores
(:func:`~robust_score.kernels.adaptation.score_matched_mass`), the model plumbing is
:func:`~numpyro.infer.util.initialize_model`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import (
    _initialize_mass_matrix,
    build_adaptation_schedule,
    dual_averaging,
    warmup_adapter,
    welford_covariance,
)
from numpyro.infer.initialization import init_to_uniform

from robust_score._checks import (
    check_callable,
    check_finite_start,
    check_flag,
    check_fraction,
    check_inverse_mass_matrix,
    check_mass_matches_position,
    check_model_or_potential,
    check_positive_scalar,
    check_site_fn,
)
from robust_score.kernels import mala, ula
from robust_score.kernels.adaptation import resolve_dense_mass, score_matched_mass
from robust_score.kernels.integrators import DenseMass
from robust_score.numpyro._common import ScoreKernelBase

__all__ = [
    "LangevinAdaptState",
    "ScoreLangevin",
    "ScoreLangevinState",
    "score_langevin",
]


class LangevinAdaptState(NamedTuple):
    """Step-size adaptation state when there is no mass matrix (the identity, not adapted):
    the step size for the next move and NumPyro's
    :func:`~numpyro.infer.hmc_util.dual_averaging` state ``(x_t, x_avg, g_avg, t, prox_center)``
    over ``log(step_size)``. With a mass the adaptation state is NumPyro's
    :class:`~numpyro.infer.hmc_util.HMCAdaptState`, as for NUTS."""

    step_size: jax.Array
    dual_averaging_state: tuple


class ScoreLangevinState(NamedTuple):
    """State of :class:`ScoreLangevin` (one chain; every field gains a leading chain axis
    under ``chain_method="vectorized"``).

    - **i**: iteration, counted across warm-up and sampling (adaptation stops at
      ``i == num_warmup``).
    - **z**: unconstrained values at the latent sites.
    - **potential_energy**: ``-log p(z)`` (unnormalized, unconstrained space).
    - **score**: the drift at ``z``: ``score_fn(z)`` if given, else ``-grad potential(z)``.
      (NumPyro's HMC carries ``z_grad = grad potential``; this is its negative, or the
      user's replacement for it.)
    - **accept_prob**: MALA acceptance probability of the last move. For ULA the move is
      always taken and this is what MALA's would have been (a measure of ULA's bias).
    - **mean_accept_prob**: its running mean over the current phase (warm-up or sampling).
    - **diverging**: the last move diverged. For MALA: its MH log ratio was below -1000
      (NumPyro HMC's ``max_delta_energy``; the move is then rejected but for a chance below
      e^-1000) or not finite (rejected). For ULA: a non-finite position, score or potential
      or, with the model's own score, a MALA log ratio below -1000 (the move is not taken),
      or a drift that changed across the move by more than the move
      (:func:`~robust_score.kernels.ula.move_stiffness` above 1; the move is taken).
    - **num_diverging**: divergences so far in the current phase.
    - **step_size**: the step size the last move used.
    - **adapt_state**: NumPyro's ``HMCAdaptState`` when there is a mass matrix
      (``adapt_state.step_size`` and ``adapt_state.inverse_mass_matrix`` are those of the
      next move), else :class:`LangevinAdaptState`.
    - **rng_key**: the chain's PRNG key.
    """

    i: jax.Array
    z: Any
    potential_energy: jax.Array
    score: Any
    accept_prob: jax.Array
    mean_accept_prob: jax.Array
    diverging: jax.Array
    num_diverging: jax.Array
    step_size: jax.Array
    adapt_state: LangevinAdaptState
    rng_key: jax.Array


# NumPyro's HMC calls a transition divergent when its energy error exceeds 1000
MAX_LOG_RATIO_DROP = 1000.0
# ULA's warm-up target: the largest bias of any unconstrained mean of the non-centred eight
# schools, in NUTS posterior sds, pooled over 4 runs of 4 chains x (1000 + 2000) steps
# (Monte-Carlo error 0.03-0.05; benchmarks/hard_geometry.py) was 0.28 at 0.8, 0.13 at 0.9,
# 0.09 at 0.95 and 0.07 at 0.97, always in log τ. 0.95 keeps it under 0.2 with a margin for
# a run whose chains stray further into the τ tail.
ULA_TARGET_ACCEPT_PROB = 0.95


def score_langevin(
    potential_fn: Callable | None = None,
    potential_fn_gen: Callable | None = None,
    *,
    score_fn: Callable | None = None,
    adjust: bool = False,
    adapt_step_size: bool = True,
    target_accept_prob: float = 0.574,
    adapt_mass_matrix: bool = False,
    dense_mass: bool = False,
    inverse_mass_matrix=None,
):
    """The functional core of :class:`ScoreLangevin` for one chain, as NumPyro's ``hmc``:
    returns ``(init_kernel, sample_kernel)`` with

    - ``init_kernel(rng_key, init_params, num_warmup, step_size, model_args=(),
      model_kwargs=None) -> ScoreLangevinState``;
    - ``sample_kernel(state, model_args=(), model_kwargs=None) -> ScoreLangevinState``.

    Give ``potential_fn`` (``z -> -log p(z)``) or ``potential_fn_gen``
    (``(*model_args, **model_kwargs) -> potential_fn``, from ``initialize_model``). The move
    is :func:`robust_score.kernels.mala.build_kernel` (``adjust=True``) or
    :func:`robust_score.kernels.ula.build_shadow_kernel` (``adjust=False``; with the model's
    own score a MALA log ratio below ``-MAX_LOG_RATIO_DROP`` counts as divergent, with a
    user's score only non-finite moves do, as the ratio then also measures the score's
    disagreement with the model).

    With ``adapt_mass_matrix`` or an ``inverse_mass_matrix`` (over the raveled ``z``) the
    moves are preconditioned and the warm-up is NumPyro's
    :func:`~numpyro.infer.hmc_util.warmup_adapter` (``dense_mass`` chooses the form adapted);
    otherwise the mass is the identity and :func:`step_size_adaptation` tunes the step.
    """
    with_mass = adapt_mass_matrix or inverse_mass_matrix is not None
    if adjust:
        move = mala.build_kernel()
    else:
        move = ula.build_shadow_kernel(MAX_LOG_RATIO_DROP if score_fn is None else jnp.inf)
    num_warmup = adapt_update = None

    def logdensity_fn(model_args, model_kwargs):
        potential = potential_fn
        if potential_fn_gen is not None:
            potential = potential_fn_gen(*model_args, **(model_kwargs or {}))
        return lambda z: -potential(z)

    def init_kernel(rng_key, init_params, num_warmup_, step_size, model_args=(), model_kwargs=None):
        nonlocal num_warmup, adapt_update
        num_warmup = num_warmup_
        if with_mass:
            adapt_init, adapt_update = mass_and_step_size_adaptation(
                num_warmup,
                init_params,
                adapt_step_size,
                adapt_mass_matrix,
                dense_mass,
                target_accept_prob,
                inverse_mass_matrix,
            )
        else:
            adapt_init, adapt_update = step_size_adaptation(num_warmup, target_accept_prob)
        logdensity = logdensity_fn(model_args, model_kwargs)
        value, score = mala.logdensity_and_drift(logdensity, score_fn)(init_params)
        return _initial_state(rng_key, init_params, -value, score, step_size, adapt_init)

    def sample_kernel(state, model_args=(), model_kwargs=None, phase=None):
        """One move. ``phase``: ``None`` decides from ``state.i`` whether to adapt (and
        whether a window ends); ``"sample"``, ``"warmup"`` or ``"window_end"`` fix it, and so
        does an integer array (0, 1, 2 in that order), for a caller that decides once for a
        batch of chains (which move in step): only that phase's adaptation then runs."""
        rng_key, key_move = random.split(state.rng_key)
        step_size = state.adapt_state.step_size
        current = mala.MALAState(state.z, -state.potential_energy, state.score)
        logdensity = logdensity_fn(model_args, model_kwargs)
        mass = _mass(state.adapt_state, dense_mass) if with_mass else None
        new, info = move(key_move, current, logdensity, step_size, score_fn, mass)
        adapt_state = state.adapt_state
        adapts = (adapt_step_size or adapt_mass_matrix) if with_mass else adapt_step_size
        if adapts and num_warmup > 0 and not (isinstance(phase, str) and phase == "sample"):

            def update(window_end=None):
                return adapt_update(
                    state.i, info.acceptance_rate, new.position, new.score, adapt_state, window_end
                )

            if phase is None:
                # a few scalar flops for the step size; under vmap both branches run
                adapt_state = jax.lax.cond(state.i < num_warmup, update, lambda: adapt_state)
            elif isinstance(phase, str):
                adapt_state = update(phase == "window_end")
            else:
                # the move above is compiled once; the switch picks the adaptation alone
                branches = [lambda: adapt_state, lambda: update(False), lambda: update(True)]
                adapt_state = jax.lax.switch(phase, branches)
        return _next_state(state, new, info, step_size, adapt_state, num_warmup, rng_key)

    return init_kernel, sample_kernel


def _mass(adapt_state, dense_mass: bool):
    """The mass as the move takes it. Dense: NumPyro's factors, computed once per mass when
    the adaptation sets it (``mass_matrix_sqrt_inv`` is ``Uᵀ`` with ``U Uᵀ = M⁻¹``,
    ``mass_matrix_sqrt`` its inverse, ``U⁻ᵀ``), not a factorization at every move."""
    if not dense_mass:
        return adapt_state.inverse_mass_matrix
    return DenseMass(
        adapt_state.inverse_mass_matrix,
        lower=adapt_state.mass_matrix_sqrt_inv.T,
        inverse_lower_t=adapt_state.mass_matrix_sqrt,
    )


def _initial_state(rng_key, z, potential, score, step_size, adapt_init) -> ScoreLangevinState:
    dtype = jnp.result_type(*jax.tree.leaves(z))
    step_size = jnp.asarray(step_size, dtype)
    zero = jnp.zeros((), dtype)
    return ScoreLangevinState(
        i=jnp.array(0),
        z=z,
        potential_energy=potential,
        score=score,
        accept_prob=zero,
        mean_accept_prob=zero,
        diverging=jnp.array(False),
        num_diverging=jnp.array(0),
        step_size=step_size,
        adapt_state=adapt_init(step_size),
        rng_key=rng_key,
    )


def _next_state(state, new, info, step_size, adapt_state, num_warmup, rng_key):
    """The state after a move to ``new`` (a MALA state) with ``info``; the running acceptance
    mean and divergence count restart when sampling starts."""
    itr = state.i + 1
    n = jnp.where(state.i < num_warmup, itr, itr - num_warmup)
    accept_prob = info.acceptance_rate
    mean_accept_prob = state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / n
    num_diverging = jnp.where(state.i == num_warmup, 0, state.num_diverging)
    return ScoreLangevinState(
        i=itr,
        z=new.position,
        potential_energy=-new.logdensity,
        score=new.score,
        accept_prob=accept_prob,
        mean_accept_prob=mean_accept_prob,
        diverging=info.is_divergent,
        num_diverging=num_diverging + info.is_divergent,
        step_size=step_size,
        adapt_state=adapt_state,
        rng_key=rng_key,
    )


def step_size_adaptation(num_warmup: int, target_accept_prob: float):
    """``(init, update)`` of the step size by NumPyro's dual averaging — the step-size half of
    :func:`~numpyro.infer.hmc_util.warmup_adapter`. There is no mass matrix to adapt, so
    there are no windows and no restarts: one dual-averaging run over the whole warm-up,
    ending on its averaged iterate."""
    da_init, da_update = dual_averaging()

    def init(step_size):
        # Stan's and NumPyro's prox center, log(10 h0)
        return LangevinAdaptState(step_size, da_init(jnp.log(10.0) + jnp.log(step_size)))

    def update(i, accept_prob, z, score, adapt_state, window_end=None):
        del z, score, window_end  # no mass to estimate
        da_state = da_update(target_accept_prob - accept_prob, adapt_state.dual_averaging_state)
        log_step_size, log_step_size_avg, *_ = da_state
        log_step_size = jnp.where(i == num_warmup - 1, log_step_size_avg, log_step_size)
        dtype = jnp.result_type(adapt_state.step_size)
        finfo = jnp.finfo(dtype)
        step_size = jnp.clip(jnp.exp(log_step_size), finfo.tiny, finfo.max).astype(dtype)
        return LangevinAdaptState(step_size, da_state)

    return init, update


def mass_and_step_size_adaptation(
    num_warmup: int,
    z,
    adapt_step_size: bool,
    adapt_mass_matrix: bool,
    dense_mass: bool,
    target_accept_prob: float,
    inverse_mass_matrix=None,
):
    """``(init, update)`` of the step size and mass matrix. The step size, the windows and
    the restarts are NumPyro's :func:`~numpyro.infer.hmc_util.warmup_adapter`, as for NUTS
    and BarkerMH (dual averaging, restarted at the end of each of Stan's slow windows). The
    mass matrix at each slow window's end is
    :func:`~robust_score.kernels.adaptation.score_matched_mass` of NumPyro's Welford
    estimates (:func:`~numpyro.infer.hmc_util.welford_covariance`) of the covariance of the
    window's draws ``z`` and of the scores at them, not the draws' covariance alone, from
    which a Langevin chain's warm-up does not recover. The state is NumPyro's
    ``HMCAdaptState``, its ``mm_state`` the pair of Welford states; its
    ``inverse_mass_matrix`` preconditions the moves.
    """
    # warmup_adapter tunes the step and keeps the windows; the mass is ours (below)
    wa_init, wa_update = warmup_adapter(
        num_warmup,
        adapt_step_size=adapt_step_size,
        adapt_mass_matrix=False,
        dense_mass=dense_mass,
        target_accept_prob=target_accept_prob,
    )
    moments_init, moments_update, _ = welford_covariance(diagonal=not dense_mass)
    size = ravel_pytree(z)[0].size
    num_windows = len(build_adaptation_schedule(num_warmup))

    def init(step_size):
        # the key only serves a step-size search, which a Langevin warm-up does not run
        state = wa_init(
            (z,),
            random.key(0),
            step_size,
            inverse_mass_matrix=inverse_mass_matrix,
            mass_matrix_size=size,
        )
        return state._replace(rng_key=None, mm_state=(moments_init(size), moments_init(size)))

    def covariance(moments):
        _, m2, n = moments
        return m2 / (n - 1)

    def new_mass(z, state):
        z_moments, score_moments = state.mm_state
        imm = score_matched_mass(
            covariance(z_moments),
            covariance(score_moments),
            z_moments[2],
            state.inverse_mass_matrix if dense_mass else None,
        )
        imm, sqrt, sqrt_inv = _initialize_mass_matrix(z, imm, dense_mass)
        return state._replace(
            inverse_mass_matrix=imm,
            mass_matrix_sqrt=sqrt,
            mass_matrix_sqrt_inv=sqrt_inv,
            mm_state=(moments_init(size), moments_init(size)),
        )

    def update(i, accept_prob, z, score, adapt_state, window_end=None):
        """``window_end``: ``None`` tells from the state whether a slow window ends at ``i``;
        a bool says it (the caller knows: :func:`mass_update_steps`)."""
        new_state = wa_update(i, accept_prob, (z,), adapt_state)
        if not adapt_mass_matrix:
            return new_state
        window = adapt_state.window_idx
        is_slow = (0 < window) & (window < num_windows - 1)
        z_moments, score_moments = new_state.mm_state
        moments = (moments_update(z, z_moments), moments_update(score, score_moments))
        moments = jax.tree.map(
            lambda new, old: jnp.where(is_slow, new, old), moments, new_state.mm_state
        )
        new_state = new_state._replace(mm_state=moments)
        if window_end is None:
            window_end = is_slow & (new_state.window_idx != window)
            return jax.lax.cond(window_end, lambda s: new_mass(z, s), lambda s: s, new_state)
        return new_mass(z, new_state) if window_end else new_state

    return init, update


def mass_update_steps(num_warmup: int) -> list[int]:
    """The warm-up iterations at which a slow window ends and the mass is re-estimated."""
    return [end for _, end in build_adaptation_schedule(num_warmup)[1:-1]]


def phase_switch(sample_kernel, num_warmup: int):
    """``sample_kernel`` for a batch of chains (``chain_method="vectorized"``): the chains
    share their iteration count, so whether to adapt and whether a window ends is decided
    once, outside the batch, and each iteration runs only the adaptation of its phase. Under
    ``vmap`` a per-chain ``lax.cond`` runs both branches, which made every sampling step
    pay for the window-end eigendecompositions (20x the wall time at d = 31). The phase is
    an unbatched index into a ``lax.switch`` over the adaptation only, so the move (the
    model's gradient) is compiled once, not once per phase."""
    kernel = jax.vmap(sample_kernel, in_axes=(0, None, None, None))
    ends = (
        jnp.zeros(max(num_warmup, 1), bool)
        .at[jnp.asarray(mass_update_steps(num_warmup), int)]
        .set(True)
    )

    def sample(state, model_args, model_kwargs):
        i = state.i[0]
        at_end = ends[jnp.clip(i, 0, ends.size - 1)]
        index = jnp.where(i >= num_warmup, 0, jnp.where(at_end, 2, 1))
        return kernel(state, model_args, model_kwargs, index)

    return sample


class ScoreLangevin(ScoreKernelBase):
    """Langevin dynamics as a NumPyro kernel: unadjusted (ULA) or Metropolis-adjusted (MALA),
    driven by the model's score or by a score you supply.

    .. code::

        mcmc = MCMC(rs.numpyro.ScoreLangevin(model, adjust=True), num_warmup=1000,
                    num_samples=1000, num_chains=4)
        mcmc.run(jax.random.key(0), *model_args)

    Every move is ``z' = z + h M⁻¹ s(z) + sqrt(2h) M^{-1/2} xi`` in NumPyro's unconstrained
    space, with ``s = score_fn`` if given, else the exact ``grad log p`` of the model, and
    ``M⁻¹`` the inverse mass matrix over the raveled latent sites (dict keys sorted).

    - ``adjust=False`` (ULA): the move is always taken. With the exact score the draws carry
      an O(h) bias (for a Gaussian target the variance is inflated by ``1/(1 - h/(2 var))``);
      with a wrong score they follow the score, wherever it leads — that is the point of
      comparing them to NUTS.
    - ``adjust=True`` (MALA): a Metropolis–Hastings step against the model's density makes
      the chain exact for the model whatever ``score_fn`` is; the score only steers proposals.

    Step-size adaptation (``adapt_step_size=True``, during ``num_warmup``) is NumPyro's dual
    averaging (:func:`~numpyro.infer.hmc_util.dual_averaging`) towards
    ``target_accept_prob``, as in NumPyro's HMC and BarkerMH. The statistic it adapts
    on is MALA's acceptance probability of the move: for MALA the real one; **for ULA the
    same ratio computed without rejecting anything, so ULA needs the model's potential (log
    density) too, not only a score** — every ULA step also evaluates the potential at the
    new point (free for the exact score: one value-and-grad pass). The ratio compares the
    score with the potential, so with a ``score_fn`` that disagrees with the model it also
    measures that disagreement and the step shrinks; pass ``adapt_step_size=False`` and a
    known ``step_size`` to drive ULA by such a score at a fixed step.

    Mass-matrix adaptation (``adapt_mass_matrix=True``, the default) runs in Stan's windows as
    NumPyro's :func:`~numpyro.infer.hmc_util.warmup_adapter` runs them for NUTS and BarkerMH (a
    fast window, slow windows of doubling length, a final fast window; dual averaging restarts
    at each slow window's end). At each slow window's end the mass is
    :func:`~robust_score.kernels.adaptation.score_matched_mass` of the window's draws and their
    scores (exact for a Gaussian however little the draws have spread); the draws' covariance
    alone, NumPyro's estimate for NUTS, stalls a Langevin warm-up. ``dense_mass``: ``True``
    dense, ``False`` diagonal, ``None`` (default) the form of a given ``inverse_mass_matrix``,
    else dense when the latent sites have at most ``DENSE_MASS_MAX_DIM`` = 50 unconstrained
    dimensions in all, diagonal above. Langevin moves are local, so an isotropic or diagonal
    step across correlated coordinates is held to the narrowest direction: on a logistic
    regression with collinear features (d = 31, 4 chains x (1000 + 2000) steps) MALA with the
    default dense mass reached 65 ESS per 1000 gradients against NUTS's 23 and the identity's
    1.7. A dense mass costs O(d²) per move and its estimate needs a longer warm-up as d grows
    (see ``DENSE_MASS_MAX_DIM``), so above the threshold the diagonal is the default. Afterwards
    ``last_state.adapt_state`` holds the adapted ``step_size`` and ``inverse_mass_matrix``; both
    can also be collected as ``extra_fields=("adapt_state.step_size",
    "adapt_state.inverse_mass_matrix")``. With ``adapt_mass_matrix=False`` and no
    ``inverse_mass_matrix`` the moves are unpreconditioned (the draws of earlier versions, bit
    for bit) and only the step size is tuned, by one dual-averaging run over the warm-up.

    ``accept_prob`` (ArviZ: ``acceptance_rate``), ``diverging``, ``step_size`` and
    ``potential_energy`` (ArviZ: ``lp``) can be collected with
    ``mcmc.run(..., extra_fields=(...))``. A move is flagged ``diverging`` when the step is
    too large for the geometry where it went: a MALA log acceptance ratio below -1000
    (NumPyro HMC's ``max_delta_energy``), a non-finite position, score or potential (such a
    move is not taken), or, for ULA, a drift that changes across the move by more than the
    move (:func:`~robust_score.kernels.ula.move_stiffness`). ULA with the model's score also
    refuses a move whose MALA log ratio is below -1000: without that guard one bad move
    during warm-up, when dual averaging tries large steps, throws a ULA chain into the far
    tails of eight schools. After the run, :func:`~robust_score.numpyro.check_run` warns
    about many divergences, a collapsed step, R̂ and ESS, with what to do.

    :param model: Python callable with NumPyro primitives (continuous latent sites only).
    :param potential_fn: instead of ``model``: ``z -> -log p(z)``; then ``init_params`` must
        be given to ``MCMC.run``.
    :param score_fn: optional ``z -> grad log p(z)`` in unconstrained space, over the same
        pytree as the latent sites (for a model: ``{site: array}`` with each site's
        unconstrained shape). It replaces the model's gradient in every move. For a score
        written over constrained values use
        :func:`~robust_score.numpyro.constrained_score_to_unconstrained`.
    :param step_size: (initial) step size ``h``.
    :param adjust: ``False``: ULA; ``True``: MALA.
    :param adapt_step_size: tune ``h`` by dual averaging during warm-up.
    :param adapt_mass_matrix: estimate the inverse mass matrix during warm-up.
    :param dense_mass: the form of the adapted mass: ``True`` dense, ``False`` diagonal,
        ``None`` dense up to ``DENSE_MASS_MAX_DIM`` unconstrained dimensions.
    :param inverse_mass_matrix: a fixed (``adapt_mass_matrix=False``) or initial inverse
        mass matrix over the raveled latent sites: a 1-D vector or a 2-D positive-definite
        matrix. Default: the identity.
    :param target_accept_prob: target of the adaptation. Default: 0.574 for MALA, its
        optimal rate (Roberts & Rosenthal 1998); ``ULA_TARGET_ACCEPT_PROB`` = 0.95 for ULA,
        whose moves are never rejected, chosen from its measured bias (below 0.2 posterior
        sd, see ``ULA_TARGET_ACCEPT_PROB``). A higher target gives a smaller step and a
        smaller bias.
    :param init_strategy: a NumPyro per-site initialization strategy.
    """

    def __init__(
        self,
        model=None,
        potential_fn=None,
        *,
        score_fn: Callable | None = None,
        step_size: float = 1.0,
        adjust: bool = False,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool | None = None,
        inverse_mass_matrix=None,
        target_accept_prob: float | None = None,
        init_strategy=init_to_uniform,
    ):
        check_model_or_potential(model, potential_fn)
        if score_fn is not None:
            check_callable(score_fn, "score_fn", "score_fn(z)")
        check_positive_scalar(step_size, "step_size")
        if not isinstance(adjust, bool):
            raise TypeError(f"`adjust` must be True (MALA) or False (ULA), got {adjust!r}.")
        if target_accept_prob is None:
            target_accept_prob = 0.574 if adjust else ULA_TARGET_ACCEPT_PROB
        check_fraction(target_accept_prob, "target_accept_prob")
        for name, value in (
            ("adapt_step_size", adapt_step_size),
            ("adapt_mass_matrix", adapt_mass_matrix),
        ):
            check_flag(value, name)
        resolve_dense_mass(dense_mass, 0)  # the type check; the size is known at `init`
        if inverse_mass_matrix is not None:
            inverse_mass_matrix = check_inverse_mass_matrix(inverse_mass_matrix)
        self._model = model
        self._potential_fn = potential_fn
        self._score_fn = score_fn
        self._step_size = float(step_size)
        self._adjust = adjust
        self._adapt_step_size = adapt_step_size
        self._adapt_mass_matrix = adapt_mass_matrix
        self._dense_mass = dense_mass
        self._inverse_mass_matrix = inverse_mass_matrix
        self._target_accept_prob = float(target_accept_prob)
        self._init_strategy = init_strategy
        self._potential_fn_gen = None
        self._postprocess_fn = None
        # MCMC re-runs `init` while this is None; set by `init`
        self._sample_fn = None

    def get_diagnostics_str(self, state):
        step_size, accept_prob = float(state.step_size), float(state.mean_accept_prob)
        return (
            f"step size {step_size:.2e}. acc. prob={accept_prob:.2f}. "
            f"divergences={int(state.num_diverging)}"
        )

    def init(self, rng_key, num_warmup, init_params=None, model_args=(), model_kwargs=None):
        model_kwargs = {} if model_kwargs is None else model_kwargs
        setup = self._setup_model(rng_key, init_params, model_args, model_kwargs)
        if self._score_fn is not None:
            check_site_fn(self._score_fn, setup.prototype, "score_fn")
        if self._inverse_mass_matrix is not None:
            check_mass_matches_position(self._inverse_mass_matrix, setup.prototype)
        size = ravel_pytree(setup.prototype)[0].size
        init_kernel, sample_kernel = score_langevin(
            self._potential_fn,
            self._potential_fn_gen,
            score_fn=self._score_fn,
            adjust=self._adjust,
            adapt_step_size=self._adapt_step_size,
            target_accept_prob=self._target_accept_prob,
            adapt_mass_matrix=self._adapt_mass_matrix,
            dense_mass=resolve_dense_mass(self._dense_mass, size, self._inverse_mass_matrix),
            inverse_mass_matrix=self._inverse_mass_matrix,
        )

        def init_one(rng_key, init_params):
            return init_kernel(
                rng_key, init_params, num_warmup, self._step_size, model_args, model_kwargs
            )

        if setup.vectorized:
            init_one = jax.vmap(init_one)
            if self._adapt_mass_matrix or self._inverse_mass_matrix is not None:
                sample_kernel = phase_switch(sample_kernel, num_warmup)
            else:
                sample_kernel = jax.vmap(sample_kernel, in_axes=(0, None, None))
        # one compiled program, not op-by-op dispatch of the gradient (seconds on first use)
        state = jax.jit(init_one)(setup.rng_key, setup.init_params)
        check_finite_start(state.potential_energy, state.score, setup.vectorized)
        self._sample_fn = sample_kernel
        return state
