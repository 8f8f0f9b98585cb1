"""The autoscaling policy plug-in interface: what a policy sees, what it returns, and the registry.

A policy is a pure object, one per deployment, built by its factory from the deployment's
`AutoscalerConfig`. Every second the shared wrapper (`Autoscaler`) hands it the second's load
(`observe`); every tick it asks for a count (`propose`) with a `PolicyContext`, and applies to the
answer what every policy must get right (see autoscaler.py): rate limits and activation scale (unless the
policy applies them itself, as Knative's KPA does in its own order), min/max and initial scale, the wake
at zero, and the scale-to-zero bookkeeping (idle window, grace period, retention).

Adding a policy is one module and a registration:

    class MyPolicy(Policy):
        def propose(self, ctx: PolicyContext) -> Proposal:
            return Proposal(math.ceil(ctx.load.average(ctx.now, 30) / ctx.target), "30 s average")

    register_policy("mine", MyPolicy, profile_defaults={})   # autoscaling.profile: mine

`profile_defaults` (field overrides on top of the `knative` profile) also registers a profile of the same
name, which is how `autoscaling.profile` (and `tide sim --policies`) selects it. Built-in policies live in
`tide/autoscale/policies/` and are listed in its `__init__`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tide.autoscale.config import AutoscalerConfig, OptionRange, register_profile

# What a parked replica costs per second as a fraction of a running one (it holds host memory, no accelerator):
# the simulator's default price, and what a policy weighs parked time with live.
PARKED_COST = 0.05
NO_DECISION = -1  # a Proposal.desired meaning "no data yet": the wrapper holds the current count


class LoadHistory:
    """Per-second load (in-flight + queued, time-averaged over the second; or requests/s with the `rps`
    metric), newest last, kept for `keep` seconds. Several records in one second add up.

    `average(now, window)` divides by the seconds with data within the window, not by the window, after a
    quiet spell (no record for a whole window): Knative's linear WindowAverage rule."""

    __slots__ = ("_first", "_keep", "_values")

    def __init__(self, keep: float) -> None:
        self._keep = max(1, math.ceil(keep))
        self._values: deque[tuple[int, float]] = deque()
        self._first = -math.inf  # first second of the current run of data (reset by a quiet window)

    @property
    def keep(self) -> int:
        return self._keep

    def resize(self, keep: float) -> None:
        self._keep = max(self._keep, math.ceil(keep))

    def record(self, now: float, value: float) -> None:
        second = math.floor(now)
        values = self._values
        if values and values[-1][0] == second:
            values[-1] = (second, values[-1][1] + value)
            return
        if not values or second - values[-1][0] >= self._keep:
            self._first = second
        values.append((second, value))
        while values[0][0] <= second - self._keep:
            values.popleft()

    @property
    def last_second(self) -> int | None:
        return self._values[-1][0] if self._values else None

    def is_empty(self, now: float, window: float) -> bool:
        last = self.last_second
        return last is None or math.floor(now) - last > window

    def window(self, now: float, window: float) -> list[tuple[int, float]]:
        """(second, value) records within (now - window, now], oldest first."""
        low = math.floor(now) - window
        return [(s, v) for s, v in self._values if low < s <= now]

    def average(self, now: float, window: float) -> float:
        """Mean load per second over the window (0 if no record within it)."""
        now_s = math.floor(now)
        records = self.window(now_s, window)
        if not records:
            return 0.0
        span = min(float(window), now_s - max(self._first, now_s - window + 1) + 1)
        return sum(v for _, v in records) / max(1.0, span)

    def peak(self, now: float, window: float) -> float:
        return max((v for _, v in self.window(now, window)), default=0.0)


class Parking(NamedTuple):
    """A deployment whose scale-down parks replicas (autoscaling.parking, docs/PARKING.md): a parked
    replica keeps its process but no accelerator, and wakes in `wake_s` instead of a cold start."""

    parked: int  # parked replicas a scale-up would wake now (before starting new ones)
    wake_s: float  # how long a wake takes (live: measured; sim: configured)
    retention_s: float  # a replica parked this long is stopped (autoscaling.parking.retention)
    cost: float = PARKED_COST  # a parked replica's cost per second, as a fraction of a running one
    since: tuple[float, ...] = ()  # when each parked replica parked, oldest first


class PolicyContext(NamedTuple):
    """What a policy sees at one decision (a NamedTuple: built per deployment per tick)."""

    now: float
    ready: int  # replicas serving (not starting, not draining)
    starting: int  # replicas asked for but not ready yet
    current: int  # the count the wrapper applied last
    target: float  # per-replica target load: concurrency x target utilization
    concurrency: int  # per-replica capacity
    cold_start_s: float | None  # the deployment's measured (live) or configured (sim) cold start; None: unknown
    load: LoadHistory
    config: AutoscalerConfig
    reachable: bool  # False: no traffic is routed here (weight 0)
    queued: LoadHistory  # the part of `load` queued at the gateway (not yet on a replica), same seconds
    parking: Parking | None = None  # None: a scale-down stops replicas


