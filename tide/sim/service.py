"""How long a request occupies a replica slot: from the trace's durations or its token counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tide.sim.trace import Trace


@dataclass(frozen=True)
class ServiceModel:
    """Prefill at `prefill_tokens_per_s`, then decode at `decode_tokens_per_s` per request (a
    replica's batch does not slow its requests down: the per-replica limit caps the batch)."""

    prefill_tokens_per_s: float = 4000.0
    decode_tokens_per_s: float = 40.0
    default_duration: float = 2.0  # when the trace has neither durations nor tokens
    use_trace_durations: bool = True

    def durations(self, trace: Trace) -> list[float]:
        if self.use_trace_durations and trace.durations is not None:
            return [d if d > 0 and not math.isnan(d) else self.default_duration for d in trace.durations]
        if trace.input_tokens is not None and trace.output_tokens is not None:
            prefill, decode = self.prefill_tokens_per_s, self.decode_tokens_per_s
            return [
                max(0.001, i / prefill + o / decode)
                for i, o in zip(trace.input_tokens, trace.output_tokens, strict=True)
            ]
        return [self.default_duration] * len(trace.arrivals)

    def describe(self, trace: Trace) -> str:
        if self.use_trace_durations and trace.durations is not None:
            return "service time: the trace's durations"
        if trace.input_tokens is not None:
            return (
                f"service time: input/{self.prefill_tokens_per_s:g} + output/{self.decode_tokens_per_s:g}"
                " tokens per second"
            )
        return f"service time: {self.default_duration:g} s per request"
