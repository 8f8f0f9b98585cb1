"""Short cycle-collector pauses in the long-running servers (`tide up`, `tide controller`, `tide api`, the
gateway).

At 10,000 deployments a server holds ~800,000 objects that live as long as their deployment. Python's
full (generation-2) collection walks every one of them, with the GIL held, each time the objects that
reached generation 2 since the last one number a quarter of those there: during a seed of creates one ran
every few seconds and stalled the API, the gateway and the controller for 0.3-0.8 s each.

After each full collection the survivors are frozen (`gc.freeze`): every object still there has lived
through a complete collection, and the next ones walk only what was made since. A frozen object is freed
by its reference count as before; only a reference cycle among frozen objects waits for the next unfreeze,
which `UNFREEZE_INTERVAL_S` bounds: then one full collection walks everything again (one long pause an
hour at 10,000 deployments, not one every few seconds).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tide.timing import GC_UNFREEZE_INTERVAL_S

Action = Literal["freeze", "unfreeze"]


@dataclass
class FreezePolicy:
    """What to do at the end of a collection (pure: the clock is a parameter)."""

    unfreeze_interval_s: float = GC_UNFREEZE_INTERVAL_S
    unfrozen_at: float | None = None  # when the frozen objects last went back; None: not yet

    def after_collection(self, generation: int, now: float) -> Action | None:
        """`freeze` after a full collection; `unfreeze` (instead) once an interval has passed since the
        last one, so that the next full collection also walks, and frees, the old objects' cycles."""
        if generation != 2:
            return None
        if self.unfrozen_at is None:
            self.unfrozen_at = now
        if now - self.unfrozen_at >= self.unfreeze_interval_s:
            self.unfrozen_at = now
            return "unfreeze"
        return "freeze"


def freeze_after_full_collections(clock: Callable[[], float]) -> Callable[[], None]:
    """Install the policy in this process's collector; returns the call that removes it (and unfreezes)."""
    policy = FreezePolicy()

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase != "stop":
            return
        action = policy.after_collection(info["generation"], clock())
        if action == "freeze":
            gc.freeze()
        elif action == "unfreeze":
            gc.unfreeze()

    gc.callbacks.append(callback)

    def remove() -> None:
        gc.callbacks.remove(callback)
        gc.unfreeze()

    return remove