class Proposal(NamedTuple):
    """A policy's answer: `desired` replicas (NO_DECISION: hold) and `mechanism`, the name of what decided
    (e.g. "stable", "panic", "keep-alive"); it becomes ScaleDecision.mode. The other fields are optional
    diagnostics for the status' reason line; `text` replaces that line entirely."""

    desired: int
    mechanism: str
    observed: float = 0.0  # the load the decision was sized from
    window: float = 0.0  # seconds `observed` was averaged over
    raw: int = 0  # the count before any limit
    bounded_by: str | None = None  # the policy's own limit that changed the number
    excess_burst_capacity: int = 0  # < 0: the gateway must stay in the path (Knative's SKS proxy mode)
    observed_panic: float = 0.0
    text: str | None = None
    keep_parked: int | None = None  # with parking: parked replicas to keep after this decision (None: all)


class Policy(ABC):
    """One deployment's policy. Pure: the clock is `ctx.now`/`now`, state lives in the object."""

    #: True when the policy applies the rate limits and activation scale itself (Knative's KPA does, in an
    #: order its conformance cases pin); otherwise the wrapper applies them to every proposal.
    applies_limits: bool = False
    #: True when a proposal of 0 is applied at once: the policy times the last replica's going itself, so the
    #: wrapper adds none of Knative's scale-to-zero state machine (stable window, grace period, retention).
    owns_scale_to_zero: bool = False

    #: True when, at zero with no load in its windows, a tick of zero load changes nothing the policy will
    #: decide later (no prediction, no clock of its own): the core may then skip its ticks until load or a
    #: change arrives (`ScalingCore.rest`). Off unless a policy says so.
    rests_at_zero: bool = False

    def __init__(self, config: AutoscalerConfig) -> None:
        self.config = config

    @property
    def history_s(self) -> float:
        """Seconds of LoadHistory the policy reads (the wrapper keeps at least this much)."""
        return self.config.stable_window

    def observe(self, now: float, value: float, arrivals: float = 0.0) -> None:  # noqa: B027 - optional hook
        """One second's load, as recorded into `ctx.load` (for policies that keep their own windows), and
        `arrivals`, the requests that arrived in it (0 from a driver that does not count them)."""

    def skip_idle_ticks(self, tick_after: Callable[[float], float | None]) -> None:  # noqa: B027 - optional hook
        """A policy that `rests_at_zero` and keeps a clock of its own moves it here as the skipped ticks
        (0 ready, no load) would have; `tick_after(t)`: the first of them at or after `t`, None when none."""

    def update_config(self, config: AutoscalerConfig) -> None:
        """The deployment's spec changed; keep state where it still makes sense."""
        self.config = config

    def next_decision_at(self, now: float) -> float | None:
        """While at zero with nothing to serve, when this policy wants to decide again (e.g. to pre-warm a
        replica ahead of a predictable request); None: only when a request arrives. The simulator skips
        idle time up to it; the live controller decides every tick anyway."""
        return None

    def wakes_for_queue(self) -> bool:
        """Whether a request that finds no free replica wakes a parked one at once, off the tick grid (as a
        request at zero always does). Only with parking; the driver asks before each such wake."""
        return False

    @abstractmethod
    def propose(self, ctx: PolicyContext) -> Proposal:
        """The replica count this policy wants now, and why."""


PolicyFactory = Callable[[AutoscalerConfig], Policy]


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    factory: PolicyFactory
    options: Mapping[str, OptionRange]


_POLICIES: dict[str, PolicyInfo] = {}


def register_policy(
    name: str,
    factory: PolicyFactory,
    *,
    profile_defaults: Mapping[str, float] | None = None,
    options: Mapping[str, OptionRange] | None = None,
) -> None:
    """Make `name` a policy. With `profile_defaults` (field values on top of the `knative` profile's),
    also a profile of the same name, so `autoscaling.profile: name` selects it. `options` declares the
    policy's own fields (API names, settable like any autoscaling field; read with `config.option`)."""
    _POLICIES[name] = PolicyInfo(name, factory, dict(options or {}))
    if profile_defaults is not None:
        register_profile(name, policy=name, defaults=profile_defaults, options=dict(options or {}))


def unregister_policy(name: str) -> None:
    """Tests only: forget a policy (and its same-named profile)."""
    from tide.autoscale.config import unregister_profile

    _POLICIES.pop(name, None)
    unregister_profile(name)


def policy_names() -> tuple[str, ...]:
    return tuple(_POLICIES)


def make_policy(config: AutoscalerConfig) -> Policy:
    info = _POLICIES.get(config.policy)
    if info is None:
        raise KeyError(f"no autoscaling policy {config.policy!r} registered; known: {', '.join(_POLICIES)}")
    return info.factory(config)
