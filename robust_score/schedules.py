"""Noise schedules for the forward process ``x_t = alpha(t) x_0 + sigma(t) eps``.

Each schedule is a small frozen (hashable) dataclass: it can be closed over by jitted code or
passed as a static argument. It gives ``alpha(t)``, ``sigma(t)``, the time range
``[t_min, T]``, the coefficients of the forward SDE ``dx = f(t) x dt + g(t) dW`` that the
reverse-time samplers need, and a decreasing time grid.

Conventions follow Song et al. (2021, score_sde) for ``vp``/``ve``, Nichol & Dhariwal (2021)
for ``cosine`` and Karras et al. (2022, EDM) for ``edm``.
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from robust_score._checks import (
    check_choice,
    check_count,
    check_interval,
    check_time,
    default_float_dtype,
)

__all__ = ["SPACINGS", "Schedule", "vp", "ve", "cosine", "edm"]

SPACINGS = ("uniform", "karras", "logsnr")


@dataclass(frozen=True)
class Schedule:
    """Base class: subclasses define ``log_alpha(t)`` and ``sigma(t)`` (and ``t_of_sigma``)."""

    T: float
    t_min: float

    default_spacing = "uniform"
    # alpha^2 + sigma^2 = 1 (VP, cosine); otherwise alpha = 1 (VE, EDM)
    variance_preserving = True

    def __post_init__(self):
        check_interval(self.t_min, self.T, ("t_min", "T"), low_may_be_zero=True)

    # -- the forward process ---------------------------------------------------------------
    def log_alpha(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def t_of_sigma(self, sigma):
        """Inverse of ``sigma(t)`` on ``[t_min, T]`` (used for Karras spacing)."""
        raise NotImplementedError

    def alpha(self, t):
        return jnp.exp(self.log_alpha(t))

    def noise_to_signal(self, t):
        """``sigma(t) / alpha(t)``: the noise level of the scaled variable ``x_t / alpha(t)``
        (EDM's sigma), and ``exp(-lambda)`` for the half log-SNR ``lambda = log(alpha /
        sigma)`` of DPM-Solver."""
        return self.sigma(t) / self.alpha(t)

    def t_of_noise_to_signal(self, ratio):
        """Inverse of :meth:`noise_to_signal`, through :meth:`t_of_sigma`."""
        if self.variance_preserving:  # sigma^2 = r^2 alpha^2 = r^2 (1 - sigma^2)
            return self.t_of_sigma(ratio / jnp.sqrt(1.0 + ratio**2))
        return self.t_of_sigma(ratio)

    def drift_coefficient(self, t):
        """``f(t) = d log alpha / dt``: the forward SDE drift is ``f(t) x``."""
        t = jnp.asarray(t, dtype=default_float_dtype())
        return _elementwise_grad(self.log_alpha)(t)

    def diffusion_squared(self, t):
        """``g(t)^2 = d sigma^2/dt - 2 f(t) sigma^2``: the forward SDE's squared diffusion."""
        t = jnp.asarray(t, dtype=default_float_dtype())
        dsigma2 = _elementwise_grad(lambda s: self.sigma(s) ** 2)(t)
        return dsigma2 - 2.0 * self.drift_coefficient(t) * self.sigma(t) ** 2

    def prior_std(self) -> float:
        """Standard deviation of the reference ``N(0, prior_std^2 I)`` that approximates
        ``p_T`` (exact for VP-type schedules when the data have unit variance)."""
        return float(jnp.sqrt(self.alpha(self.T) ** 2 + self.sigma(self.T) ** 2))

    # -- time grids ------------------------------------------------------------------------
    def time_grid(self, num_steps: int, *, t_start: float | None = None, spacing=None):
        """Decreasing times ``t_start = t_0 > t_1 > ... > t_num_steps = t_min``.

        ``spacing="uniform"`` is uniform in ``t``; ``"karras"`` is uniform in ``(sigma /
        alpha)^(1/7)`` (EDM's rule on its noise level, denser at low noise); ``"logsnr"`` is
        uniform in the half log-SNR ``log(alpha / sigma)`` (DPM-Solver's rule for few steps).
        """
        check_count(num_steps, "num_steps")
        t_start = self.T if t_start is None else t_start
        check_time(self, t_start, "t_start")
        spacing = self.default_spacing if spacing is None else spacing
        check_choice(spacing, "spacing", SPACINGS)
        dtype = default_float_dtype()
        if spacing == "uniform":
            return jnp.linspace(t_start, self.t_min, num_steps + 1, dtype=dtype)
        ends = jnp.asarray([t_start, self.t_min], dtype)
        if spacing == "logsnr":
            log_ratio = jnp.log(self.noise_to_signal(ends))
            ratios = jnp.exp(jnp.linspace(log_ratio[0], log_ratio[1], num_steps + 1, dtype=dtype))
            times = self.t_of_noise_to_signal(ratios)
        else:  # karras, on EDM's noise level sigma / alpha (sigma itself when alpha = 1)
            rho = 7.0
            r_max, r_min = self.noise_to_signal(ends) ** (1 / rho)
            ratios = jnp.linspace(r_max, r_min, num_steps + 1, dtype=dtype) ** rho
            times = self.t_of_noise_to_signal(ratios)
        # pin the ends exactly: the inverse is only accurate to rounding.
        return times.at[0].set(t_start).at[-1].set(self.t_min)


