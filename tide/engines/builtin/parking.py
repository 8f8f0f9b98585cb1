"""Park and wake the built-in engine: give the accelerator back while the process (and its imports,
tokenizer, listening socket) stays alive, so waking takes a fraction of a cold start.

- Level 1: the batch scheduler (and with it the KV cache) is dropped; the weights move to host memory.
  Waking moves them back. On CPU the weights already live in host memory, so only the cache goes.
- Level 2: the weights are dropped too; waking reads them again from the model directory (the node's
  weights cache), in the same process.

Blocking torch work: the server runs these in a worker thread. Requests are refused while parked (the
caller waits for in-flight requests to finish before parking).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from tide.engines.builtin.loading import LoadedModel
    from tide.engines.builtin.scheduler import BatchScheduler

LEVELS = (1, 2)


@dataclass(frozen=True)
class Moved:
    """What a park or wake did: seconds, and the bytes of weights that crossed to or from the device."""

    seconds: float
    weight_bytes: int

    @property
    def gb_per_s(self) -> float:
        return self.weight_bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 6), "weightBytes": self.weight_bytes, "gbPerS": round(self.gb_per_s, 3)}


def weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free_device_memory(device: torch.device) -> None:
    # gc only where it frees device memory: on CPU it costs ~0.5 s here (transformers' many objects).
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def park_level1(loaded: LoadedModel, scheduler: BatchScheduler) -> Moved:
    """Stop the scheduler (its KV cache goes with it) and move the weights to host memory."""
    started = time.perf_counter()
    scheduler.stop()
    scheduler.release()
    moved = 0
    if loaded.device.type != "cpu":
        moved = weight_bytes(loaded.model)
        loaded.model.to("cpu")
        _sync(loaded.device)
    _free_device_memory(loaded.device)
    return Moved(time.perf_counter() - started, moved)


def wake_level1(loaded: LoadedModel) -> Moved:
    """Weights back onto the device (a no-op on CPU)."""
    started = time.perf_counter()
    moved = 0
    if loaded.device.type != "cpu":
        moved = weight_bytes(loaded.model)
        loaded.model.to(loaded.device)
        _sync(loaded.device)
    return Moved(time.perf_counter() - started, moved)


def park_level2(loaded: LoadedModel, scheduler: BatchScheduler) -> Moved:
    """Stop the scheduler and drop the weights (the tokenizer stays: it is small and on the host)."""
    started = time.perf_counter()
    scheduler.stop()
    dropped = weight_bytes(loaded.model)
    scheduler.release()
    loaded.model = None
    gc.collect()  # level 2 is about giving the memory back, host memory included: collect cycles now
    _free_device_memory(loaded.device)
    return Moved(time.perf_counter() - started, dropped)


def wake_level2(loaded: LoadedModel, reload: Callable[[], Any]) -> Moved:
    """Read the weights again from the model directory onto the device."""
    started = time.perf_counter()
    loaded.model = reload()
    _sync(loaded.device)
    return Moved(time.perf_counter() - started, weight_bytes(loaded.model))
