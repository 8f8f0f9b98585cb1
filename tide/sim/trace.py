"""The request trace the simulator replays: arrivals in seconds from the first one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trace:
    """Requests sorted by arrival. Per-request sizes are optional: `input_tokens`/`output_tokens`
    (LLM traces) or `durations` (traces that record the service time themselves)."""

    name: str
    arrivals: list[float]
    input_tokens: list[int] | None = None
    output_tokens: list[int] | None = None
    durations: list[float] | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.arrivals)

    @property
    def span(self) -> float:
        return self.arrivals[-1] - self.arrivals[0] if self.arrivals else 0.0


def sorted_trace(
    name: str,
    arrivals: list[float],
    input_tokens: list[int] | None = None,
    output_tokens: list[int] | None = None,
    durations: list[float] | None = None,
    notes: list[str] | None = None,
) -> Trace:
    """Sort by arrival (stable) and shift so the first request arrives at t = 0."""
    order = sorted(range(len(arrivals)), key=arrivals.__getitem__)
    start = arrivals[order[0]] if order else 0.0

    def pick(values: list[Any] | None) -> list[Any] | None:
        return None if values is None else [values[i] for i in order]

    return Trace(
        name=name,
        arrivals=[arrivals[i] - start for i in order],
        input_tokens=pick(input_tokens),
        output_tokens=pick(output_tokens),
        durations=pick(durations),
        notes=list(notes or []),
    )