def check_schedule(schedule, name: str = "schedule") -> None:
    """``schedule`` must be a :class:`Schedule`. Kept beside the class rather than in
    :mod:`robust_score._checks`, which this module imports."""
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"`{name}` must be a robust_score.schedules.Schedule (e.g. rs.schedules.vp()), "
            f"got {type(schedule).__name__}."
        )


@dataclass(frozen=True)
class VPSchedule(Schedule):
    """Variance preserving, linear ``beta(t) = beta_min + t (beta_max - beta_min)``."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self):
        super().__post_init__()
        check_interval(self.beta_min, self.beta_max, ("beta_min", "beta_max"), may_be_equal=True)

    def log_alpha(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * self.log_alpha(t)))

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def t_of_sigma(self, sigma):
        # solve 0.25 db t^2 + 0.5 b0 t + 0.5 log(1 - sigma^2) = 0 for t >= 0
        c = -0.5 * jnp.log1p(-(sigma**2))
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        if a == 0:
            return c / b
        return (-b + jnp.sqrt(b**2 + 4 * a * c)) / (2 * a)


@dataclass(frozen=True)
class VESchedule(Schedule):
    """Variance exploding: ``alpha = 1``, ``sigma(t) = sigma_min (sigma_max/sigma_min)^t``."""

    variance_preserving = False

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self):
        super().__post_init__()
        check_interval(self.sigma_min, self.sigma_max, ("sigma_min", "sigma_max"))

    def log_alpha(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=default_float_dtype()))

    def sigma(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def t_of_sigma(self, sigma):
        return jnp.log(sigma / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)


@dataclass(frozen=True)
class CosineSchedule(Schedule):
    """Cosine schedule: ``alpha(t) = cos(pi/2 (t+s)/(1+s)) / cos(pi/2 s/(1+s))``.

    ``alpha(1) = 0`` makes the SDE coefficients blow up at ``t = 1``, hence ``T < 1``.
    """

    s: float = 0.008

    def __post_init__(self):
        super().__post_init__()
        # alpha(1) = 0: the SDE coefficients blow up at t = 1
        check_interval(self.T, 1.0, ("T", "1"))
        check_interval(self.s, math.inf, ("s", "inf"), low_may_be_zero=True)

    def _angle(self, t):
        return 0.5 * math.pi * (t + self.s) / (1 + self.s)

    def log_alpha(self, t):
        return jnp.log(jnp.cos(self._angle(t))) - math.log(math.cos(self._angle(0.0)))

    def sigma(self, t):
        return jnp.sqrt(-jnp.expm1(2.0 * self.log_alpha(t)))

    def t_of_sigma(self, sigma):
        alpha = jnp.sqrt(1 - sigma**2) * math.cos(self._angle(0.0))
        return jnp.arccos(alpha) * 2 * (1 + self.s) / math.pi - self.s


@dataclass(frozen=True)
class EDMSchedule(Schedule):
    """Karras et al. (2022): ``alpha = 1``, ``sigma(t) = t``, Karras time spacing by default."""

    default_spacing = "karras"
    variance_preserving = False

    def log_alpha(self, t):
        return jnp.zeros_like(jnp.asarray(t, dtype=default_float_dtype()))

    def sigma(self, t):
        return jnp.asarray(t, dtype=default_float_dtype())

    def t_of_sigma(self, sigma):
        return sigma


def vp(beta_min: float = 0.1, beta_max: float = 20.0, *, T: float = 1.0, t_min: float = 1e-3):
    """Variance-preserving schedule with linear beta (DDPM / score_sde VP-SDE)."""
    return VPSchedule(T=T, t_min=t_min, beta_min=beta_min, beta_max=beta_max)


def ve(sigma_min: float = 0.01, sigma_max: float = 50.0, *, T: float = 1.0, t_min: float = 1e-5):
    """Variance-exploding schedule (NCSN / score_sde VE-SDE), geometric in sigma."""
    return VESchedule(T=T, t_min=t_min, sigma_min=sigma_min, sigma_max=sigma_max)


def cosine(s: float = 0.008, *, T: float = 0.99, t_min: float = 1e-3):
    """Cosine schedule of improved DDPM, variance preserving."""
    return CosineSchedule(T=T, t_min=t_min, s=s)


def edm(sigma_min: float = 0.002, sigma_max: float = 80.0):
    """EDM schedule: ``sigma(t) = t`` on ``[sigma_min, sigma_max]``."""
    return EDMSchedule(T=sigma_max, t_min=sigma_min)


def _elementwise_grad(fn):
    return jnp.vectorize(jax.grad(lambda t: jnp.asarray(fn(t), dtype=t.dtype)))
