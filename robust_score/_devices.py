"""Chains over devices and processes: the one-axis mesh, sharding constraints along the
chain axis, and bringing sharded draws to host memory."""

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "as_mesh",
    "chain_sharding",
    "chains_on_host",
    "constrain",
    "gather_to_host",
    "spans_processes",
]


def chain_sharding(mesh, chain_axis=0):
    return NamedSharding(mesh, PartitionSpec(*[None] * chain_axis, mesh.axis_names[0]))


def constrain(tree, mesh, chain_axis=0):
    """Keep the chain axis of every leaf sharded over ``mesh``."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, chain_sharding(mesh, chain_axis))


def as_mesh(devices, num_chains, counted="the number of chains"):
    """The one-axis mesh that ``devices`` names (``None`` for none); ``num_chains``, described
    as ``counted`` in errors, must split evenly over it."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        mesh = devices
        if len(mesh.axis_names) != 1:
            raise ValueError(
                f"`devices` as a Mesh must have one axis (the chains), got {mesh.axis_names}."
            )
    else:
        devices = list(devices)
        if not devices or not all(isinstance(d, jax.Device) for d in devices):
            raise TypeError("`devices` must be a non-empty sequence of jax devices or a Mesh.")
        mesh = Mesh(np.array(devices), ("chain",))
    if num_chains % mesh.size:
        raise ValueError(
            f"{counted} ({num_chains}) must be a multiple of the number of "
            f"devices ({mesh.size}) to shard them over `devices`."
        )
    return mesh


def spans_processes(tree) -> bool:
    """Whether some leaf has shards on devices of other processes (not fetchable here)."""
    return any(
        isinstance(leaf, jax.Array) and not leaf.is_fully_addressable
        for leaf in jax.tree.leaves(tree)
    )


def gather_to_host(tree):
    """Every leaf whole, as a NumPy array, on every process. Call on every process at once
    (a collective when the leaves span processes)."""

    def gather(leaf):
        # process_allgather would concatenate a process-local array with its copies on the
        # other processes: only the leaves that span processes go through it
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return np.asarray(leaf)
        return multihost_utils.process_allgather(leaf, tiled=True)

    return jax.tree.map(gather, tree)


def chains_on_host(tree, gather):
    """``(chains, tree)`` in host memory, every leaf shaped ``(draw, chain, ...)``: all chains
    (``chains`` is ``None``: numbered from 0), or with ``gather=False`` this process's own
    chains, ``chains`` their global indices."""
    if gather or not spans_processes(tree):
        return None, gather_to_host(tree)

    def by_chain(leaf):
        return sorted(leaf.addressable_shards, key=lambda shard: shard.index[1].start)

    first = by_chain(jax.tree.leaves(tree)[0])
    chains = np.concatenate([np.arange(s.index[1].start, s.index[1].stop) for s in first])
    local = jax.tree.map(
        lambda leaf: np.concatenate([np.asarray(s.data) for s in by_chain(leaf)], axis=1), tree
    )
    return chains, local
