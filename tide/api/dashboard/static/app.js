// Tide's operator console: an overview of every deployment and a page per deployment, polling the
// management API every 2 s. Plain DOM (no framework); text from the server is set with textContent only.
"use strict";

const API = "/v1alpha1/inference";
const POLL_MS = 2000;
const HISTORY_S = 3600; // the chart keeps the last hour of samples, recorded while this tab is open
const LOG_LINES = 2000;
const TOKEN_KEY = "tide-token";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  timer: null,
  generation: 0, // bumps on every navigation, so a late answer for the previous page is dropped
  prevTraffic: null, // {t, requests: {id: n}, errors: {id: n}} from the previous /metrics read
  rates: {}, // deployment id -> requests/s over the last poll interval
  history: {}, // deployment id -> [[t, observedStable, observedPanic, desired, ready, inFlight]]
  logs: null, // {id, offsets, lines, follow}
  chart: null,
};

// -- helpers ---------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, headers.map((x) => h("th", { class: x.endsWith("#") ? "num" : null }, x.replace(/#$/, ""))));
  const body = rows.map((cells) =>
    h("tr", {}, cells.map((c, i) => h("td", { class: headers[i].endsWith("#") ? "num" : null }, c))),
  );
  return h("div", { class: "scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

function stateBadge(s) {
  const name = (s || "unknown").replace(/^STATUS_/, "").toLowerCase().replace(/_/g, " ");
  const cls = /running|ready/.test(name) ? "ok" : /fail|crash|error|lost/.test(name) ? "bad" : /scaled|stopped|disabled/.test(name) ? "" : "warn";
  return h("span", { class: `badge ${cls}` }, name);
}

function phaseBadge(p) {
  // parked: alive but holding no GPU (neutral, like stopped); parking and waking are in motion (warn).
  const cls = p === "ready" ? "ok" : ["crashed", "failed", "lost"].includes(p) ? "bad" : ["stopped", "draining", "parked"].includes(p) ? "" : "warn";
  return h("span", { class: `badge ${cls}` }, (p || "?").replace(/_/g, " "));
}

function secs(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

// Tide's own status fields carry epoch seconds; the hosted envelope's times (createdAt, a condition's
// lastUpdateTime) are RFC 3339 strings. Both show as a local time.
function clock(t) {
  if (!t) return "—";
  const date = typeof t === "string" ? new Date(t) : new Date(t * 1000);
  return isNaN(date) ? String(t) : date.toLocaleTimeString();
}

// "1 / 2", and " · 1 parked" when parked replicas wait to be woken (they serve nothing and hold no GPU).
function readyText(s) {
  const parked = s.parkedReplicas ? ` · ${s.parkedReplicas} parked` : "";
  return `${s.readyReplicas ?? 0} / ${s.desiredReplicas ?? 0}${parked}`;
}

function routing(spec) {
  return (spec.traffic || {}).routing || "—";
}

function percent(x) {
  return x === null || x === undefined ? "—" : `${(100 * x).toFixed(0)} %`;
}

function modelName(spec) {
  return (spec.model || {}).name || spec.name;
}

function profile(spec) {
  const r = spec.resources || {};
  const rt = spec.runtime || {};
  const a = spec.autoscaling || {};
  return `${rt.engine || "?"} · ${r.instanceType || "?"} × ${r.gpuCount ?? "?"} GPU · ${a.min ?? "?"}–${a.max ?? "?"} replicas`;
}

function live(ok) {
  const el = document.getElementById("live");
  el.className = ok ? "live on" : "live err";
  el.title = ok ? `Refreshed ${new Date().toLocaleTimeString()}` : "The last refresh failed";
}

class Unauthorized extends Error {}

// A list route answers one page (`pageSize`, `nextPageToken`): read every page, in creation order.
async function listAll(path, key, options) {
  const items = [];
  let token = "";
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}pageSize=1000${token ? `&pageToken=${encodeURIComponent(token)}` : ""}`, options);
    if (page === null) return null;
    items.push(...(page[key] || []));
    if (!page.nextPageToken) return items;
    token = page.nextPageToken;
  }
}

async function api(path, options) {
  const response = await fetch(API + path, {
    ...(options || {}),
    headers: { Authorization: `Bearer ${state.token}` },
  });
  if (response.status === 401) throw new Unauthorized("the API refused the token");
  if (response.status === 404 && options && options.optional) return null;
  const body = await response.json();
  if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
  return body;
}

// /metrics is Prometheus text; the dashboard reads the gateways' per-deployment totals from it.
function parseTraffic(text) {
  const out = { requests: {}, errors: {}, inFlight: {}, queued: {} };
  const keys = {
    tide_gateway_requests_total: "requests",
    tide_gateway_errors_total: "errors",
    tide_gateway_in_flight: "inFlight",
    tide_gateway_queued: "queued",
  };
  for (const line of text.split("\n")) {
    const m = line.match(/^(\w+)\{([^}]*)\}\s+(\S+)/);
    if (!m || !(m[1] in keys)) continue;
    const dep = (m[2].match(/deployment="([^"]*)"/) || [])[1];
    if (dep === undefined) continue;
    const bucket = out[keys[m[1]]];
    bucket[dep] = (bucket[dep] || 0) + Number(m[3]);
  }
  return out;
}

async function readTraffic() {
  const response = await fetch("/metrics");
  const traffic = parseTraffic(response.ok ? await response.text() : "");
  const now = Date.now() / 1000;
  const prev = state.prevTraffic;
  if (prev && now > prev.t) {
    for (const [id, n] of Object.entries(traffic.requests)) {
      state.rates[id] = Math.max(0, (n - (prev.requests[id] ?? n)) / (now - prev.t));
    }
  }
  state.prevTraffic = { t: now, requests: traffic.requests };
  return traffic;
}

function record(item, traffic) {
  const id = item.spec.id;
  const s = item.status || {};
  const d = s.lastScalingDecision || {};
  const series = (state.history[id] = state.history[id] || []);
  const t = Date.now() / 1000;
  series.push([t, d.observedStable ?? null, d.observedPanic ?? null, s.desiredReplicas ?? null, s.readyReplicas ?? null, traffic.inFlight[id] ?? null]);
  while (series.length && series[0][0] < t - HISTORY_S) series.shift();
}

// Replicas that hold their GPUs: a parked replica gave its GPU back to the scheduler.
function liveReplicas(status) {
  return (status.replicas || []).filter((r) => !["stopped", "crashed", "failed", "lost", "parked"].includes(r.phase));
}

// -- login -----------------------------------------------------------------------------------------

function showLogin(message) {
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  document.getElementById("app").replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("token").focus();
}

document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (!token) return;
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("token").value = "";
  document.getElementById("login").hidden = true;
  document.getElementById("logout").hidden = false;
  navigate();
});

document.getElementById("logout").addEventListener("click", () => showLogin("Token forgotten."));

// -- overview --------------------------------------------------------------------------------------

async function overview(gen) {
  const [items, claims, gateways, params, traffic] = await Promise.all([
    listAll("/deployments", "deployments"),
    listAll("/capacityclaims", "capacityClaims", { optional: true }),
    api("/gateways", { optional: true }),
    api("/deployments/parameters"),
    readTraffic(),
  ]);
  if (gen !== state.generation) return;
  items.forEach((item) => record(item, traffic));

  const types = Object.fromEntries(params.resourceParameters.instanceTypes.map((t) => [t.id, t]));
  let gpus = 0;
  let ready = 0;
  let desired = 0;
  for (const item of items) {
    const type = types[item.spec.resources.instanceType];
    if (type && type.gpuModel !== "cpu") gpus += liveReplicas(item.status).length * (item.spec.resources.gpuCount ?? 1);
    ready += item.status.readyReplicas || 0;
    desired += item.status.desiredReplicas || 0;
  }
  const totalRps = Object.values(state.rates).reduce((a, b) => a + b, 0);
  const totalErrors = Object.values(traffic.errors).reduce((a, b) => a + b, 0);
  const stat = (k, v, title) => h("div", { class: "stat", title }, h("div", { class: "v" }, v), h("div", { class: "k" }, k));

  const rows = items.map((item) => {
    const id = item.spec.id;
    const s = item.status;
    const weight = item.spec.disabled ? 0 : (item.spec.traffic || {}).weight ?? 100;
    return [
      h("a", { href: `#/d/${encodeURIComponent(id)}`, class: "dep-link" }, id),
      stateBadge(s.status),
      modelName(item.spec),
      readyText(s),
      h("span", { class: "muted" }, profile(item.spec)),
      String(weight),
      (state.rates[id] ?? 0).toFixed(2),
      String(traffic.errors[id] ?? 0),
      `${traffic.inFlight[id] ?? 0} / ${traffic.queued[id] ?? 0}`,
    ];
  });

  // A gateway routes a request by model name (spec.model.name) and splits it by weight among the
  // deployments that serve that name on it.
  const byModel = {};
  for (const item of items) (byModel[modelName(item.spec)] = byModel[modelName(item.spec)] || []).push(item);
  const trafficRows = [];
  for (const [model, group] of Object.entries(byModel).sort()) {
    const weights = group.map((i) => (i.spec.disabled ? 0 : (i.spec.traffic || {}).weight ?? 100));
    const total = weights.reduce((a, b) => a + b, 0);
    group.forEach((item, i) => {
      const share = total ? (100 * weights[i]) / total : 0;
      trafficRows.push([
        i === 0 ? model : "",
        item.spec.id,
        (item.spec.gatewayIds || []).join(", ") || "—",
        routing(item.spec),
        String(weights[i]),
        h("div", { class: "bar", title: `${share.toFixed(0)} %` }, h("span", { class: "seg-weights", style: `width:${share}%` })),
        `${share.toFixed(0)} %`,
      ]);
    });
  }

  const claimRows = claims
    ? claims.map((c) => [
        c.spec.id,
        `${c.spec.resources.instanceCount ?? "?"} × ${c.spec.resources.instanceId ?? "?"} (${(c.spec.resources.capacityType || "").replace(/^CAPACITY_CLASS_/, "").toLowerCase()}${(c.spec.resources.zones || []).length ? ", " + c.spec.resources.zones.join(", ") : ""})`,
        String(c.status.allocatedInstances ?? 0),
        String(c.status.pendingInstances ?? 0),
      ])
    : [];

  document.getElementById("app").replaceChildren(
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "grid" },
      stat("deployments", String(items.length)),
      stat("replicas ready / desired", `${ready} / ${desired}`),
      stat("requests/s (gateways)", totalRps.toFixed(2)),
      stat("gateway errors (total)", String(totalErrors)),
      stat("GPUs in use", String(gpus), "GPUs held by live replicas on GPU instance types (CPU slots are not counted)"),
    ),
    h(
      "section",
      { class: "card", id: "deployments" },
      h("h2", {}, "Deployments"),
      table(
        ["Deployment", "State", "Model", "Ready / desired", "Profile", "Weight#", "Req/s#", "Errors#", "In flight / queued#"],
        rows,
        "No deployments yet: tide apply -f deployment.yaml",
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Traffic by model name"),
      table(["Model", "Deployment", "Gateways", "Routing", "Weight#", "Share", "Share#"], trafficRows, "No traffic routes."),
    ),
    h(
      "section",
      { class: "card", id: "gateways" },
      h("h2", {}, "Gateways"),
      gateways === null
        ? h("p", { class: "muted" }, "This server has no gateways.")
        : table(
            ["Gateway", "State", "Endpoints", "Deployments"],
            gateways.gateways.map((g) => [
              g.spec.id,
              stateBadge(g.status.status),
              (g.status.endpoints || []).length ? g.status.endpoints.map((e) => h("div", { class: "mono" }, e)) : "—",
              items.filter((i) => (i.spec.gatewayIds || []).includes(g.spec.id)).map((i) => i.spec.id).join(", ") || "—",
            ]),
            "No gateways: tide gateway create NAME",
          ),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Capacity claims"),
      claims === null
        ? h("p", { class: "muted" }, "This server has no capacity claims.")
        : table(["Claim", "Resources", "Allocated#", "Pending#"], claimRows, "No capacity claims."),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Instance types"),
      table(
        ["Type", "GPU model", "GPUs each#", "Zones"],
        params.resourceParameters.instanceTypes.map((t) => [
          t.id,
          t.gpuModel,
          String(t.gpuCount),
          Object.entries(params.zoneInstanceTypes || {})
            .filter(([, ids]) => ids.includes(t.id))
            .map(([z]) => z)
            .join(", ") || "—",
        ]),
        "No instance types.",
      ),
    ),
  );
}

