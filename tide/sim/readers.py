"""Trace readers: Azure LLM 2023, Mooncake, Azure Functions 2019 (per-minute counts), Alibaba
GenTD26 (requests or per-model minute counts) and a simple `timestamp[,input,output]` CSV.

This is the only module of tide/sim that touches files.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from tide.sim.trace import Trace, sorted_trace

FORMATS = ("auto", "azure-llm", "mooncake", "azure-functions", "gentd26", "simple")


class TraceError(ValueError):
    """The trace file cannot be read as the requested format."""


def read_trace(
    path: str | Path,
    fmt: str = "auto",
    *,
    select: str | None = None,
    seed: int = 0,
    jitter: float = 0.0,
) -> Trace:
    """Read `path` as `fmt` (or detect it).

    `select` picks one stream where a file holds many: a GenTD26 model id (`M0002`), or an Azure
    Functions row index or hash prefix. Per-minute counts are spread uniformly at random within
    their minute (seeded by `seed`). `jitter` > 0 spreads each arrival uniformly over
    [t, t + jitter) (e.g. 3 for Mooncake's 3-second ticks).
    """
    source = Path(path)
    if not source.is_file():
        raise TraceError(f"trace file not found: {source}")
    if fmt not in FORMATS:
        raise TraceError(f"unknown trace format {fmt!r}; choose one of {', '.join(FORMATS)}")
    kind = detect_format(source) if fmt == "auto" else fmt
    rng = random.Random(seed)
    if kind == "azure-llm":
        trace = _read_azure_llm(source)
    elif kind == "mooncake":
        trace = _read_mooncake(source)
    elif kind == "azure-functions":
        trace = _read_azure_functions(source, select, rng)
    elif kind == "gentd26":
        trace = _read_gentd26(source, select, rng)
    else:
        trace = _read_simple(source)
    if not trace.arrivals:
        raise TraceError(f"{source}: no requests found" + (f" for --select {select}" if select else ""))
    if jitter > 0:
        trace = sorted_trace(
            trace.name,
            [t + rng.random() * jitter for t in trace.arrivals],
            trace.input_tokens,
            trace.output_tokens,
            trace.durations,
            [*trace.notes, f"arrivals jittered over {jitter:g} s"],
        )
    return trace


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return path.open(newline="")


def detect_format(path: Path) -> str:
    with _open(path) as handle:
        first = handle.readline().strip()
    header = first.lower()
    if first.startswith("{"):
        return "mooncake"
    if header.startswith("timestamp,contexttokens"):
        return "azure-llm"
    if header.startswith("timestamp_ms"):
        return "mooncake"
    if header.startswith("gmt_create") or header.startswith("model,minute,count"):
        return "gentd26"
    if "hashfunction" in header or header.startswith("minute,count"):
        return "azure-functions"
    return "simple"


def _parse_wallclock(text: str) -> float:
    """'2023-11-16 18:15:46.6805900' -> seconds (fractions cut to microseconds for fromisoformat)."""
    text = text.strip()
    if "." in text:
        whole, frac = text.split(".", 1)
        text = f"{whole}.{(frac + '000000')[:6]}"
    return datetime.fromisoformat(text).timestamp()


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with _open(path) as handle:
        yield from csv.DictReader(handle)


def _read_azure_llm(path: Path) -> Trace:
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    for row in _rows(path):
        try:
            arrivals.append(_parse_wallclock(row["TIMESTAMP"]))
            inputs.append(int(row["ContextTokens"]))
            outputs.append(int(row["GeneratedTokens"]))
        except (KeyError, ValueError) as exc:
            raise TraceError(f"{path}: bad Azure LLM row {row!r}: {exc}") from exc
    return sorted_trace(path.stem, arrivals, inputs, outputs)


def _read_mooncake(path: Path) -> Trace:
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    if path.suffix == ".jsonl" or path.name.endswith(".jsonl.gz"):
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    arrivals.append(float(record["timestamp"]) / 1000.0)
                    inputs.append(int(record["input_length"]))
                    outputs.append(int(record["output_length"]))
                except (KeyError, ValueError, TypeError) as exc:
                    raise TraceError(f"{path}:{number}: bad Mooncake record: {exc}") from exc
    else:
        for row in _rows(path):
            arrivals.append(float(row["timestamp_ms"]) / 1000.0)
            inputs.append(int(row["input_length"]))
            outputs.append(int(row["output_length"]))
    return sorted_trace(path.stem, arrivals, inputs, outputs)


def _spread(minute_counts: list[tuple[float, int]], rng: random.Random) -> list[float]:
    """Per-minute counts -> arrivals uniform at random within each minute."""
    arrivals: list[float] = []
    for minute, count in minute_counts:
        base = minute * 60.0
        arrivals.extend(base + rng.random() * 60.0 for _ in range(count))
    return arrivals


def _read_azure_functions(path: Path, select: str | None, rng: random.Random) -> Trace:
    with _open(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = list(reader)
    if [h.lower() for h in header[:2]] == ["minute", "count"]:
        counts = [(float(r[0]), int(float(r[1]))) for r in rows if r]
        return sorted_trace(path.stem, _spread(counts, rng), notes=["per-minute counts spread uniformly"])
    try:
        first_minute = next(i for i, h in enumerate(header) if h.startswith("minute_"))
        hash_col = header.index("HashFunction")
    except (StopIteration, ValueError) as exc:
        raise TraceError(f"{path}: expected HashFunction and minute_N columns") from exc
    chosen = _select_rows(rows, hash_col, select, path)
    durations_ms = _function_durations(path.parent)
    arrivals: list[float] = []
    durations: list[float] = []
    for row in chosen:
        counts = [(float(i), int(float(v))) for i, v in enumerate(row[first_minute:]) if v and float(v) > 0]
        spread = _spread(counts, rng)
        arrivals.extend(spread)
        seconds = durations_ms.get(row[hash_col], 0.0) / 1000.0
        durations.extend([seconds] * len(spread))
    name = path.stem + (f"[{select}]" if select else "")
    if durations_ms:
        return sorted_trace(name, arrivals, durations=durations, notes=["durations: per-function averages"])
    return sorted_trace(name, arrivals, notes=["per-minute counts spread uniformly"])


def _select_rows(rows: list[list[str]], hash_col: int, select: str | None, path: Path) -> list[list[str]]:
    if select is None:
        return rows
    if select.isdigit():
        index = int(select)
        if index >= len(rows):
            raise TraceError(f"{path}: --select {index} out of range (0-{len(rows) - 1})")
        return [rows[index]]
    chosen = [r for r in rows if r[hash_col].startswith(select)]
    if not chosen:
        raise TraceError(f"{path}: no function hash starts with {select!r}")
    return chosen[:1]


def _function_durations(folder: Path) -> dict[str, float]:
    """HashFunction -> average duration (ms) from a sibling durations_per_function_*.csv."""
    result: dict[str, float] = {}
    for candidate in sorted(folder.glob("durations_per_function*.csv")):
        for row in _rows(candidate):
            try:
                result[row["HashFunction"]] = float(row["Average"])
            except (KeyError, ValueError):
                continue
    return result


def _read_gentd26(path: Path, select: str | None, rng: random.Random) -> Trace:
    with _open(path) as handle:
        header = handle.readline().strip().lower()
    name = path.stem + (f"[{select}]" if select else "")
    if header.startswith("model,minute,count"):
        counts = [(float(r["minute"]), int(r["count"])) for r in _rows(path) if select is None or r["model"] == select]
        return sorted_trace(name, _spread(counts, rng), notes=["per-minute counts spread uniformly"])
    arrivals: list[float] = []
    durations: list[float] = []
    for row in _rows(path):
        if select is not None and row.get("checkpoint_model_version_id") != select:
            continue
        arrivals.append(_parse_wallclock(row["gmt_create"]))
        try:
            durations.append(float(row.get("exec_time_seconds") or "nan"))
        except ValueError:
            durations.append(float("nan"))
    return sorted_trace(name, arrivals, durations=durations, notes=["durations: exec_time_seconds"])


def _read_simple(path: Path) -> Trace:
    arrivals: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    with _open(path) as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or row[0].strip().startswith("#"):
                continue
            try:
                arrivals.append(float(row[0]))
            except ValueError:
                if number == 1:
                    continue  # a header line
                raise TraceError(f"{path}:{number}: timestamp {row[0]!r} is not a number of seconds") from None
            if len(row) >= 3:
                inputs.append(int(float(row[1])))
                outputs.append(int(float(row[2])))
    has_tokens = len(inputs) == len(arrivals) and bool(inputs)
    return sorted_trace(path.stem, arrivals, inputs if has_tokens else None, outputs if has_tokens else None)
