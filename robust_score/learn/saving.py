"""Save a :class:`~robust_score.learn.TrainedScore` to one file and load it back, bitwise.

The file is a JSON header line (what to rebuild: the schedule, the training settings, the
score's time and shape, the dtype) followed by the arrays (network, normalizer, losses) in
Equinox's own serialisation (``eqx.tree_serialise_leaves``). Nothing is pickled: the network's
activation is a function, which ``pickle`` refuses, and a pickle would run code on load.
"""

import dataclasses
import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from robust_score import schedules
from robust_score.learn.network import Normalizer, init_network

__all__ = ["load_score", "save_score"]

FORMAT = "robust_score.TrainedScore"
VERSION = 1
_SCHEDULES = {
    cls.__name__: cls
    for cls in (
        schedules.VPSchedule,
        schedules.VESchedule,
        schedules.CosineSchedule,
        schedules.EDMSchedule,
    )
}


def save_score(trained, path) -> None:
    """Write ``trained`` (a ``TrainedScore``) to ``path``; :func:`load_score` reads it back
    with bitwise the same parameters, so the same scores."""
    schedule = trained.schedule
    if type(schedule).__name__ not in _SCHEDULES:
        raise TypeError(
            f"`trained.schedule` must be one of rs.schedules' own ({', '.join(_SCHEDULES)}) to "
            f"be saved, got {type(schedule).__name__}."
        )
    header = {
        "format": FORMAT,
        "version": VERSION,
        "schedule": {"kind": type(schedule).__name__, **dataclasses.asdict(schedule)},
        "settings": trained.settings._asdict(),
        "score_time": trained.score_time,
        "event_shape": list(trained.event_shape),
        "dtype": str(trained.normalizer.mean.dtype),
        "losses_dtype": str(np.asarray(trained.losses).dtype),
    }
    arrays = (trained.params, trained.normalizer, np.asarray(trained.losses))
    with open(path, "wb") as file:
        file.write(json.dumps(header).encode() + b"\n")
        eqx.tree_serialise_leaves(file, arrays)


def load_score(path):
    """The ``TrainedScore`` that :func:`save_score` wrote to ``path``."""
    from robust_score.learn.dsm import TrainedScore, TrainingSettings

    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path` {path!r} is not a file.")
    with open(path, "rb") as file:
        try:
            header = json.loads(file.readline())
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = {}
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"`path` {path!r} is not a TrainedScore saved by save_score.")
        if header["version"] != VERSION:
            raise ValueError(
                f"`path` {path!r} was saved in format version {header['version']}; this "
                f"robust-score reads version {VERSION}."
            )
        settings = header["settings"]
        settings = TrainingSettings(
            **{**settings, "hidden": tuple(settings["hidden"]),
               "t_range": tuple(settings["t_range"])}
        )  # fmt: skip
        fields = dict(header["schedule"])
        schedule = _SCHEDULES[fields.pop("kind")](**fields)
        event_shape = tuple(header["event_shape"])
        dtype = jnp.dtype(header["dtype"])
        dim = int(np.prod(event_shape))
        like = (
            init_network(
                jax.random.key(0), dim, hidden=settings.hidden,
                time_features=settings.time_features, dtype=dtype,
            ),
            Normalizer(jnp.zeros(dim, dtype), jnp.zeros((), dtype)),
            np.zeros(settings.num_steps, header["losses_dtype"]),
        )  # fmt: skip
        network, normalizer, losses = eqx.tree_deserialise_leaves(file, like)
    return TrainedScore(
        network, normalizer, schedule, np.asarray(losses), settings, header["score_time"],
        event_shape,
    )  # fmt: skip