// -- one deployment ---------------------------------------------------------------------------------

function startBreakdown(r) {
  const t = r.phaseTimes || {};
  const at = (p) => t[p];
  const cap = at("waiting_for_capacity");
  const wts = at("downloading_weights");
  const eng = at("engine_load");
  const rdy = at("ready");
  const parts = {
    capacity: cap !== undefined && wts !== undefined ? wts - cap : null,
    weights: wts !== undefined && eng !== undefined ? eng - wts : null,
    engine: eng !== undefined && rdy !== undefined ? rdy - eng : null,
  };
  const total = Object.values(parts).reduce((a, b) => a + (b || 0), 0);
  const bar = h(
    "div",
    { class: "bar", title: `capacity wait ${secs(parts.capacity)}, weights ${secs(parts.weights)}, engine load ${secs(parts.engine)}` },
    ...Object.entries(parts).map(([k, v]) => (v && total ? h("span", { class: `seg-${k}`, style: `width:${(100 * v) / total}%` }) : null)),
  );
  const text = `capacity ${secs(parts.capacity)} · weights ${secs(parts.weights)} · engine ${secs(parts.engine)}`;
  return h("div", {}, bar, h("div", { class: "muted" }, rdy !== undefined ? text : `${text} (not ready yet)`));
}

function placement(r) {
  const bits = [r.instanceId, r.zone, r.gpuIds && r.gpuIds.length ? `GPUs ${r.gpuIds.join(",")}` : null].filter(Boolean);
  return bits.length ? bits.join(" · ") : h("span", { class: "muted" }, r.url || "—");
}

