"""The gateway's load signal is the time average over the last second, as the simulator records it."""

from __future__ import annotations

import math
import random

import pytest

from tide.gateway.loadmeter import SLOT_S, WINDOW_S, LoadMeter


def test_a_short_request_counts_for_the_time_it_was_there() -> None:
    meter = LoadMeter(100.0)
    meter.set(100.30, 1, 0)
    meter.set(100.50, 0, 0)  # 0.2 s in flight
    load, queued = meter.averages(101.0)
    assert load == pytest.approx(0.2)
    assert queued == 0.0


def test_queued_requests_count_and_are_reported_apart() -> None:
    meter = LoadMeter(0.0)
    meter.set(10.0, 3, 2)  # 1 in flight + 2 queued
    meter.set(10.5, 1, 0)
    load, queued = meter.averages(11.0)
    assert load == pytest.approx(2.0)  # 3 for half a second, 1 for the other half
    assert queued == pytest.approx(1.0)


def test_a_steady_level_reads_as_itself_after_a_long_quiet_spell_of_changes() -> None:
    meter = LoadMeter(0.0)
    meter.set(1.0, 4, 0)
    assert meter.averages(500.0) == (pytest.approx(4.0), 0.0)
    meter.set(500.0, 0, 0)
    assert meter.averages(501.0)[0] == pytest.approx(0.0)


def test_a_young_meter_averages_over_its_life_only() -> None:
    meter = LoadMeter(50.0)
    meter.set(50.0, 2, 0)
    assert meter.averages(50.5)[0] == pytest.approx(2.0)


def test_the_window_is_the_trailing_second() -> None:
    meter = LoadMeter(0.0)
    meter.set(0.0, 10, 0)
    meter.set(5.0, 0, 0)
    assert meter.averages(5.05)[0] == pytest.approx(10 * 0.95 / 1.0, abs=0.6)  # mostly still busy
    assert meter.averages(6.2)[0] == pytest.approx(0.0)


def test_a_meter_quiet_for_a_whole_window_reads_exactly_zero() -> None:
    # The level drops inside a slot; a second later the slot the window starts in still holds load from
    # before the drop. Read pro rata it would say 0.02: a deployment at rest would keep a replica.
    meter = LoadMeter(0.0)
    meter.set(0.0, 1, 0)
    meter.set(5.05, 0, 0)
    assert meter.quiet(6.06)
    assert meter.averages(6.06) == (0.0, 0.0)


def test_a_level_held_all_window_reads_exactly_itself_so_ceil_adds_no_replica() -> None:
    # Float slot sums read a level of 1 held all along as 1.0000000000000002 at most sample times, and the
    # autoscaler's ceil(observed / target) then asked for a second replica beside the first request at zero.
    rng = random.Random(1)
    for _ in range(500):
        born = rng.uniform(0, 1000)
        meter = LoadMeter(born)
        changed = born + rng.uniform(0, 0.3)
        meter.set(changed, 1, 1)
        now = changed + WINDOW_S + SLOT_S + rng.uniform(0, 5)  # the change's slot out of the window
        assert meter.averages(now) == (1.0, 1.0)
        assert math.ceil(meter.averages(now + rng.uniform(0, 1))[0] / 1.0) == 1
