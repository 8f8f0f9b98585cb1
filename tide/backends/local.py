"""The local backend: each replica is a child process of this machine, on a free loopback port.

Start = fetch weights into the node cache, launch the engine, learn readiness the moment the engine says
so (its `TIDE_EVENT` line on stdout), confirmed by its health route. Stop = SIGTERM (the engine drains its
in-flight requests), then SIGKILL after the grace period. Logs per replica under the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from tide.backends.base import ReplicaBooks, ReplicaLaunch, ReplicaPhase, ReplicaState, TrackedReplica
from tide.backends.logfiles import open_private_log
from tide.backends.warm_pool import WarmPool, order_line
from tide.engines.adapter import LaunchPlan, adapter_for, builtin_pooled_command
from tide.engines.events import EVENT_PREFIX, parse_event
from tide.spec import DeploymentSpec
from tide.timing import HEALTH_POLL_S, PARK_TIMEOUT_S, PROGRESS_NOTIFY_S, STARTUP_STALL_S


@dataclass
class WeightsLease:
    path: Path
    release: Callable[[], None]


class WeightsProvider(Protocol):
    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        """Make the spec's weights available on this node; raises WeightsUnavailable with a user message."""
        ...


class WeightsUnavailable(Exception):
    """Weights cannot be fetched (missing bucket, path, config.json, access denied): not worth a retry."""


