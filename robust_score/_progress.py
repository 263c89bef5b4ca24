"""The progress bar that ``rs.run``'s compiled loop reports into."""

import threading

__all__ = ["ProgressBar"]


class ProgressBar:
    """A tqdm bar the compiled loop reports into through ``jax.debug.callback``: ``warmup``
    while the warm-up steps run, then ``sampling``, with the divergent steps so far.

    The compiled program is cached and reused, so it cannot close over one bar: it calls
    :meth:`update_active`, which feeds whichever bar is open now.
    """

    _active = None
    _lock = threading.Lock()

    def __init__(self, enabled: bool, total: int, num_warmup: int = 0):
        self.enabled, self.total, self.num_warmup, self.bar = enabled, total, num_warmup, None
        self.sampling = not num_warmup

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            desc = "warmup" if self.num_warmup else "sampling"
            self.bar = tqdm(total=self.total, desc=desc, unit="step")
            with ProgressBar._lock:
                ProgressBar._active = self
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            with ProgressBar._lock:
                ProgressBar._active = None
            self.bar.close()
        return False

    @staticmethod
    def update_active(done, divergent=None):
        active = ProgressBar._active
        if active is None:
            return
        bar, done = active.bar, int(done)
        if done > active.num_warmup and not active.sampling:
            active.sampling = True
            bar.set_description("sampling", refresh=False)
        if divergent is not None:
            bar.set_postfix(divergent=int(divergent), refresh=False)
        bar.update(done - bar.n)
