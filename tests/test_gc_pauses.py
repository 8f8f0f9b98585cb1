"""The servers' full collections walk only what is new since the last one (tide/gc_pauses.py, issue 15: at
10,000 deployments each walked ~800,000 long-lived objects with the GIL held, 0.3-0.8 s)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tide.gc_pauses import FreezePolicy, freeze_after_full_collections

pytestmark = pytest.mark.fast


def test_survivors_of_a_full_collection_are_frozen_and_go_back_once_an_interval() -> None:
    policy = FreezePolicy(unfreeze_interval_s=3600)
    assert policy.after_collection(0, now=10.0) is None  # young collections: nothing
    assert policy.after_collection(1, now=10.0) is None
    assert policy.after_collection(2, now=10.0) == "freeze"
    assert policy.after_collection(2, now=3000.0) == "freeze"
    assert policy.after_collection(2, now=3610.0) == "unfreeze"  # the next full one walks everything
    assert policy.after_collection(2, now=3620.0) == "freeze"
    assert policy.after_collection(2, now=7209.0) == "freeze"
    assert policy.after_collection(2, now=7210.0) == "unfreeze"


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


@pytest.fixture
def installed() -> Iterator[list[float]]:
    now = [0.0]
    remove = freeze_after_full_collections(lambda: now[0])
    try:
        yield now
    finally:
        remove()


def test_a_full_collection_leaves_the_next_one_only_what_is_new(installed: list[float]) -> None:
    long_lived = [Node() for _ in range(50_000)]  # a large server's deployments
    gc.collect()
    assert gc.get_freeze_count() >= len(long_lived)
    assert len(gc.get_objects(generation=2)) < len(long_lived) // 10  # what the next full collection walks

    # A frozen object is freed by its reference count as ever; a cycle among them waits for the unfreeze.
    garbage = [Node() for _ in range(1000)]
    del garbage
    assert gc.collect() >= 1000  # new cycles are collected
    long_lived.clear()  # 50,000 cycles, frozen
    installed[0] += 3600  # an hour on: the frozen objects go back
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert gc.collect() >= 50_000  # and the next full collection frees their cycles
    assert gc.get_freeze_count() > 0  # frozen again after it


def test_removing_it_unfreezes() -> None:
    remove = freeze_after_full_collections(lambda: 0.0)
    gc.collect()
    assert gc.get_freeze_count() > 0
    remove()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gc.get_freeze_count() == 0