function load(r) {
  const l = r.load;
  if (!l) return "—";
  const kv = l.kvCacheUsage !== undefined && l.kvCacheUsage !== null ? ` · KV ${percent(l.kvCacheUsage)}` : "";
  // Only engines with a prefix cache report it (vLLM); prefix-aware routing is what raises it.
  const prefix = l.prefixCacheHitRate !== undefined && l.prefixCacheHitRate !== null ? ` · prefix hits ${percent(l.prefixCacheHitRate)}` : "";
  return `${l.runningRequests ?? 0} running · ${l.waitingRequests ?? 0} waiting${kv}${prefix}`;
}

function renderDeploymentShell(id) {
  const chartBox = h("div", { id: "chart" });
  const logs = h("pre", { class: "logs", id: "logs" }, "");
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  follow.addEventListener("change", () => {
    if (state.logs) state.logs.follow = follow.checked;
  });
  document.getElementById("app").replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← Overview")),
    h("h1", {}, id, " ", h("span", { id: "dep-state" })),
    h("div", { class: "grid", id: "dep-stats" }),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Concurrency and replicas (recorded while this page is open)"),
      chartBox,
      h("p", { class: "muted", id: "chart-note" }),
    ),
    h("section", { class: "card" }, h("h2", {}, "Replicas"), h("div", { id: "replicas" })),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Scaling decisions"),
      h("div", { id: "decisions" }),
    ),
    h("div", { class: "two" }, h("section", { class: "card" }, h("h2", {}, "Conditions"), h("div", { id: "conditions" })), h("section", { class: "card" }, h("h2", {}, "Spec (read-only)"), h("pre", { class: "json", id: "spec" }))),
    h(
      "section",
      { class: "card" },
      h("div", { class: "toolbar" }, h("h2", { style: "margin:0" }, "Logs"), h("label", {}, follow, " follow")),
      logs,
    ),
  );
  state.chart = null;
  state.logs = { id, offsets: null, lines: [], follow: true };
}

