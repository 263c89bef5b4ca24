"""Quickstart: robust-score samplers are BlackJAX algorithms; runs are ArviZ DataTrees.

Run: .venv/bin/python examples/quickstart.py
"""

import arviz_stats
import blackjax
import jax
import jax.numpy as jnp

import robust_score as rs

d = 50
mean = jnp.full(d, 7.0)
exact = rs.scores.gaussian(mean, 1.0)
trapped = rs.scores.center_trap(exact)  # wrong only where the target never goes

# 1. ULA with any score, driven by rs.run over 4 chains -> DataTree
starts = jnp.zeros((4, d))
for name, score in (("exact", exact), ("trapped", trapped)):
    tree = rs.run(rs.ula(score, step_size=0.1), jax.random.key(0), starts, 2000, thin=10)
    norm = float(jnp.linalg.norm(tree.posterior["x"].values[:, -20:], axis=-1).mean())
    rhat = float(arviz_stats.rhat(tree)["x"].max())
    print(
        f"ULA, {name:7s} score: ||x||/sqrt(d) = {norm / d**0.5:.2f} (target 7.07), R-hat {rhat:.3f}"
    )

# 2. MALA with a tuned step size, the BlackJAX way
logdensity = rs.scores.gaussian_logdensity(mean, 1.0)
(state, parameters), _ = rs.mala_adaptation(logdensity).run(jax.random.key(1), mean, 500)
mala = rs.mala(logdensity, **parameters)
final_state, (states, info) = blackjax.util.run_inference_algorithm(
    jax.random.key(2), mala, 1000, initial_state=state
)
print(
    f"MALA: step size {float(parameters['step_size']):.3f}, "
    f"acceptance {float(info.acceptance_rate.mean()):.2f}, "
    f"mean error {float(jnp.abs(states.position.mean(0) - mean).max()):.3f}"
)
