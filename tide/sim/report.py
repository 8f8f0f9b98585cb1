"""The results table, the JSON summary and the load/replicas plot."""

from __future__ import annotations

import json
from pathlib import Path

from tide.sim.result import PolicyResult

COLUMNS = (
    ("policy", "policy"),
    ("replica-s", "replica_seconds"),
    ("vs oracle", "cost_vs_oracle"),
    ("requests", "requests"),
    ("cold starts", "cold_starts"),
    ("parked-s", "parked_seconds"),
    ("wakes", "wakes"),
    ("wait p50", "wait_p50_s"),
    ("wait p95", "wait_p95_s"),
    ("wait p99", "wait_p99_s"),
    ("in SLO", "within_slo"),
    ("peak", "peak_replicas"),
)


def _cell(key: str, value: object) -> str:
    if value is None:
        return "-"
    if key in ("replica_seconds", "parked_seconds"):
        return f"{value:,.0f}"
    if key == "cost_vs_oracle":
        return f"{value:.2f}x"
    if key.startswith("wait_"):
        return f"{value:.2f}s"
    if key == "within_slo":
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    return str(value)


def table(summaries: list[dict[str, object]], slo: float) -> str:
    headers = [h if h != "in SLO" else f"<= {slo:g}s" for h, _ in COLUMNS]
    rows = [[_cell(key, s[key]) for _, key in COLUMNS] for s in summaries]
    return layout(headers, rows)


def layout(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, object], summaries: list[dict[str, object]]) -> None:
    path.write_text(json.dumps({**meta, "policies": summaries}, indent=2) + "\n")


def write_plot(path: Path, title: str, results: list[PolicyResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (load_ax, rep_ax) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    scale, unit = time_unit(max((r.horizon for r in results), default=0.0))
    first = next((r for r in results if r.policy == "oracle"), results[0])
    load_ax.plot([t / scale for t in first.timeline.times], first.timeline.load, color="0.3", linewidth=0.7)
    load_ax.set_ylabel("in-flight requests\n(oracle: no queue)")
    load_ax.set_title(title)
    for result in results:
        style = {"linestyle": "--", "color": "black"} if result.policy == "oracle" else {}
        rep_ax.step(
            [t / scale for t in result.timeline.times],
            result.timeline.replicas,
            where="post",
            linewidth=0.9,
            label=f"{result.policy} ({result.replica_seconds:,.0f} replica-s)",
            **style,
        )
    rep_ax.set_ylabel("replicas (incl. starting)")
    rep_ax.set_xlabel(f"time ({unit})")
    rep_ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def time_unit(horizon: float) -> tuple[float, str]:
    if horizon > 3 * 86400:
        return 86400.0, "days"
    if horizon > 3 * 3600:
        return 3600.0, "hours"
    if horizon > 600:
        return 60.0, "minutes"
    return 1.0, "seconds"
