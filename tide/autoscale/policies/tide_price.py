"""What one request costs this deployment at least: the `tide` policy's yardstick for the price of a cold wait.

Pure. `relativePrice` prices a request that waits a full cold start as `coldRequestWeight` x the
replica-seconds the deployment needs per request, not a fixed number of replica-seconds: holding a replica
through a 10-minute lull is a lot for a deployment whose requests take a tenth of a replica-second each
(a miss there is one of tens of thousands of requests) and little for one that runs 20-s image jobs a few
hundred times a day (a miss there is one of its few requests). The need per request is what a clairvoyant
scaler would pay: the replica-seconds of the work in service (load / concurrency), plus, for each idle gap,
the shorter of the gap and one cold start (it either holds a replica through the gap or starts one just in
time), divided by the requests that arrived. Sums decay with a half-life of `HALF_LIFE_S`, so the yardstick
follows a deployment whose traffic changes.
"""

from __future__ import annotations

HALF_LIFE_S = 86400.0  # a day: long enough for a few-requests-a-day deployment to be measured
MIN_REQUESTS = 20.0  # decayed requests seen before the yardstick is trusted


class NeedPerRequest:
    """Decayed sums of replica-seconds needed and of requests; their ratio is the need per request."""

    __slots__ = ("_at", "_need", "_requests")

    def __init__(self) -> None:
        self._need = 0.0
        self._requests = 0.0
        self._at: float | None = None

    def _decay_to(self, now: float) -> None:
        at = self._at
        if at is not None and now > at:
            factor = 0.5 ** ((now - at) / HALF_LIFE_S)
            self._need *= factor
            self._requests *= factor
        if at is None or now > at:
            self._at = now

    def add(self, now: float, need: float = 0.0, requests: float = 0.0) -> None:
        """Add `need` replica-seconds and `requests` arrivals seen at `now` (seconds, non-decreasing)."""
        if need <= 0.0 and requests <= 0.0:
            return
        self._decay_to(now)
        self._need += max(0.0, need)
        self._requests += max(0.0, requests)

    def per_request(self) -> float | None:
        """Replica-seconds needed per request; None until `MIN_REQUESTS` were seen (the decay cancels out)."""
        if self._requests < MIN_REQUESTS:
            return None
        return self._need / self._requests
