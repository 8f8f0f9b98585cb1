"""Several deployments, each replaying its own arrivals, on one limited inventory (pure: no files, no clock).

Each deployment keeps the single-deployment replay's request model (one FIFO gateway queue, at most
`concurrency` requests per ready replica, load recorded once a second) and its own `Autoscaler`. What
changes is how replicas come and go, which now follows the live controller (`tide/control/controller.py`):

* every tick each deployment's autoscaler decides its desired count; a scale-down is applied at once,
  as in `tide sim` (starting replicas first, then idle ones, then the least busy are drained);
* then ONE `schedule()` call for all deployments decides placements, starts, preemptions and pending.
  Each asks for `desired` plus its scaled-down replicas that still hold GPUs while draining, with
  `min` capped at `desired`, as the controller builds its `DeploymentRequest`s. Preempted replicas
  are neither placements nor asked for again: the scheduler already gave their GPUs away;
* a started replica takes its GPUs and is ready after the cold start. A replica placed where a
  preempted one is still draining waits for those GPUs first (`gpus.py`): its cold start, and its
  billing, begin when the victim has finished its in-flight requests;
* a preempted replica drains and is never taken back; replicas that could not be placed are pending,
  and the scheduler is asked again every second until they are placed.

A deployment joins at its first request (its `min` replicas start then) and leaves once its last
request has completed, as a single replay ends there: its idle tail is not billed and its GPUs are
freed for the others. A deployment idle at zero records nothing until its next request, as in
`tide sim`. With enough GPUs for everyone, each deployment therefore gets exactly what it would get
alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tide.scheduling import schedule
from tide.scheduling.capacity import usable
from tide.sim.contention_result import ContentionResult
from tide.sim.deployment_replay import DeploymentReplay, PlacedReplica, Workload
from tide.sim.engine import SimSettings
from tide.sim.gpus import GpuLedger
from tide.sim.scenario import Scenario

__all__ = ["ContentionReplay", "Workload", "replay_scenario"]


class ContentionReplay:
    """Drives the deployments second by second on one clock and asks the scheduler for their replicas."""

    def __init__(self, scenario: Scenario, workloads: Sequence[Workload], settings: SimSettings) -> None:
        self.inventory = scenario.inventory
        self.settings = settings
        self.gpus: GpuLedger[PlacedReplica] = GpuLedger(
            {i.id: self.inventory.type_of(i).gpus for i in self.inventory.instances}
        )
        self.deployments = [
            DeploymentReplay(
                spec,
                workload,
                settings if spec.cold_start is None else replace(settings, cold_start=spec.cold_start),
                self.gpus,
                self._schedule,
            )
            for spec, workload in zip(scenario.deployments, workloads, strict=True)
        ]

    def run(self) -> ContentionResult:
        start = second = min(d.resume_at for d in self.deployments)
        next_sample = 0.0
        while live := [d for d in self.deployments if not d.finished]:
            boundary = second + 1.0
            self._handle_events(live, boundary)
            awake = [d for d in live if d.resume_at <= second]
            for deployment in awake:
                deployment.end_second(second, boundary)
            if any(d.needs_pass() for d in live):
                self._schedule(boundary)
            finished = []
            for deployment in awake:
                if deployment.complete:
                    deployment.finish(boundary)
                    finished.append(deployment)
            if boundary >= next_sample:
                self._sample(live, boundary)
                next_sample = boundary + self.settings.sample_step
            elif finished:  # its last sample must say it holds nothing, however long the sample step
                self._sample(finished, boundary)
            second += 1
            for deployment in live:
                if not deployment.finished:
                    deployment.sleep_if_idle(second)
            waiting = [d.resume_at for d in live if not d.finished]
            if waiting and min(waiting) > second:
                second = min(waiting)  # everyone idle at zero: jump to the next request
        return self._result(float(start))

    def _handle_events(self, live: list[DeploymentReplay], boundary: float) -> None:
        """Every event and arrival before `boundary`, in time order across deployments."""
        while True:
            first: DeploymentReplay | None = None
            first_time = boundary
            for deployment in live:
                t = deployment.next_time()
                if t < first_time:
                    first, first_time = deployment, t
            if first is None:
                return
            first.step()

    def _schedule(self, now: float) -> None:
        """One scheduling pass for all deployments, as the controller's `_schedule` + `_apply`."""
        live = [d for d in self.deployments if not d.finished]
        for deployment in live:
            deployment.settle(now)
        result = schedule(
            self.inventory,
            [p for d in live for p in d.placements()],
            [d.spec.request(d.request_size(), min(d.spec.config.min_replicas, d.desired)) for d in live],
            now,
        )
        by_name = {d.spec.name: d for d in live}
        for preemption in result.preempted:  # first: their GPUs may be free at once for the starts below
            by_name[preemption.placement.deployment_id].preempt(preemption.placement.replica_id, now)
        for placement in result.lost:  # not expected (the books never oversubscribe): drain them all the same
            by_name[placement.deployment_id].preempt(placement.replica_id, now, counted=False)
        for deployment in live:
            name = deployment.spec.name
            deployment.start([p for p in result.started if p.deployment_id == name], now)
            pending = result.pending_for(name)
            deployment.set_pending(pending.count if pending is not None else 0, now)

    @staticmethod
    def _sample(live: list[DeploymentReplay], t: float) -> None:
        for deployment in live:
            deployment.timeline.times.append(t)
            deployment.timeline.load.append(float(deployment.load))
            deployment.timeline.replicas.append(len(deployment.replicas))
            deployment.timeline.gpus_held.append(deployment.gpus_held())

    def _result(self, start: float) -> ContentionResult:
        instances = self.inventory.instances
        return ContentionResult(
            deployments=[d.outcome(self.settings.slo) for d in self.deployments],
            instances=len(instances),
            total_gpus=sum(self.inventory.type_of(i).gpus for i in instances),
            usable_gpus=sum(self.inventory.type_of(i).gpus for i in instances if usable(i)),
            start=start,
            end=max(d.horizon for d in self.deployments),
            peak_gpus=self.gpus.peak,
        )


def replay_scenario(scenario: Scenario, workloads: Sequence[Workload], settings: SimSettings) -> ContentionResult:
    """Replay every deployment of `scenario` (its `workloads`, in the same order) on the shared inventory."""
    if len(workloads) != len(scenario.deployments) or any(not w.arrivals for w in workloads):
        raise ValueError("one non-empty workload per deployment is needed")
    return ContentionReplay(scenario, workloads, settings).run()
