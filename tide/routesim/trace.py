"""Reading a Mooncake-format trace: one JSON object per line with `timestamp` (ms), `hash_ids` (one id per
512-token block of the prompt, equal ids for equal prefixes), `input_length` and `output_length` (tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class TraceRequest:
    arrival_s: float
    blocks: tuple[int, ...]
    output_tokens: int


class TraceError(ValueError):
    pass


def read_trace(path: str | Path, limit: int | None = None) -> list[TraceRequest]:
    requests: list[TraceRequest] = []
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if limit is not None and len(requests) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                requests.append(
                    TraceRequest(
                        arrival_s=float(row["timestamp"]) / 1000.0,
                        blocks=tuple(int(b) for b in row["hash_ids"]),
                        output_tokens=int(row.get("output_length", 0)),
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise TraceError(
                    f"{path}:{number}: not a trace row ({error}); each line needs timestamp (ms) and hash_ids"
                ) from None
    return requests
