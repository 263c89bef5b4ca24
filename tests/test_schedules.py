"""Noise schedules: closed forms, SDE coefficients, grids and argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robust_score as rs

ALL = [rs.schedules.vp(), rs.schedules.ve(), rs.schedules.cosine(), rs.schedules.edm()]


def test_vp_closed_forms_and_sde_coefficients():
    schedule = rs.schedules.vp(beta_min=0.1, beta_max=20.0)
    t = jnp.linspace(schedule.t_min, schedule.T, 7)
    np.testing.assert_allclose(schedule.alpha(t) ** 2 + schedule.sigma(t) ** 2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(schedule.drift_coefficient(t), -0.5 * schedule.beta(t), rtol=1e-5)
    np.testing.assert_allclose(schedule.diffusion_squared(t), schedule.beta(t), rtol=1e-4)
    assert float(schedule.alpha(0.0)) == 1.0 and float(schedule.sigma(0.0)) == 0.0
    assert schedule.prior_std() == pytest.approx(1.0)


def test_ve_and_edm_are_pure_noise_addition():
    for schedule in (rs.schedules.ve(), rs.schedules.edm()):
        t = jnp.linspace(schedule.t_min, schedule.T, 5)
        np.testing.assert_allclose(schedule.alpha(t), 1.0)
        np.testing.assert_allclose(schedule.drift_coefficient(t), 0.0, atol=1e-7)
        dsigma2 = jax.vmap(jax.grad(lambda s, sch=schedule: sch.sigma(s) ** 2))(t)
        np.testing.assert_allclose(schedule.diffusion_squared(t), dsigma2, rtol=1e-5)
    ve = rs.schedules.ve(sigma_min=0.01, sigma_max=50.0)
    assert float(ve.sigma(1.0)) == pytest.approx(50.0, rel=1e-5)
    assert float(rs.schedules.edm().sigma(3.0)) == 3.0


def test_cosine_is_variance_preserving_and_needs_t_below_one():
    schedule = rs.schedules.cosine()
    t = jnp.linspace(schedule.t_min, schedule.T, 9)
    np.testing.assert_allclose(schedule.alpha(t) ** 2 + schedule.sigma(t) ** 2, 1.0, rtol=1e-5)
    assert float(schedule.alpha(0.0)) == pytest.approx(1.0)
    assert jnp.all(jnp.diff(schedule.alpha(t)) < 0)
    with pytest.raises(ValueError, match="`T` must satisfy 0 < T < 1"):
        rs.schedules.cosine(T=1.0)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("spacing", ["uniform", "karras"])
def test_time_grids_decrease_from_start_to_t_min(schedule, spacing):
    grid = schedule.time_grid(10, spacing=spacing)
    assert grid.shape == (11,)
    np.testing.assert_allclose([grid[0], grid[-1]], [schedule.T, schedule.t_min], rtol=1e-6)
    assert jnp.all(jnp.diff(grid) < 0)
    middle = 0.5 * (schedule.T + schedule.t_min)
    assert float(schedule.time_grid(4, t_start=middle)[0]) == pytest.approx(middle)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: type(s).__name__)
def test_t_of_sigma_inverts_sigma(schedule):
    t = jnp.linspace(schedule.t_min + 0.01 * (schedule.T - schedule.t_min), schedule.T, 6)
    np.testing.assert_allclose(schedule.t_of_sigma(schedule.sigma(t)), t, rtol=2e-3)


def test_schedules_are_hashable_static_arguments():
    assert hash(rs.schedules.vp()) == hash(rs.schedules.vp())
    assert rs.schedules.vp() != rs.schedules.vp(beta_max=10.0)
    alpha = jax.jit(lambda t, s: s.alpha(t), static_argnums=1)
    assert float(alpha(0.5, rs.schedules.vp())) == pytest.approx(
        float(rs.schedules.vp().alpha(0.5))
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rs.schedules.vp(t_min=0.5, T=0.1), "0 <= t_min < T"),
        (lambda: rs.schedules.cosine(s=-0.1), "0 <= s < inf, got s=-0.1"),
        (lambda: rs.schedules.vp(beta_min=-1.0), "beta_min"),
        (lambda: rs.schedules.ve(sigma_min=1.0, sigma_max=0.5), "sigma_min"),
        (lambda: rs.schedules.vp().time_grid(0), "`num_steps`"),
        (lambda: rs.schedules.vp().time_grid(5, t_start=2.0), "`t_start` must lie"),
        (lambda: rs.schedules.vp().time_grid(5, spacing="log"), "`spacing`"),
    ],
)
def test_bad_schedule_arguments(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()