def _load_prctl() -> Callable[[int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when Tide dies (kill -9 included), so no replica
    outlives the controller that owns it (a new leader starts its own; draining is moot with no gateway
    state left). Resolved before fork, so nothing here takes a lock."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _renice(pid: int, niceness: int) -> None:
    """Make a just-started engine `niceness` nicer than Tide: its process, and its session's scheduling group.
    The engine starts its own session (a stop signals its whole group), and Linux schedules each session as
    one group (autogroup) that competes with Tide's on equal terms whatever the processes' nice values, so
    the group's nice is set too (/proc/PID/autogroup; absent on some kernels: the process nice stays). Done
    from here, not in the child before exec: under uvloop that runs before the child's setsid, where the
    group is still Tide's own. Spawning returns once the child has exec'd, so its session exists by now."""
    if niceness <= 0:
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as group:
        group.write(str(niceness))


# What an engine may see of the control plane's environment: how to run Python and torch on this machine,
# never the control plane's credentials. Weights are fetched by the platform into the node cache, so an
# engine needs no bucket (AWS_*) or hub credentials either.
_ENV_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}
    | {"PYTHONPATH", "PYTHONHOME", "PYTHONWARNINGS", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD"}
    | {"XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "TOKENIZERS_PARALLELISM"}
)
_ENV_PREFIXES: tuple[str, ...] = ("LC_", "HF_", "TRANSFORMERS_", "CUDA_", "NVIDIA_", "NCCL_", "TORCH", "OMP_")
_ENV_PREFIXES += ("MKL_", "KMP_", "VLLM_", "TRITON_", "ROCM_", "HIP_", "PYTORCH_")
# A name in an allowed family that still carries a credential (HF_TOKEN, a VLLM_API_KEY) stays out.
_SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL")


def replica_environment(parent: Mapping[str, str], engine_env: Mapping[str, str]) -> dict[str, str]:
    """The environment a replica process starts with: the parent's runtime settings from an allowlist
    (no TIDE_*, no AWS_*, nothing named like a credential), then what the engine adapter asks for."""
    kept = {
        name: value
        for name, value in parent.items()
        if (name in _ENV_NAMES or name.startswith(_ENV_PREFIXES))
        and not any(marker in name.upper() for marker in _SECRET_MARKERS)
    }
    return {**kept, **engine_env, "PYTHONUNBUFFERED": "1"}


def replica_env(plan_env: Mapping[str, str]) -> dict[str, str]:
    """The environment a replica's engine runs with: this process's runtime settings (no credentials, see
    replica_environment), plus what the engine's plan sets. Warm-pool processes start with `replica_env({})`
    and are given `replica_env(plan.env)` when taken, so a pooled replica sees exactly what a freshly
    launched one would."""
    return replica_environment(os.environ, plan_env)


async def spawn_engine(
    argv: tuple[str, ...],
    env: Mapping[str, str],
    stderr: IO[bytes],
    *,
    stdin_pipe: bool = False,
    niceness: int = 0,
) -> asyncio.subprocess.Process:
    """An engine process (a replica, or a warm-pool process that becomes one): stdout is a pipe for its
    TIDE_EVENT lines, its own process group (a stop reaches its children too), dies with us, and runs
    `niceness` nicer than Tide (the plan's)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin_pipe else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=dict(env),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    _renice(process.pid, niceness)
    return process


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Replica(TrackedReplica):
    process: asyncio.subprocess.Process | None = None
    lease: WeightsLease | None = None
    last_progress: float = field(default_factory=time.monotonic)  # any sign of life while starting
    plan: LaunchPlan | None = None
    server: str | None = None  # http://host:port of its engine, kept while parked (base_url is not)
    stalled: str | None = None  # why the watchdog ended a start that made no progress


class LocalBackend(ReplicaBooks[_Replica]):
    def __init__(
        self,
        data_dir: Path,
        weights: WeightsProvider,
        host: str = "127.0.0.1",
        startup_stall_s: float = STARTUP_STALL_S,
        warm_pool: int = 0,
    ) -> None:
        super().__init__(data_dir)
        self._pools: dict[tuple[str, ...], WarmPool] = {}
        if warm_pool > 0:  # the built-in engine's pool; others have none (vLLM starts its own processes)
            command = builtin_pooled_command()
            self._pools[command] = WarmPool(command, warm_pool, self._spawn_pooled, self._logs_dir / "warm-pool.log")
        self._startup_stall_s = startup_stall_s
        self._weights = weights
        self._host = host
        self._http = httpx.AsyncClient(timeout=2.0)

    def start_warm_pool(self) -> None:
        """Begin filling the warm pools (needs the running event loop)."""
        for pool in self._pools.values():
            pool.start()

    @property
    def warm_pools(self) -> list[WarmPool]:
        return list(self._pools.values())

    async def _spawn_pooled(self, argv: tuple[str, ...], stderr: IO[bytes]) -> asyncio.subprocess.Process:
        return await spawn_engine(argv, replica_env({}), stderr, stdin_pipe=True)

    async def _engine_process(
        self, plan: LaunchPlan, env: Mapping[str, str], log_file: IO[bytes], log_path: Path
    ) -> asyncio.subprocess.Process:
        """A warm-pool process told to become this replica, or a freshly launched engine."""
        pool = self._pools.get(plan.pooled_command) if plan.pooled_command else None
        process = pool.take() if pool is not None else None
        if process is not None and process.stdin is not None:
            try:
                process.stdin.write(order_line(plan.argv, env, log_path))
                await process.stdin.drain()
                process.stdin.close()
                log_file.write(f"--- from the warm pool (pid {process.pid})\n".encode())
                _renice(process.pid, plan.niceness)
                return process
            except (BrokenPipeError, ConnectionResetError):  # it died just now: launch as usual
                _signal_group(process.pid, signal.SIGKILL)
        return await spawn_engine(plan.argv, env, log_file, niceness=plan.niceness)

    async def start(self, launch: ReplicaLaunch) -> ReplicaState:
        replica = _Replica(state=self._new_state(launch))
        self._replicas[launch.replica_id] = replica
        log_path = self._log_path(launch)
        replica.task = asyncio.create_task(self._run(replica, launch, log_path), name=f"replica-{launch.replica_id}")
        return replica.state

    async def _run(self, replica: _Replica, launch: ReplicaLaunch, log_path: Path) -> None:
        spec = launch.spec
        try:
            self._set_phase(replica, ReplicaPhase.DOWNLOADING_WEIGHTS, "fetching weights")

            last_notified = [0.0]

            def on_progress(progress: dict[str, Any]) -> None:
                replica.state.progress = progress
                now = time.monotonic()
                replica.last_progress = now
                # Downloads report per chunk; the controller needs a few updates a second, not hundreds.
                if now - last_notified[0] >= PROGRESS_NOTIFY_S or progress.get("percent") == 100.0:
                    last_notified[0] = now
                    self._listener(replica.state)

            fetch = asyncio.create_task(self._weights.fetch(spec, on_progress))
            while not fetch.done():
                await asyncio.wait({fetch}, timeout=1.0)
                if not fetch.done() and self._stalled(replica):
                    fetch.cancel()
                    self._set_phase(replica, ReplicaPhase.FAILED, self._stall_message(replica))
                    return
            try:
                replica.lease = fetch.result()
            except WeightsUnavailable as exc:
                self._set_phase(replica, ReplicaPhase.FAILED, str(exc))
                return
            if replica.stopping:
                return
            await self._launch_engine(replica, launch, log_path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an OS error: say it, never hang in a starting phase
            self._set_phase(replica, ReplicaPhase.FAILED, f"could not start: {type(exc).__name__}: {exc}")

    async def _launch_engine(self, replica: _Replica, launch: ReplicaLaunch, log_path: Path) -> None:
        assert replica.lease is not None
        spec = launch.spec
        port = free_port(self._host)
        plan = adapter_for(spec.runtime.engine).plan(
            model_dir=replica.lease.path,
            host=self._host,
            port=port,
            served_name=spec.routing_name,
            engine_config=spec.runtime.engine_config,
            gpu_ids=launch.gpu_ids,
        )
        log_file = open_private_log(log_path)
        log_file.write(f"--- starting {' '.join(plan.argv)}\n".encode())
        env = replica_env(plan.env)
        self._set_phase(replica, ReplicaPhase.ENGINE_LOAD, "loading the model")
        replica.last_progress = time.monotonic()
        process = await self._engine_process(plan, env, log_file, log_path)
        replica.process = process
        replica.state.pid = process.pid
        base = f"http://{self._host}:{port}"
        replica.plan, replica.server = plan, base
        ready = asyncio.Event()

        async def confirm_ready() -> None:
            if ready.is_set() or replica.stopping:
                return
            if await self._healthy(base + plan.health_path):
                ready.set()
                replica.state.base_url = base + "/v1"
                replica.state.progress = None
                self._set_phase(replica, ReplicaPhase.READY, "")

        async def read_stdout() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                replica.last_progress = time.monotonic()
                log_file.write(raw)
                event = parse_event(raw.decode(errors="replace").strip())
                if event is None:
                    continue
                if event.get("phase") == "ready":
                    await confirm_ready()
                elif event.get("phase") == "engine_load" and "progress" in event:
                    replica.state.progress = {"engineLoad": event["progress"]}
                    self._listener(replica.state)

        async def poll_health() -> None:
            log_size = 0
            while not ready.is_set():
                await asyncio.sleep(HEALTH_POLL_S if not plan.emits_events else 1.0)
                await confirm_ready()
                size = log_path.stat().st_size if log_path.exists() else 0
                if size != log_size:  # the engine's own log output counts as progress
                    log_size = size
                    replica.last_progress = time.monotonic()
                if not ready.is_set() and self._stalled(replica):
                    replica.stalled = self._stall_message(replica)
                    _signal_group(process.pid, signal.SIGKILL)
                    return

        reader = asyncio.create_task(read_stdout())
        poller = asyncio.create_task(poll_health())
        try:
            code = await _wait_for_exit(process)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            log_file.write(f"--- exited with code {process.returncode}\n".encode())
            log_file.close()
        replica.state.exit_code = code  # the phase set next clears its URL
        if replica.stopping:
            self._set_phase(replica, ReplicaPhase.STOPPED, "")
        elif replica.stalled:
            self._set_phase(replica, ReplicaPhase.FAILED, replica.stalled)
        else:
            tail = _tail(log_path, 3)
            self._set_phase(replica, ReplicaPhase.CRASHED, f"engine exited with code {code}: {tail}")
        self._release(replica)

    def _stalled(self, replica: _Replica) -> bool:
        return time.monotonic() - replica.last_progress > self._startup_stall_s

    def _stall_message(self, replica: _Replica) -> str:
        return (
            f"stalled in phase {replica.state.phase.value}: no progress for {self._startup_stall_s:.0f}s "
            "(no bytes downloaded, no log output); see `tide logs`"
        )

    async def _healthy(self, url: str) -> bool:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _release(self, replica: _Replica) -> None:
        if replica.lease is not None:
            lease, replica.lease = replica.lease, None
            lease.release()

    async def park(self, replica_id: str, level: int) -> bool:
        replica = self._replicas.get(replica_id)
        plan = replica.plan if replica is not None else None
        if replica is None or plan is None or not plan.can_park or replica.state.phase is not ReplicaPhase.READY:
            return False
        self._set_phase(replica, ReplicaPhase.PARKING, f"parking (level {level})")
        try:
            response = await self._http.post(
                f"{replica.server}{plan.park_path}", params={"level": level}, timeout=PARK_TIMEOUT_S
            )
            parked = response.status_code == 200
            detail = "" if parked else f"{response.status_code} {response.text[:200]}"
            reported = _reported_host_bytes(response) if parked else None
        except httpx.HTTPError as exc:
            parked, detail, reported = False, f"{type(exc).__name__}: {exc}", None
        if replica.state.phase is not ReplicaPhase.PARKING:  # it exited meanwhile: its phase says so
            return False
        if not parked:
            self._set_phase(replica, ReplicaPhase.READY, f"could not park: {detail}")
            return False
        if level == 1:  # the weights now sit in host memory: what the engine says it moved, else their size
            replica.state.host_bytes = reported if reported is not None else _weights_bytes(replica.lease)
        self._set_phase(replica, ReplicaPhase.PARKED, f"parked (level {level})")
        return True

    async def wake(self, replica_id: str) -> bool:
        replica = self._replicas.get(replica_id)
        plan = replica.plan if replica is not None else None
        if replica is None or plan is None or replica.state.phase is not ReplicaPhase.PARKED:
            return False
        self._set_phase(replica, ReplicaPhase.WAKING, "waking")
        try:
            response = await self._http.post(f"{replica.server}{plan.wake_path}", timeout=PARK_TIMEOUT_S)
            woke = response.status_code == 200 and await self._healthy(f"{replica.server}{plan.health_path}")
            detail = "" if woke else f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            woke, detail = False, f"{type(exc).__name__}: {exc}"
        if replica.state.phase is not ReplicaPhase.WAKING:
            return False
        if not woke:
            self._set_phase(replica, ReplicaPhase.PARKED, f"could not wake: {detail}")
            return False
        replica.state.base_url = f"{replica.server}/v1"
        replica.state.host_bytes = 0
        self._set_phase(replica, ReplicaPhase.READY, "")
        return True

    async def stop(self, replica_id: str, grace_s: float) -> None:
        replica = self._replicas.get(replica_id)
        if replica is None:
            return
        replica.stopping = True
        process = replica.process
        if process is not None and process.returncode is None:
            if replica.state.phase is ReplicaPhase.READY:
                self._set_phase(replica, ReplicaPhase.DRAINING, "finishing in-flight requests")
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=grace_s + 5.0)
            except TimeoutError:
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        await self._finish_stop(replica_id, replica, cancel_task=process is None)  # no process: still fetching

    def _forgotten(self, replica: _Replica) -> None:
        self._release(replica)

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self._pools.values()), return_exceptions=True)
        await self._stop_all()
        await self._http.aclose()


async def _wait_for_exit(process: asyncio.subprocess.Process) -> int:
    """The engine's exit code once it exits. `process.wait()` alone also waits for its stdout pipe to close
    (Python 3.11), and children that outlive a killed engine (vLLM's engine core and worker after a kill -9
    of its API server) hold it open forever: end the rest of the group first."""
    while process.returncode is None:
        await asyncio.sleep(HEALTH_POLL_S)
    _signal_group(process.pid, signal.SIGKILL)
    return await process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    useful = [line for line in text if line.strip() and not line.startswith(("---", EVENT_PREFIX))]
    return " | ".join(useful[-lines:])[-500:]


def _reported_host_bytes(response: httpx.Response) -> int | None:
    """`hostBytes` from a park answer (the built-in engine's); None when the engine does not say (vLLM)."""
    try:
        value = response.json().get("hostBytes")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _weights_bytes(lease: WeightsLease | None) -> int:
    """The size of a replica's weights on disk: what a level-1 park holds in host memory."""
    if lease is None:
        return 0
    return sum(f.stat().st_size for f in lease.path.rglob("*") if f.is_file())
