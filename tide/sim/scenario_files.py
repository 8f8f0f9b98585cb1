"""Reading a scenario file and the traces it names (the file I/O of `tide sim --scenario`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tide.errors import FieldError
from tide.sim.deployment_replay import Workload
from tide.sim.readers import TraceError, read_trace
from tide.sim.scenario import Scenario, parse_scenario
from tide.sim.service import ServiceModel
from tide.sim.trace import Trace


@dataclass(frozen=True)
class LoadedTrace:
    path: Path
    trace: Trace
    workload: Workload


def load_scenario(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FieldError("scenario", f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise FieldError("scenario", f"{path} is not valid YAML: {exc}") from None
    return parse_scenario(raw)


def load_workloads(scenario: Scenario, traces_dir: Path, service: ServiceModel, seed: int) -> list[LoadedTrace]:
    """Each deployment's trace, read relative to `traces_dir` (absolute paths as given), then shifted
    by its `offset` and stretched by its `timeScale`; service times come from `service`."""
    loaded: list[LoadedTrace] = []
    for index, spec in enumerate(scenario.deployments):
        source = spec.trace
        path = Path(source.path) if Path(source.path).is_absolute() else traces_dir / source.path
        try:
            trace = read_trace(path, source.format, select=source.select, seed=seed, jitter=source.jitter)
        except TraceError as exc:
            raise FieldError(f"deployments[{index}].trace", str(exc)) from None
        arrivals = [source.offset + t * source.time_scale for t in trace.arrivals]
        loaded.append(LoadedTrace(path, trace, Workload(arrivals, service.durations(trace), source.offset)))
    return loaded
