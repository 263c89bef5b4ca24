"""``ScoreLangevin``: ULA / MALA as a NumPyro ``MCMCKernel``, driven by the model's score or
a user's (learned, approximate) score.

Laid out as ``numpyro.infer.hmc``: :func:`score_langevin` is the functional core, returning
``init_kernel`` and ``sample_kernel`` with ``hmc``'s calling conventions; the class is a thin
shell that sets the model up and speaks the ``MCMCKernel`` protocol. The moves are the kernels
of :mod:`robust_score.kernels` (MALA's, and ULA's shadow-ratio move); the warm-up is the
package's one core, :mod:`robust_score.kernels.window_adaptation` (Stan's windows, the
score-matched mass in NumPyro's block structure, NumPyro's dual averaging for MALA and the
score's curvature for ULA); the model plumbing is :func:`~numpyro.infer.util.initialize_model`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import random
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import ParamInfo

from robust_score._checks import (
    check_callable,
    check_dense_mass,
    check_finite_start,
    check_flag,
    check_fraction,
    check_inverse_mass_blocks,
    check_inverse_mass_matrix,
    check_model_or_potential,
    check_positive_scalar,
    check_site_fn,
)
from robust_score.kernels import mala, ula
from robust_score.kernels import window_adaptation as windows
from robust_score.kernels.mala import DIVERGENCE_THRESHOLD
from robust_score.numpyro._common import ScoreKernelBase, mass_structure, phase_switch
from robust_score.numpyro.posterior import (
    plug_and_play_drift,
    plug_and_play_move,
    plug_and_play_prior,
)
from robust_score.numpyro.score_langevin_state import (
    ScoreLangevinState,
    initial_state,
    next_state,
)

__all__ = ["ScoreLangevin", "ScoreLangevinState", "score_langevin"]

# MALA's default target: its optimal acceptance rate (Roberts & Rosenthal 1998)
MALA_TARGET_ACCEPT_PROB = 0.574


def score_langevin(
    potential_fn: Callable | None = None,
    potential_fn_gen: Callable | None = None,
    *,
    score_fn: Callable | None = None,
    prior_score_gen: Callable | None = None,
    adjust: bool = False,
    forward_mode_differentiation: bool = False,
):
    """The functional core of :class:`ScoreLangevin` for one chain, as NumPyro's ``hmc``:
    returns ``(init_kernel, sample_kernel)`` with

    - ``init_kernel(init_params, num_warmup, step_size=1.0, inverse_mass_matrix=None,
      adapt_step_size=True, adapt_mass_matrix=True, dense_mass=False,
      target_accept_prob=None, *, model_args=(), model_kwargs=None, rng_key=None)``;
      ``init_params`` may be NumPyro's ``ParamInfo``; ``target_accept_prob`` is MALA's
      (default 0.574), ULA's step comes from the score's curvature
      (:func:`~robust_score.kernels.window_adaptation.curvature_rule`);
    - ``sample_kernel(state, model_args=(), model_kwargs=None) -> ScoreLangevinState``.

    Give ``potential_fn`` (``z -> -log p(z)``) or ``potential_fn_gen``
    (``(*model_args, **model_kwargs) -> potential_fn``, from ``initialize_model``). With the
    model's own score, a ULA move whose MALA log ratio is below ``-DIVERGENCE_THRESHOLD`` is
    refused; with a user's score only non-finite moves are, as the ratio then also measures
    the score's disagreement with the model. ``prior_score_gen`` (``(model_args,
    model_kwargs) -> prior score``, for a model with ``ScorePrior`` sites whose densities
    ``potential_fn_gen`` leaves out) makes the move plug-and-play ULA on the rest of the
    model's gradient plus the priors' scores: no density value is used.
    """
    if prior_score_gen is not None:
        move = plug_and_play_move()
    elif adjust:
        move = mala.build_kernel()
    else:
        move = ula.build_shadow_kernel(DIVERGENCE_THRESHOLD if score_fn is None else jnp.inf)
    settings = {}

    def model_fns(model_args, model_kwargs):
        """``(log density, drift)`` of the model at these arguments."""
        potential = potential_fn
        if potential_fn_gen is not None:
            potential = potential_fn_gen(*model_args, **(model_kwargs or {}))

        def logdensity(z):
            return -potential(z)

        if score_fn is not None:
            return logdensity, score_fn
        if prior_score_gen is not None:
            prior_score = prior_score_gen(model_args, model_kwargs or {})
            return logdensity, plug_and_play_drift(logdensity, prior_score)
        return logdensity, jax.jacfwd(logdensity) if forward_mode_differentiation else None

    def reading_at(logdensity, drift, rng_key):
        """What the step rule reads, as ``(metric, position) -> value``."""
        if adjust:
            target = settings["target_accept_prob"]
            step_size = settings["initial_step_size"]

            def search(metric, position):
                state = mala.MALAState(
                    position, *mala.logdensity_and_drift(logdensity, drift)(position)
                )
                return mala.reasonable_step_size(
                    rng_key, state, logdensity, step_size, drift, metric, target
                )

            return search
        return windows.curvature_reading(drift or jax.grad(logdensity), rng_key)

    def init_kernel(
        init_params,
        num_warmup,
        step_size=1.0,
        inverse_mass_matrix=None,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
        target_accept_prob=None,
        *,
        model_args=(),
        model_kwargs=None,
        rng_key=None,
    ):
        rng_key = random.key(0) if rng_key is None else rng_key
        z = init_params.z if isinstance(init_params, ParamInfo) else init_params
        if target_accept_prob is None:
            target_accept_prob = MALA_TARGET_ACCEPT_PROB
        if not adjust:
            rule = windows.curvature_rule()
        elif num_warmup < windows.SHORT_WARMUP:
            rule = windows.search_rule()
        else:
            rule = windows.numpyro_dual_averaging(target_accept_prob)
        settings.update(
            num_warmup=num_warmup,
            preconditioned=adapt_mass_matrix or inverse_mass_matrix is not None,
            adapts=(adapt_step_size or adapt_mass_matrix) and num_warmup > 0,
            core=windows.base(
                rule,
                adapt_step_size=adapt_step_size,
                adapt_mass_matrix=adapt_mass_matrix,
                dense_mass=dense_mass,
            ),
            schedule=windows.schedule(max(num_warmup, 1)),
            target_accept_prob=target_accept_prob,
            initial_step_size=step_size,
        )
        logdensity, drift = model_fns(model_args, model_kwargs)
        value, score = mala.logdensity_and_drift(logdensity, drift)(z)
        dtype = jnp.result_type(value)
        start = mala.MALAState(z, value, score)
        key_reading = random.fold_in(rng_key, 1)
        adapt_state = settings["core"][0](
            z,
            jnp.asarray(step_size, dtype),
            inverse_mass_matrix,
            reading=reading_at(logdensity, drift, key_reading),
        )
        return initial_state(rng_key, start, adapt_state)

    def sample_kernel(state, model_args=(), model_kwargs=None, phase=None):
        """One move. ``phase`` (an int index: 0 sampling, 1 warm-up, 2 a slow window's end,
        3 the last warm-up move) is decided here from ``state.i`` unless a caller that moves
        a batch of chains in step decides it once for all (:func:`phase_switch`)."""
        rng_key, key_move = random.split(state.rng_key)
        logdensity, drift = model_fns(model_args, model_kwargs)
        current = mala.MALAState(state.z, -state.potential_energy, state.score)
        adapt_state = state.adapt_state
        mass = windows.mass_of(adapt_state) if settings["preconditioned"] else None
        step_size = adapt_state.step_size
        new, info = move(key_move, current, logdensity, step_size, drift, mass)
        if settings["adapts"]:
            if phase is None:
                phase = windows.warmup_phase(settings["schedule"], settings["num_warmup"], state.i)
            reading = reading_at(logdensity, drift, random.fold_in(key_move, 1))
            adapt_state = windows.adapt_by_phase(
                settings["core"],
                settings["schedule"],
                settings["num_warmup"],
                adapt_state,
                new.position,
                new.score,
                info.acceptance_rate,
                state.i,
                phase,
                reading,
            )
        return next_state(state, new, info, step_size, adapt_state, settings, rng_key)

    return init_kernel, sample_kernel


class ScoreLangevin(ScoreKernelBase):
    """Langevin dynamics as a NumPyro kernel: unadjusted (ULA) or Metropolis-adjusted (MALA),
    driven by the model's score or by a score you supply.

    .. code::

        mcmc = MCMC(rs.numpyro.ScoreLangevin(model, adjust=True), num_warmup=1000,
                    num_samples=1000, num_chains=4)
        mcmc.run(jax.random.key(0), *model_args)

    Every move is ``z' = z + h M⁻¹ s(z) + sqrt(2h) M^{-1/2} xi`` in NumPyro's unconstrained
    space, with ``s = score_fn`` if given, else the exact ``grad log p`` of the model.

    - ``adjust=False`` (ULA): the move is always taken. With the exact score the draws carry
      an O(h) bias; with a wrong score they follow the score, wherever it leads.
    - ``adjust=True`` (MALA): a Metropolis–Hastings step against the model's density makes
      the chain exact for the model whatever ``score_fn`` is; the score only steers proposals.

    A model with :class:`~robust_score.numpyro.ScorePrior` sites (a learned prior) is
    sampled by plug-and-play ULA (Laumont et al. 2022): the score is each prior site's score
    plus the gradient of the rest of the model's log density (likelihood, other priors,
    constrained sites through their transforms). No density value is used, in the moves or
    in warm-up; ``adjust=True`` and ``score_fn`` are refused for such a model. A prior score
    wrong only where the prior has no mass can still trap the chain there:
    ``rs.diagnostics.trap_report(mcmc)`` compares it with annealed posterior draws.

    Warm-up (:mod:`robust_score.kernels.window_adaptation`, shared with
    ``rs.mala_adaptation`` and ``rs.ula_adaptation``): Stan's windows as NumPyro's NUTS runs
    them; the mass at each slow window's end is the score-matched estimate of the window's
    draws and their scores (exact for a Gaussian however little the draws have spread; the
    draws' covariance alone stalls a Langevin warm-up). MALA's step is NumPyro's dual
    averaging to ``target_accept_prob`` (default 0.574), restarted when the mass changes; a
    warm-up of fewer than 20 moves is too short for it and searches for a step instead. ULA's
    step is ``ULA_STEP_FRACTION`` (0.1) over the score's largest curvature under the mass,
    read at the start, at each mass change and at the end of warm-up: it needs no density,
    and keeps a Gaussian's variance bias under 5.3 %.

    A move is flagged ``diverging`` when a MALA log acceptance ratio is below
    ``-DIVERGENCE_THRESHOLD`` (-1000, NumPyro HMC's ``max_delta_energy``), when the position,
    score or potential is non-finite (the move is not taken), or, for ULA, when the drift
    changes across the move by more than the move. After the run,
    :func:`~robust_score.numpyro.check_run` warns about divergences, a collapsed step, R̂ and
    ESS. The collectable fields are those of :class:`ScoreLangevinState`.

    :param model: Python callable with NumPyro primitives (continuous latent sites only).
    :param potential_fn: instead of ``model``: ``z -> -log p(z)``; then ``init_params`` must
        be given to ``MCMC.run``.
    :param score_fn: optional ``z -> grad log p(z)`` in unconstrained space, over the same
        pytree as the latent sites; it replaces the model's gradient in every move. For a
        score over constrained values use
        :func:`~robust_score.numpyro.constrained_score_to_unconstrained`.
    :param step_size: (initial) step size ``h``.
    :param adjust: ``False``: ULA; ``True``: MALA.
    :param adapt_step_size: tune ``h`` during warm-up.
    :param adapt_mass_matrix: estimate the inverse mass matrix during warm-up.
    :param dense_mass: as NUTS's: ``True`` dense, ``False`` diagonal, or a list of tuples of
        site names (dense blocks; the other sites share a diagonal block); ``None`` (default)
        dense up to ``DENSE_MASS_MAX_DIM`` = 50 unconstrained dimensions, diagonal above.
    :param inverse_mass_matrix: as NUTS's: a fixed (``adapt_mass_matrix=False``) or initial
        inverse mass matrix, an array over the raveled latent sites (sorted by name) or a dict
        of blocks keyed by tuples of site names. Default: the identity.
    :param target_accept_prob: MALA's adaptation target (ULA's step does not use it).
    :param init_strategy: a NumPyro per-site initialization strategy.
    :param forward_mode_differentiation: differentiate the model in forward mode (for a model
        with ``lax.while_loop``, which reverse mode cannot differentiate).
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
        dense_mass=None,
        inverse_mass_matrix=None,
        target_accept_prob: float | None = None,
        init_strategy=init_to_uniform,
        forward_mode_differentiation: bool = False,
    ):
        check_model_or_potential(model, potential_fn)
        if score_fn is not None:
            check_callable(score_fn, "score_fn", "score_fn(z)")
        check_positive_scalar(step_size, "step_size")
        if not isinstance(adjust, bool):
            raise TypeError(f"`adjust` must be True (MALA) or False (ULA), got {adjust!r}.")
        if target_accept_prob is not None:
            check_fraction(target_accept_prob, "target_accept_prob")
        for name in ("adapt_step_size", "adapt_mass_matrix", "forward_mode_differentiation"):
            check_flag(locals()[name], name)
        check_dense_mass(dense_mass)
        if inverse_mass_matrix is not None:
            inverse_mass_matrix = check_inverse_mass_blocks(
                inverse_mass_matrix, check_inverse_mass_matrix
            )
        self._model = model
        self._potential_fn = potential_fn
        self._score_fn = score_fn
        self._step_size = step_size
        self._adjust = adjust
        self._adapt_step_size = adapt_step_size
        self._adapt_mass_matrix = adapt_mass_matrix
        self._dense_mass = dense_mass
        self._inverse_mass_matrix = inverse_mass_matrix
        self._target_accept_prob = target_accept_prob
        self._init_strategy = init_strategy
        self._forward_mode_differentiation = forward_mode_differentiation
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
        setup = self._setup_model(
            rng_key, init_params, model_args, model_kwargs, self._forward_mode_differentiation
        )
        if self._score_fn is not None:
            check_site_fn(self._score_fn, setup.prototype, "score_fn")
        prior_score_gen = plug_and_play_prior(setup, self._adjust, self._score_fn)
        dense_mass = mass_structure(self._dense_mass, self._inverse_mass_matrix, setup.prototype)
        init_kernel, sample_kernel = score_langevin(
            self._potential_fn,
            self._potential_fn_gen,
            score_fn=self._score_fn,
            prior_score_gen=prior_score_gen,
            adjust=self._adjust,
            forward_mode_differentiation=self._forward_mode_differentiation,
        )

        def init_one(init_params, rng_key):
            return init_kernel(
                init_params,
                num_warmup,
                self._step_size,
                self._inverse_mass_matrix,
                self._adapt_step_size,
                self._adapt_mass_matrix,
                dense_mass,
                self._target_accept_prob,
                model_args=model_args,
                model_kwargs=model_kwargs,
                rng_key=rng_key,
            )

        if setup.vectorized:
            init_one = jax.vmap(init_one)
        # one compiled program, not op-by-op dispatch of the gradient (seconds on first use)
        state = jax.jit(init_one)(setup.init_params, setup.rng_key)
        if setup.vectorized:
            schedule = windows.schedule(max(num_warmup, 1))
            sample_kernel = phase_switch(sample_kernel, num_warmup, schedule)
        check_finite_start(state.potential_energy, state.score, setup.vectorized)
        self._sample_fn = sample_kernel
        return state