function drawChart(id) {
  const note = document.getElementById("chart-note");
  const box = document.getElementById("chart");
  const series = state.history[id] || [];
  if (typeof window.uPlot !== "function") {
    note.textContent = "The chart library is not installed (scripts/vendor-ui.sh); the tables below are complete.";
    return;
  }
  const cols = [0, 1, 2, 3, 4, 5].map((i) => series.map((row) => row[i]));
  note.textContent = series.length < 2 ? "Collecting samples every 2 s…" : `${series.length} samples since ${clock(series[0][0])}`;
  const width = Math.max(280, box.clientWidth);
  if (!state.chart) {
    state.chart = new window.uPlot(
      {
        width,
        height: 220,
        series: [
          {},
          { label: "observed (stable)", stroke: "#1769aa", width: 2 },
          { label: "observed (panic)", stroke: "#8e5bd0", dash: [4, 3] },
          { label: "desired", stroke: "#e0a030", width: 2, paths: window.uPlot.paths.stepped({ align: 1 }) },
          { label: "ready", stroke: "#1e7d32", width: 2, paths: window.uPlot.paths.stepped({ align: 1 }) },
          { label: "in flight", stroke: "#b3261e" },
        ],
        axes: [{}, { label: "requests / replicas" }],
        scales: { y: { range: (u, min, max) => [0, Math.max(2, max + 1)] } },
      },
      cols,
      box,
    );
  } else {
    if (Math.abs(state.chart.width - width) > 4) state.chart.setSize({ width, height: 220 });
    state.chart.setData(cols);
  }
}

