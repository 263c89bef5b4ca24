import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture(scope="session")
def correlated_gaussian():
    """N(mu, Sigma) in d = 10 with a non-diagonal Sigma, eigenvalues in [0.5, 2]."""
    dim = 10
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(jax.random.key(42), (dim, dim))))
    cov = (q * np.linspace(0.5, 2.0, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = np.linspace(-2.0, 2.0, dim)
    return jnp.asarray(mean, jnp.float32), jnp.asarray(cov, jnp.float32)


def assert_moments_match(draws, mean, cov, *, mean_chi2_bound=40.0, cov_z_bound=5.5):
    """Mean and covariance of (approximately independent) ``draws`` agree with (mean, cov).

    Mean: n (m - mu)^T cov^-1 (m - mu) ~ chi2_d (d = 10: mean 10, sd 4.5); the bound 40 has
    p ~ 1e-5. Covariance: each entry's error over its standard error
    sqrt((C_ii C_jj + C_ij^2) / n) must stay under ``cov_z_bound`` (55 entries; 5.5 sigma).
    """
    draws = np.asarray(draws, np.float64)
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    n = draws.shape[0]
    error = draws.mean(axis=0) - mean
    chi2 = n * error @ np.linalg.solve(cov, error)
    assert chi2 < mean_chi2_bound, f"mean off: chi2 = {chi2:.1f} (bound {mean_chi2_bound})"
    empirical = np.cov(draws, rowvar=False)
    diag = np.diag(cov)
    standard_error = np.sqrt((np.outer(diag, diag) + cov**2) / n)
    z = np.abs(empirical - cov) / standard_error
    assert z.max() < cov_z_bound, f"covariance off: max z = {z.max():.1f} (bound {cov_z_bound})"
    return chi2, z.max()


def final_draws(tree, last=4):
    """The last ``last`` kept draws of every chain, flattened to (n, dim)."""
    x = np.asarray(tree.posterior["x"].values)
    return x[:, -last:].reshape(-1, x.shape[-1])


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
    assert jnp.zeros(()).dtype == jnp.float32
