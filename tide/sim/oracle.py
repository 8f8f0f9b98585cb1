"""The clairvoyant lower bound: every request is served the moment it arrives.

Replicas needed at time t = ceil(in-flight(t) / limit). Stack them as levels: level k runs while
at least k replicas are needed. Between two busy spells a level either stays up (cost = the gap) or
stops and starts again exactly one cold start before it is needed (cost = the cold start): the
oracle takes the cheaper. The first start of a level costs one cold start. No policy serving every
request with zero wait can spend less.
"""

from __future__ import annotations

import numpy as np

from tide.sim.result import PolicyResult, Timeline


def oracle(
    arrivals: list[float],
    durations: list[float],
    *,
    limit: int,
    cold_start: float,
    slo: float,
    sample_step: float = 1.0,
) -> PolicyResult:
    starts = np.asarray(arrivals, dtype=float)
    ends = starts + np.asarray(durations, dtype=float)
    # Ends sort before starts at the same instant: a slot freed at t serves a request arriving at t.
    times = np.concatenate([ends, starts])
    deltas = np.concatenate([-np.ones(len(ends), dtype=np.int64), np.ones(len(starts), dtype=np.int64)])
    order = np.lexsort((deltas, times))
    times, deltas = times[order], deltas[order]
    in_flight = np.cumsum(deltas)
    needed = -(-in_flight // limit)  # ceil

    busy_since: list[float] = []  # per level currently busy: when it became busy
    idle_since: list[float] = []  # per level: when it last went idle (level index = position)
    cost = 0.0
    cold_starts = 0
    running: list[tuple[float, float]] = []  # (on, off) intervals a replica exists, for the plot
    level_on: list[float] = []  # when each level's current replica was started
    current = 0
    for t, n in zip(times.tolist(), needed.tolist(), strict=True):
        while current < n:  # level current+1 becomes busy
            level = current
            if level < len(idle_since):
                gap = t - idle_since[level]
                if gap <= cold_start:
                    cost += gap  # keep it warm
                else:
                    cost += cold_start
                    cold_starts += 1
                    running.append((level_on[level], idle_since[level]))
                    level_on[level] = t - cold_start
                busy_since[level] = t
            else:
                cost += cold_start
                cold_starts += 1
                idle_since.append(t)
                busy_since.append(t)
                level_on.append(t - cold_start)
            current += 1
        while current > n:  # the top level goes idle
            current -= 1
            cost += t - busy_since[current]
            idle_since[current] = t
    for level, on in enumerate(level_on):
        running.append((on, idle_since[level]))

    horizon = float(ends.max()) if len(ends) else 0.0
    timeline = _timeline(starts, ends, running, sample_step, horizon)
    peak = int(needed.max()) if len(needed) else 0
    return PolicyResult(
        policy="oracle",
        replica_seconds=cost,
        requests=len(arrivals),
        cold_starts=cold_starts,
        waits=np.zeros(len(arrivals)),
        peak_replicas=peak,
        slo=slo,
        timeline=timeline,
        horizon=horizon,
        description="clairvoyant: starts each replica one cold start before needed, stops it when idle",
    )


def _timeline(
    starts: np.ndarray, ends: np.ndarray, running: list[tuple[float, float]], step: float, horizon: float
) -> Timeline:
    begin = float(starts.min()) if len(starts) else 0.0
    samples = np.arange(begin + step, horizon + step, step)
    load = np.searchsorted(np.sort(starts), samples, side="right") - np.searchsorted(
        np.sort(ends), samples, side="right"
    )
    on = np.sort(np.array([r[0] for r in running]))
    off = np.sort(np.array([r[1] for r in running]))
    replicas = np.searchsorted(on, samples, side="right") - np.searchsorted(off, samples, side="right")
    return Timeline(step=step, times=samples.tolist(), load=load.astype(float).tolist(), replicas=replicas.tolist())