async function followLogs(id, gen) {
  const logs = state.logs;
  if (!logs || logs.id !== id || (!logs.follow && logs.offsets)) return;
  let path = `/deployments/${encodeURIComponent(id)}/logs?tail=200`;
  if (logs.offsets) {
    path += "&follow=true";
    for (const [replica, offset] of Object.entries(logs.offsets)) path += `&after=${encodeURIComponent(`${replica}:${offset}`)}`;
  }
  const answer = await api(path);
  if (gen !== state.generation || state.logs !== logs) return;
  const first = logs.offsets === null;
  logs.offsets = { ...(logs.offsets || {}), ...answer.offsets };
  for (const [replica, text] of Object.entries(answer.replicas).sort()) {
    for (const line of text.split("\n")) if (line) logs.lines.push(`[${replica}] ${line}`);
  }
  if (logs.lines.length > LOG_LINES) logs.lines.splice(0, logs.lines.length - LOG_LINES);
  const pre = document.getElementById("logs");
  const atBottom = first || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  pre.textContent = logs.lines.length ? logs.lines.join("\n") : "(no log lines yet)";
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function deployment(id, gen) {
  const [answer, traffic] = await Promise.all([api(`/deployments/${encodeURIComponent(id)}`), readTraffic()]);
  if (gen !== state.generation) return;
  const item = answer.deployment;
  id = item.spec.id; // the route also takes a name; the metrics and the history are by id
  record(item, traffic);
  const s = item.status || {};
  const engine = s.engineLoad || {};
  document.getElementById("dep-state").replaceChildren(stateBadge(s.status));
  const stat = (k, v) => h("div", { class: "stat" }, h("div", { class: "v" }, v), h("div", { class: "k" }, k));
  const d = s.lastScalingDecision || {};
  const stats = [
    stat("ready / desired", readyText(s)),
    stat("model", modelName(item.spec)),
    stat("observed concurrency", d.observedStable !== undefined ? d.observedStable.toFixed(1) : "—"),
    stat("requests/s", (state.rates[id] ?? 0).toFixed(2)),
    stat("in flight / queued", `${traffic.inFlight[id] ?? 0} / ${traffic.queued[id] ?? 0}`),
    stat("errors (total)", String(traffic.errors[id] ?? 0)),
    stat("routing", routing(item.spec)),
    engine.prefixCacheHitRate !== undefined ? stat("prefix cache hits", percent(engine.prefixCacheHitRate)) : null,
    stat("generation", `${s.generation ?? "—"} (observed ${s.observedGeneration ?? "—"})`),
  ];
  document.getElementById("dep-stats").replaceChildren(...stats.filter(Boolean));
  const now = Date.now() / 1000;
  document.getElementById("replicas").replaceChildren(
    table(
      ["Replica", "Phase", "Placement", "Uptime#", "Load", "Cold start", "Message"],
      (s.replicas || []).map((r) => [
        h("span", { class: "mono" }, r.id),
        h("span", {}, phaseBadge(r.phase), r.draining ? " draining" : ""),
        placement(r),
        r.phase === "ready" && r.phaseTimes && r.phaseTimes.ready ? secs(now - r.phaseTimes.ready) : "—",
        load(r),
        startBreakdown(r),
        r.message || "",
      ]),
      "No replicas.",
    ),
    h(
      "p",
      { class: "legend muted" },
      h("span", {}, h("i", { class: "seg-capacity" }), "capacity wait"),
      h("span", {}, h("i", { class: "seg-weights" }), "weights"),
      h("span", {}, h("i", { class: "seg-engine" }), "engine load"),
    ),
  );
  document.getElementById("decisions").replaceChildren(
    h(
      "p",
      {},
      h("strong", {}, "Now: "),
      d.reason ? h("span", { class: "reason", id: "latest-reason" }, d.reason) : h("span", { class: "muted" }, "no decision yet"),
      d.time ? h("span", { class: "muted" }, ` (${clock(d.time)})`) : "",
    ),
    h("p", { class: "muted" }, "Changes of the desired count, newest first:"),
    table(
      ["Time", "Mode", "Desired#", "Ready#", "Bounded by", "Reason"],
      (s.scalingHistory || []).map((x) => [clock(x.time), x.mode, String(x.desired), String(x.ready), x.boundedBy || "—", h("span", { class: "reason" }, x.reason)]),
      "No scaling decisions yet (deployments without an autoscaler have none).",
    ),
  );
  document.getElementById("conditions").replaceChildren(
    table(
      ["Type", "Status", "Reason", "Message", "Since"],
      (s.conditions || []).map((c) => [c.type, c.status, c.reason, c.message, clock(c.lastUpdateTime)]),
      "No conditions.",
    ),
  );
  document.getElementById("spec").textContent = JSON.stringify(item.spec, null, 2);
  drawChart(id);
  await followLogs(id, gen);
}

// -- usage ---------------------------------------------------------------------------------------------

const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

async function usage(gen) {
  const range = sessionStorage.getItem("tide-usage-range") || "24h";
  const end = Date.now() / 1000;
  const answer = await api(`/usage?start=${end - RANGES[range]}&end=${end}`, { optional: true });
  if (gen !== state.generation) return;
  const select = h("select", { id: "usage-range" }, Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === range }, `last ${r}`)));
  select.addEventListener("change", () => {
    sessionStorage.setItem("tide-usage-range", select.value);
    navigate();
  });
  if (answer === null) {
    document.getElementById("app").replaceChildren(h("h1", {}, "Usage"), h("p", { class: "muted" }, "This server does not record usage."));
    return;
  }
  const top = Math.max(1, ...answer.deployments.map((d) => d.gpuMinutes));
  document.getElementById("app").replaceChildren(
    h("h1", {}, "Usage"),
    h("div", { class: "toolbar" }, h("label", {}, "Range ", select), h("span", { class: "muted" }, `${new Date(answer.start * 1000).toLocaleString()} – ${new Date(answer.end * 1000).toLocaleString()}`)),
    h("div", { class: "grid" }, h("div", { class: "stat" }, h("div", { class: "v" }, String(answer.totalGpuMinutes)), h("div", { class: "k" }, "GPU-minutes in total"))),
    h(
      "section",
      { class: "card", id: "usage" },
      h("h2", {}, "GPU-minutes per deployment (billed per started minute)"),
      table(
        ["Deployment", "GPU-minutes#", "", "Parked minutes#", "Replica runs#"],
        answer.deployments.map((d) => [
          h("a", { href: `#/d/${encodeURIComponent(d.deploymentId)}` }, d.deploymentId),
          String(d.gpuMinutes),
          h("div", { class: "bar" }, h("span", { class: "seg-weights", style: `width:${(100 * d.gpuMinutes) / top}%` })),
          String(d.parkedMinutes ?? 0),
          String(d.replicas.length),
        ]),
        "No usage in this range.",
      ),
    ),
  );
}

