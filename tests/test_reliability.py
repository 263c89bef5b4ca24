"""Property tests over shapes, dtypes and pytree structures for every kernel and rs.run;
determinism; non-finite scores and extreme settings give flags or clear errors, never a hang
or a silent NaN."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import robust_score as rs

# every example compiles a fresh program: keep the count small and drop the deadline
PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VP = rs.schedules.vp()


def _standard_normal_score(x):
    return jax.tree.map(lambda leaf: -leaf, x)


def _standard_normal_time_score(x, t):
    # N(0, I) stays N(0, I) under a VP schedule: the exact time score is -x at every t
    del t
    return jax.tree.map(lambda leaf: -leaf, x)


def _logdensity(x):
    return -0.5 * sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(x))


ALGORITHMS = {
    "ula": lambda: rs.ula(_standard_normal_score, 0.1),
    "mala": lambda: rs.mala(_logdensity, 0.5),
    "mala+score": lambda: rs.mala(_logdensity, 0.5, _standard_normal_score),
    "annealed_langevin": lambda: rs.annealed_langevin(
        _standard_normal_time_score, VP, num_levels=5, steps_per_level=2, snr=0.16
    ),
    "sde": lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 5, method="sde"),
    "ode": lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 5, method="ode"),
    "pc": lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 5, method="pc"),
    "renoise-denoise": lambda: rs.reverse_diffusion(
        _standard_normal_time_score, VP, 5, method="sde", t_start=0.5
    ),
}
# built once so repeated examples with equal shapes reuse compiled programs
BUILT = {name: build() for name, build in ALGORITHMS.items()}

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)
structures = st.sampled_from(["array", "dict", "tuple"])


def _position(structure, shape, dtype, key=0):
    base = jax.random.normal(jax.random.key(key), (2, *shape) if shape else (2,), dtype)
    if structure == "array":
        return base[0] if shape else base
    if structure == "dict":
        return {"a": base[0] if shape else base, "b": jnp.ones(3, dtype)}
    return (base[1] if shape else base, jnp.zeros((2, 1), dtype))


@pytest.mark.slow
@PROPERTY
@given(
    name=st.sampled_from(sorted(ALGORITHMS)),
    structure=structures,
    shape=shapes,
    double=st.booleans(),
)
def test_every_kernel_keeps_structure_shape_and_dtype(name, structure, shape, double):
    with jax.enable_x64(double):
        dtype = jnp.float64 if double else jnp.float32
        position = _position(structure, shape, dtype)
        algorithm = BUILT[name]
        state = algorithm.init(position, jax.random.key(0))
        step = jax.jit(algorithm.step)
        new_state, info = step(jax.random.key(1), state)
        again, _ = step(jax.random.key(1), state)
        assert jax.tree.structure(new_state.position) == jax.tree.structure(position)
        for new, old in zip(
            jax.tree.leaves(new_state.position), jax.tree.leaves(position), strict=True
        ):
            assert new.shape == old.shape and new.dtype == old.dtype
            assert bool(jnp.all(jnp.isfinite(new)))
        assert not bool(info.is_divergent)
        # bitwise determinism per key
        for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(again), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
@PROPERTY
@given(
    num_chains=st.integers(1, 5),
    num_steps=st.integers(1, 30),
    thin=st.integers(1, 4),
    structure=structures,
)
def test_run_shapes_follow_chains_steps_and_thinning(num_chains, num_steps, thin, structure):
    thin = min(thin, num_steps)
    single = _position(structure, (2,), jnp.float32)
    starts = jax.tree.map(lambda leaf: jnp.stack([leaf] * num_chains), single)
    tree = rs.run(BUILT["mala"], jax.random.key(0), starts, num_steps, thin=thin)
    draws = num_steps // thin
    for variable in tree.posterior.data_vars.values():
        assert variable.shape[:2] == (num_chains, draws)
    assert tree.sample_stats["diverging"].shape == (num_chains, draws)
    again = rs.run(BUILT["mala"], jax.random.key(0), starts, num_steps, thin=thin)
    for name in tree.posterior.data_vars:
        np.testing.assert_array_equal(tree.posterior[name].values, again.posterior[name].values)


@pytest.mark.parametrize("name", ["ula", "annealed_langevin", "sde", "pc", "ode"])
def test_a_score_that_turns_nan_mid_run_is_flagged_and_counted(name):
    # NaN once a coordinate passes 0.5: reached within a few steps from the start 0.6
    def bad(x, *t):
        return jnp.where(jnp.abs(x) > 0.5, jnp.nan, -x)

    if name == "ula":
        algorithm = rs.ula(bad, 0.1)
    elif name == "annealed_langevin":
        algorithm = rs.annealed_langevin(bad, VP, num_levels=5, steps_per_level=2, snr=0.16)
    else:
        algorithm = rs.reverse_diffusion(bad, VP, 5, method=name)
    with pytest.warns(rs.DivergenceWarning, match=r"\d+ of 40 draws"):
        tree = rs.run(algorithm, jax.random.key(0), jnp.full((4, 3), 0.6), 10)
    diverging = tree.sample_stats["diverging"].values
    non_finite = ~np.isfinite(tree.posterior["x"].values).all(axis=-1)
    assert diverging.sum() > 0
    assert diverging[non_finite].all()  # every NaN draw carries the flag


@pytest.mark.parametrize("step_size", [1e3, 1e12])
def test_extreme_step_sizes_diverge_loudly_and_quickly(step_size):
    with pytest.warns(rs.DivergenceWarning):
        tree = rs.run(rs.ula(_standard_normal_score, step_size), jax.random.key(0),
                      jnp.ones((2, 3)), 50)  # fmt: skip
    assert tree.sample_stats["diverging"].values[:, -1].all()
    # MALA rejects instead: the chain stays finite, the acceptance says why
    mala = rs.run(rs.mala(_logdensity, step_size), jax.random.key(0), jnp.ones((2, 3)), 50)
    assert np.isfinite(mala.posterior["x"].values).all()
    assert float(mala.sample_stats["acceptance_rate"].mean()) < 1e-3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 0), "`num_steps`"),
        (lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 5, t_start=2.0), "t_start"),
        (
            lambda: rs.reverse_diffusion(_standard_normal_time_score, VP, 5, method="euler"),
            "method",
        ),
        (
            lambda: rs.annealed_langevin(_standard_normal_time_score, VP, 0, 1, snr=0.1),
            "num_levels",
        ),
        (lambda: rs.ula(_standard_normal_score, math.inf), "`step_size`"),
    ],
)
def test_extreme_settings_are_refused_by_name(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()
