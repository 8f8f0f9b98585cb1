"""A policy added the way any policy is: this one module and its registration (the last line).

`peak-test` sizes from the busiest second of the last `peakWindow` seconds; the wrapper still applies
min/max, rate limits, the wake at zero and the scale-to-zero bookkeeping to what it proposes.
"""

from __future__ import annotations

import math

from tide.autoscale import OptionRange, Policy, PolicyContext, Proposal, register_policy


class PeakPolicy(Policy):
    @property
    def history_s(self) -> float:
        return self.config.option("peakWindow")

    def propose(self, ctx: PolicyContext) -> Proposal:
        window = ctx.config.option("peakWindow")
        if ctx.load.is_empty(ctx.now, window):
            return Proposal(0, "peak")
        peak = ctx.load.peak(ctx.now, window)
        return Proposal(
            math.ceil(peak / ctx.target), "peak", observed=peak, window=window, raw=math.ceil(peak / ctx.target)
        )


register_policy(
    "peak-test",
    PeakPolicy,
    profile_defaults={"targetUtilization": 100, "scaleToZeroGracePeriod": 0},
    options={"peakWindow": OptionRange(default=10, low=1, high=600)},
)