// -- routing and polling ------------------------------------------------------------------------------

function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

async function tick(gen) {
  const match = location.hash.match(/^#\/d\/(.+)$/);
  try {
    if (match) await deployment(decodeURIComponent(match[1]), gen);
    else if (location.hash === "#/usage") await usage(gen);
    else await overview(gen);
    live(true);
    const stale = document.getElementById("banner");
    if (stale) stale.remove();
  } catch (err) {
    if (err instanceof Unauthorized) return showLogin("The API refused that token: check DATA_DIR/api-token.");
    if (gen !== state.generation) return;
    live(false);
    const app = document.getElementById("app");
    let banner = document.getElementById("banner");
    if (!banner) {
      banner = h("p", { id: "banner", class: "card error", role: "alert" });
      app.prepend(banner);
    }
    banner.textContent = `Could not refresh: ${err.message}`;
  }
  // Usage moves by the minute, and re-rendering would close its range menu under the user's pointer.
  const delay = location.hash === "#/usage" ? 30 * POLL_MS : POLL_MS;
  if (gen === state.generation) state.timer = setTimeout(() => tick(gen), delay);
}

function navigate() {
  stopPolling();
  state.generation += 1;
  if (!state.token) return showLogin("");
  document.getElementById("login").hidden = true;
  document.getElementById("logout").hidden = false;
  const match = location.hash.match(/^#\/d\/(.+)$/);
  if (match) renderDeploymentShell(decodeURIComponent(match[1]));
  else document.getElementById("app").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  tick(state.generation);
}

window.addEventListener("hashchange", navigate);
navigate();
