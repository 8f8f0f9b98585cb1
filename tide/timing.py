"""The timing constants of the live system, in one place, each with why it is what it is (seconds).

Modules import them by name; tests and callers that need other values pass parameters (every loop takes
its interval as an argument where tests shorten it). Defaults a user can set per deployment live with
the spec (`tide/spec/deployment.py`: `DEFAULT_MAX_QUEUE_WAIT_S`, `DEFAULT_PARKING_RETENTION_S`), the
connection limits of both HTTP ports in `tide/http_limits.py` (`ConnectionLimits`).
"""

from __future__ import annotations

# ---- controller (tide/control) ----------------------------------------------------------------------------
RECONCILE_INTERVAL_S = 1.0  # every deployment is reconciled this often; what changed wakes the loop sooner
SAMPLE_INTERVAL_S = 1.0  # gateway load signals feed the autoscaler's 1-second buckets
PUBLISH_INTERVAL_S = 2.0  # the inventory (Ray nodes joining, leaving) is checked and republished this often
USAGE_PRUNE_INTERVAL_S = 3600.0  # usage older than the retention goes hourly; the retention is in days
RESYNC_INTERVAL_S = 30.0  # a full reread of the store besides its change feed, in case a change was missed
GATEWAY_LIVE_S = 3.0  # a gateway process silent this long (3 missed load posts) no longer counts
RESTART_BACKOFF_MIN_S = 1.0  # a crashed replica's first restart: quick, most crashes are one-offs
RESTART_BACKOFF_MAX_S = 60.0  # doubling stops here: a broken deployment retries once a minute, forever
SCRAPE_INTERVAL_S = 2.0  # engine /metrics (KV-cache use, tokens) read this often per ready replica
# A slow /metrics answer is skipped after this. vLLM's API server answers it between streaming tokens: on
# a loaded CPU it took over 2 s while busy, so a 2 s limit showed only the idle readings, and under a CPU
# hog over 5 s (the answers that came in time were read as requests ended). The next scrape waits for it
# (a round is at most this + SCRAPE_INTERVAL_S, inside STALE_AFTER_S).
SCRAPE_TIMEOUT_S = 8.0
STALE_AFTER_S = 15.0  # engine metrics older than this are not shown nor used
# The leader lease: renewed every third of it; a standby controller takes over within it after a crash.
LEASE_TTL_S = 10.0
HOUSEKEEPING_INTERVAL_S = 10.0  # log retention and the weights cache's budget are enforced this often
# The servers freeze what survives a full collection (tide/gc_pauses.py); this often the frozen objects go
# back, so the next full collection also frees cycles among old objects (one long pause an hour at 10,000
# deployments, 0.3-0.8 s, not one every few seconds during a seed).
GC_UNFREEZE_INTERVAL_S = 3600.0

# ---- gateway (tide/gateway) -------------------------------------------------------------------------------
# The route stream's keep-alive: the controller sends a comment this often when nothing changed, and a
# gateway that hears nothing for three of them reconnects.
ROUTES_KEEPALIVE_S = 10.0
LOAD_INTERVAL_S = 1.0  # a gateway process posts its load to the controller each second (the autoscaler's tick)
DEMAND_MIN_INTERVAL_S = 0.2  # wake-ups for one deployment are sent at most this often (a burst is one)
UNHEALTHY_S = 5.0  # a replica that failed or hung a request is avoided this long while others have room
RETRY_AFTER_S = 1  # the Retry-After of the gateway's 429 and 503 answers (whole seconds, per RFC 9110)
UPSTREAM_CONNECT_TIMEOUT_S = 5.0  # a replica that does not accept a connection in this long counts as failed
# A replica that sends nothing for this long while holding a request is cut off; long enough for a
# non-streaming request that generates for minutes (it sends nothing until done).
UPSTREAM_IDLE_TIMEOUT_S = 600.0
HOLD_TIMEOUT_S = 60.0  # a restarted gateway holds requests this long for its controller's first table

# ---- backends (tide/backends) -----------------------------------------------------------------------------
PROGRESS_NOTIFY_S = 0.25  # download progress reaches the controller a few times a second, not per chunk
# A starting replica is never killed for being slow, only for showing no sign of progress (bytes
# downloaded, log lines, events) for this long: a multi-minute GPU load that keeps logging is fine.
STARTUP_STALL_S = 600.0
HEALTH_POLL_S = 0.25  # readiness poll for engines that do not push it (e.g. vLLM); exit checks too
PARK_TIMEOUT_S = 120.0  # a park waits for in-flight requests; a level-2 wake reads the weights again
RESPAWN_BACKOFF_MIN_S = 1.0  # a warm-pool process that died is replaced after this, doubling on repeats
RESPAWN_BACKOFF_MAX_S = 60.0  # ... up to this: a pool that cannot start costs one try a minute
RAY_CONNECT_TIMEOUT_S = 5.0  # `ray.init` retries an unreachable GCS for minutes; a wrong address fails in this
RAY_PLACEMENT_TIMEOUT_S = 300.0  # Ray holds an actor pending while other Ray work uses the node's GPUs
RAY_WATCH_S = 2.0  # the long poll's answer when nothing changed (log bytes still come with it)
RAY_STOP_EXTRA_S = 15.0  # on top of the drain grace, for the actor itself to answer
RAY_UNAVAILABLE_RETRY_S = 0.5  # an actor unreachable for a moment (network blip) is asked again after this
RAY_SPARE_CHECK_S = 2.0  # the Ray warm pool compares its spares with the nodes this often (and after each take)
RAY_REFRESH_S = 0.5  # the cluster's node list is re-read this often, in a thread (a lost node shows within it)
