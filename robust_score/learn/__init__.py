"""A small denoising-score-matching (DSM) trainer.

.. code::

    trained = rs.learn.train_dsm(data, rs.schedules.vp(), rng_key=key, num_steps=5000)
    draws = rs.sample_batch(key, trained.time_score_fn, rs.ReverseDiffusion(schedule, 18),
                            1000, (dim,))
    ula = rs.ula(trained.at_time(0.05), step_size=1e-3)     # a fixed-noise score for Langevin

    memorizer = rs.scores.empirical_score(data, schedule)    # the exact optimum of DSM on data

**Model** (:mod:`robust_score.learn.network`). An MLP ``eps_theta(u, e(t))`` predicts the
noise ``eps`` of ``x_t = alpha(t) x_0 + sigma(t) eps``; the score is ``-eps_theta / sigma(t)``
(:func:`robust_score.scores.from_eps_prediction`). Predicting ``eps`` keeps the network's
output of unit scale at every noise level, and the explicit ``1 / sigma`` puts the score's
Lipschitz scale where it belongs (about ``1 / sigma^2`` at low noise, where the noised data
look locally like ``N(alpha x_0, sigma^2 I)``, whose score has Jacobian ``-I / sigma^2``)
instead of asking the network to produce it. The input
``u = (x - alpha m) / sqrt(alpha^2 s^2 + sigma^2)`` is ``x`` standardized by the noised data's
mean and scale (``m``, ``s`` fitted once on the training data), so the first layer sees
unit-scale inputs at every ``t``; ``e(t)`` is the log signal-to-noise ratio
``log(alpha(t) / sigma(t))`` with sine/cosine features of it. The last layer starts at zero,
so training starts from the score ``0`` rather than from a random field amplified by
``1 / sigma``.

**Loss** (:mod:`robust_score.learn.dsm`). ``E_t E_{x_0, eps} ||eps_theta(x_t, t) - eps||^2 / d``:
this is DSM, ``E ||s_theta(x_t, t) - grad log p(x_t | x_0)||^2``, weighted by
``lambda(t) = sigma(t)^2`` (``grad log p(x_t | x_0) = -eps / sigma``). Its minimizer over all
functions is the score of the noised *training* distribution,
:func:`robust_score.scores.empirical_score`: a network that fits it exactly has memorized the
data. How close a network gets depends on its capacity (``hidden``) and on the training length
(``num_steps``); both are recorded in :class:`TrainedScore`.

**Why equinox.** An ``equinox`` module is a plain pytree of arrays: ``jax.grad``, ``optax``
and ``lax.scan`` take it as it is, with no parameter/state containers, ``init``/``apply``
split or mutable collections to thread through. The trainer's state is just
``(network, optimizer state)``.
"""

from robust_score.learn.dsm import TrainedScore, TrainingSettings, train_dsm

__all__ = ["TrainedScore", "TrainingSettings", "train_dsm"]
