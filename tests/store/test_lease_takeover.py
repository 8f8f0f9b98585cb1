"""Two real controller processes: kill -9 the leader, the other takes over within ttl + a margin, and
the heartbeats (written only while a process believes it leads) never overlap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tide.store.engine import normalize_url

WORKER = Path(__file__).with_name("lease_worker.py")
TTL_S = 2.0
MARGIN_S = 1.5  # one poll period (ttl/3) plus process scheduling on a loaded machine


def _start(url: str, holder: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, holder, str(TTL_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the worker has its tables and is about to campaign
    assert line.strip() == "campaigning", line
    return proc


def _heartbeats(url: str, holder: str) -> list[tuple[float, float, int]]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT t, lease_expires_at, term FROM heartbeats WHERE holder = :h ORDER BY t"), {"h": holder}
            )
            # Positional: `Row.t` is a (deprecated) attribute of SQLAlchemy's Row, not our column.
            return [(float(t), float(expires), int(term)) for t, expires, term in rows]
    finally:
        engine.dispose()


def _wait_for_heartbeat(url: str, holder: str, timeout_s: float) -> list[tuple[float, float, int]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        beats = _heartbeats(url, holder)
        if beats:
            return beats
        time.sleep(0.05)
    pytest.fail(f"{holder} wrote no heartbeat within {timeout_s}s")


def test_follower_takes_over_after_kill_9_and_leaders_never_overlap(db_url: str) -> None:
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(_start(db_url, "a"))
        _wait_for_heartbeat(db_url, "a", timeout_s=15)
        procs.append(_start(db_url, "b"))
        time.sleep(TTL_S * 1.5)  # b campaigns several times against a live lease
        assert _heartbeats(db_url, "b") == [], "b acted while a held the lease"

        os.kill(procs[0].pid, signal.SIGKILL)
        killed_at = time.time()
        procs[0].wait(timeout=10)
        b_beats = _wait_for_heartbeat(db_url, "b", timeout_s=TTL_S + MARGIN_S + 5)
        a_beats = _heartbeats(db_url, "a")

        takeover_s = b_beats[0][0] - killed_at
        print(f"\ntakeover after kill -9: {takeover_s:.2f}s (ttl {TTL_S}s)")
        assert takeover_s <= TTL_S + MARGIN_S
        # Never both leaders: b's first act comes after a's last act and after a's lease ran out.
        assert a_beats[-1][0] < b_beats[0][0]
        assert max(expires for _, expires, _ in a_beats) <= b_beats[0][0]
        assert b_beats[0][2] > a_beats[-1][2]  # a new term: the fencing token moved on
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
