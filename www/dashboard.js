// dashboard.js: the llmgate dashboard. A static page: every figure comes
// from the gateway's own API with the key typed into the page, which stays
// in this tab's sessionStorage. Nothing from the API is ever parsed as
// HTML: text goes in with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_ITEM = "llmgate-key";
const KEY_HELP = "Enter a client key (sk-...) or the master key above and press \u201cUse key\u201d.";
const state = { role: null, me: null, keys: [], charts: {}, series: null, logRows: [] };
// For tests and the curious: the Chart.js objects by name.
window.llmgateCharts = state.charts;

const theKey = () => sessionStorage.getItem(KEY_ITEM) || "";
const authHeaders = () => (theKey() ? { Authorization: "Bearer " + theKey() } : {});

// An API error: the HTTP status and the gateway's error object.
class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error ? body.error : {};
    super(status + ": " + (e.message || "request failed"));
    this.status = status;
    this.code = e.code || null;
  }
  // The route does not exist on this gateway (an older build): 404 with
  // the router's own code, or 405.
  get unsupported() {
    return this.status === 405 || (this.status === 404 && this.code !== "key_not_found");
  }
}

async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: { ...authHeaders() } };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, init);
  if (opts.raw) {
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
    return r;
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

// --- small DOM helpers ---------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else if (k === "data") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}

function fillTable(table, head, rows) {
  table.replaceChildren();
  const thead = el("thead", null, el("tr", null,
    ...head.map((h) => el("th", { class: h.num ? "num" : null }, h.label || h))));
  const tbody = el("tbody");
  for (const r of rows) tbody.append(r);
  table.append(thead, tbody);
}

function notice(msg, kind) {
  const n = $("notice");
  if (!msg) { n.hidden = true; return; }
  n.hidden = false;
  n.className = "notice" + (kind ? " " + kind : "");
  n.textContent = msg;
}

function say(id, msg, kind) {
  const e = $(id);
  e.className = kind || "";
  e.textContent = msg;
}

const usd = (m, digits = 6) => (m == null ? "-" : (m < 0 ? "-$" : "$") + (Math.abs(m) / 1e6).toFixed(digits));
const num = (n) => (n == null ? "-" : Number(n).toLocaleString("en-US"));
const pad = (n) => String(n).padStart(2, "0");
function utc(sec, withTime = true) {
  const d = new Date(sec * 1000);
  const day = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  return withTime ? day + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) : day;
}
// <input type=datetime-local> read and written as UTC.
const fromLocalInput = (v) => (v ? Math.floor(Date.parse(v + ":00Z") / 1000) : null);
const toLocalInput = (sec) => new Date(sec * 1000).toISOString().slice(0, 16);

// --- charts ----------------------------------------------------------------

const PALETTE = ["#4c7bf3", "#d9473a", "#2e9e5b", "#e9a23b", "#8a5cf6", "#14a3b8",
  "#c2417f", "#6b7280", "#a3b32a", "#f06d2f"];

// Draw (or redraw) the chart named name on canvas id; config is Chart.js's.
function chart(name, id, config) {
  if (typeof window.Chart !== "function") {
    const box = $(id).parentElement;
    box.replaceChildren(el("p", { class: "bad" }, "The chart library did not load: install " +
      "Debian's libjs-chart.js and serve /usr/share/javascript under /javascript/ (README, Dashboard)."));
    return null;
  }
  if (state.charts[name]) state.charts[name].destroy();
  config.options = Object.assign({
    responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
  }, config.options || {});
  state.charts[name] = new window.Chart($(id), config);
  return state.charts[name];
}

function bar(label, spent, limit) {
  const pct = limit > 0 ? Math.min(100, (100 * spent) / limit) : 0;
  const cls = pct >= 100 ? "fill bad" : pct >= 80 ? "fill warn" : "fill";
  const fill = el("div", { class: cls });
  fill.style.width = pct.toFixed(1) + "%";
  return el("div", { class: "bar", data: { spent: String(spent), limit: String(limit) } },
    el("div", { class: "label" }, el("span", null, label),
      el("span", null, usd(spent, 4) + " of " + usd(limit, 2) + " (" + pct.toFixed(1) + "%)")),
    el("div", { class: "track", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": pct.toFixed(1) }, fill));
}

// --- who am I, tabs ---------------------------------------------------------

async function identify() {
  state.role = null;
  state.me = null;
  if (!theKey()) return;
  const u = await api("/usage");
  state.me = u;
  state.role = u.key_id === 0 ? "master" : "client";
}

function showTabs() {
  const nav = $("tabs");
  nav.hidden = !state.role;
  $("welcome").hidden = !!state.role;
  let first = null;
  for (const b of nav.querySelectorAll("button")) {
    const r = b.dataset.role;
    b.hidden = !(r === "any" || r === state.role);
    if (!b.hidden && !first) first = b.dataset.tab;
  }
  const want = sessionStorage.getItem("llmgate-tab");
  const keep = [...nav.querySelectorAll("button")].some((b) => !b.hidden && b.dataset.tab === want);
  if (state.role) openTab(keep ? want : first);
  else for (const t of document.querySelectorAll(".tab")) t.hidden = true;
}

const loaders = {
  mine: loadMine, overview: loadOverview, keys: loadKeys, log: loadLog,
  models: loadModels, play: loadPlayground,
};

function openTab(name) {
  sessionStorage.setItem("llmgate-tab", name);
  for (const b of $("tabs").querySelectorAll("button"))
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + name;
  const tab = $("tab-" + name);
  tab.dataset.state = "loading";
  notice(null);
  loaders[name]()
    .then(() => { tab.dataset.state = "ready"; })
    .catch((e) => {
      tab.dataset.state = "error";
      notice(e.message + (e.status === 401 ? " " + KEY_HELP : ""), "error");
    });
}

// --- a client key ------------------------------------------------------------

async function loadMine() {
  const u = await api("/usage");
  state.me = u;
  const b = u.budgets || {};
  $("mine-who").textContent = "Key " + u.key_name + " \u00b7 agent " + u.agent +
    (u.tier ? " \u00b7 tier " + u.tier : "") + " \u00b7 today " + num(u.today.requests) +
    " requests, " + usd(u.today.cost_micro_usd) + " \u00b7 this month " +
    num(u.month.requests) + " requests, " + usd(u.month.cost_micro_usd);
  const bars = [];
  if (b.key_daily_micro_usd > 0) bars.push(bar("Key, today", b.key_spent_today_micro_usd, b.key_daily_micro_usd));
  if (b.agent_daily_micro_usd > 0) bars.push(bar("Agent " + u.agent + ", today", b.agent_spent_today_micro_usd, b.agent_daily_micro_usd));
  if (b.monthly_micro_usd > 0) bars.push(bar("This month", b.spent_month_micro_usd, b.monthly_micro_usd));
  if (!bars.length) bars.push(el("p", { class: "muted" }, "No budget is set for this key: spent today " +
    usd(b.key_spent_today_micro_usd || u.today.cost_micro_usd) + ", this month " + usd(u.month.cost_micro_usd) + "."));
  $("mine-budgets").replaceChildren(...bars);

  // Requests and cost per UTC day, the days without requests as zeros.
  const now = Math.floor(Date.now() / 1000), from = now - 29 * 86400;
  const rep = await api("/billing/usage?group_by=day&from=" + utc(from, false));
  const byDay = new Map(rep.data.map((r) => [r.group, r]));
  const labels = [], reqs = [], cost = [];
  for (let t = from; t <= now + 1; t += 86400) {
    const d = utc(t, false), r = byDay.get(d);
    if (labels.includes(d)) continue;
    labels.push(d);
    reqs.push(r ? r.requests : 0);
    cost.push(r ? r.cost_micro_usd / 1e6 : 0);
  }
  chart("mine", "chart-mine", {
    type: "bar",
    data: { labels, datasets: [
      { label: "requests", data: reqs, backgroundColor: PALETTE[0], yAxisID: "y" },
      { label: "cost (USD)", data: cost, type: "line", borderColor: PALETTE[1], backgroundColor: PALETTE[1], yAxisID: "y1" },
    ] },
    options: { scales: { y: { beginAtZero: true, position: "left" },
      y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
  });

  const bal = await api("/billing/balance");
  $("mine-balance").replaceChildren(el("p", null, (bal.prepaid ? "Prepaid key. " : "Postpaid key. ") +
    "Balance " + usd(bal.balance_micro_usd) + ", reserved for requests in flight " +
    usd(bal.reserved_micro_usd) + ", available " + usd(bal.available_micro_usd) + "."));
  const tx = await api("/billing/transactions?limit=20");
  fillTable($("mine-tx"), ["time (UTC)", "type", { label: "amount", num: 1 }, { label: "balance after", num: 1 }, "reason", "request"],
    tx.data.map((t) => el("tr", null, el("td", null, utc(t.created)), el("td", null, t.type),
      el("td", { class: "num" }, usd(t.amount_micro_usd)), el("td", { class: "num" }, usd(t.balance_after_micro_usd)),
      el("td", null, t.reason || ""), el("td", { class: "muted" }, t.request_id || ""))));
  if (!tx.data.length) $("mine-tx").replaceChildren(el("tr", null, el("td", { class: "muted" }, "No transactions yet.")));
}

// --- the master key: overview ----------------------------------------------------

// Each range: how many buckets of which size, the current one last.
const RANGES = { "24h": [24, "hour", 3600], "7d": [168, "hour", 3600], "30d": [30, "day", 86400], "90d": [90, "day", 86400] };

async function loadOverview() {
  const [n, bucket, size] = RANGES[$("ov-range").value];
  const now = Math.floor(Date.now() / 1000), from = now - (now % size) - (n - 1) * size;
  const s = await api("/admin/dashboard/series?bucket=" + bucket + "&from=" + from + "&to=" + (now + 1));
  state.series = s;
  const labels = s.t.map((t) => (bucket === "day" ? utc(t, false) : utc(t).slice(5)));
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  $("ov-totals").textContent = num(sum(s.requests)) + " requests, " + num(sum(s.errors)) +
    " errors, " + usd(sum(s.cost_micro_usd), 4) + " in this range";
  chart("requests", "chart-requests", {
    type: "bar",
    data: { labels, datasets: [
      { label: "requests", data: s.requests, backgroundColor: PALETTE[0] },
      { label: "errors", data: s.errors, backgroundColor: PALETTE[1] },
    ] },
    options: { scales: { y: { beginAtZero: true } } },
  });
  chart("latency", "chart-latency", {
    type: "line",
    data: { labels, datasets: [
      { label: "p50", data: s.latency_p50_ms, borderColor: PALETTE[2], backgroundColor: PALETTE[2], spanGaps: true },
      { label: "p95", data: s.latency_p95_ms, borderColor: PALETTE[3], backgroundColor: PALETTE[3], spanGaps: true },
    ] },
    options: { scales: { y: { beginAtZero: true } } },
  });
  chart("cost", "chart-cost", {
    type: "bar",
    data: { labels, datasets: [{ label: "cost (USD)", data: s.cost_micro_usd.map((m) => m / 1e6), backgroundColor: PALETTE[4] }] },
    options: { scales: { y: { beginAtZero: true } } },
  });
  drawBy();
  await Promise.all([loadBudgets(), loadBreakers()]);
}


// A breaker's last error as "message (time)"; the API gives {message, at}.
function lastError(e) {
  if (!e) return "";
  if (typeof e !== "object") return String(e);
  const at = e.at ? new Date(e.at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
  return (e.message || "") + (at ? " (" + at + ")" : "");
}
function drawBy() {
  const s = state.series;
  if (!s) return;
  const dim = $("ov-dim").value, metric = $("ov-metric").value;
  const labels = s.t.map((t) => (s.bucket === "day" ? utc(t, false) : utc(t).slice(5)));
  const scale = metric === "cost_micro_usd" ? 1e6 : 1;
  chart("by", "chart-by", {
    type: "bar",
    data: { labels, datasets: s.by[dim].map((g, i) => ({
      label: g.group || "(none)", data: g[metric].map((v) => v / scale),
      backgroundColor: PALETTE[i % PALETTE.length], stack: "s" })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
}

// Keys with a daily or monthly budget, fullest first.
async function loadBudgets() {
  const keys = (await api("/admin/keys")).data;
  state.keys = keys;
  const budgeted = keys.filter((k) => !k.disabled && (k.daily_budget_micro_usd > 0 || k.monthly_budget_micro_usd > 0)).slice(0, 50);
  const rows = [];
  await Promise.all(budgeted.map(async (k) => {
    const u = await api("/usage?key=" + k.id).catch(() => null);
    if (!u || !u.budgets) return;
    const b = u.budgets;
    if (k.daily_budget_micro_usd > 0)
      rows.push([b.key_spent_today_micro_usd / k.daily_budget_micro_usd,
        bar(k.name + " \u00b7 today", b.key_spent_today_micro_usd, k.daily_budget_micro_usd)]);
    if (k.monthly_budget_micro_usd > 0)
      rows.push([b.spent_month_micro_usd / k.monthly_budget_micro_usd,
        bar(k.name + " \u00b7 this month", b.spent_month_micro_usd, k.monthly_budget_micro_usd)]);
  }));
  rows.sort((a, b) => b[0] - a[0]);
  $("ov-budgets").replaceChildren(...(rows.length ? rows.slice(0, 12).map((r) => r[1]) :
    [el("p", { class: "muted" }, "No key has a budget.")]));
}

async function loadBreakers() {
  const cb = await api("/health/circuit-breakers");
  const t = $("ov-breakers");
  if (!cb.enabled) { t.replaceChildren(el("tr", null, el("td", { class: "muted" }, "Circuit breakers are off."))); return; }
  fillTable(t, ["deployment", "state", { label: "requests", num: 1 }, { label: "failures", num: 1 },
    { label: "trips", num: 1 }, { label: "latency avg ms", num: 1 }, "last error"],
    cb.data.map((d) => el("tr", { data: { state: d.state } }, el("td", null, d.deployment),
      el("td", { class: d.state === "closed" ? "ok" : "bad" }, d.state +
        (d.state !== "closed" && d.retry_after ? " (retry in " + d.retry_after + " s)" : "")),
      el("td", { class: "num" }, num(d.requests)), el("td", { class: "num" }, num(d.failures)),
      el("td", { class: "num" }, num(d.trips)), el("td", { class: "num" }, num(d.latency_ms && d.latency_ms.avg)),
      el("td", { class: "muted" }, lastError(d.last_error)))));
  if (!cb.data.length) t.replaceChildren(el("tr", null, el("td", { class: "muted" }, "No deployment has been called yet.")));
}

// --- the master key: keys ---------------------------------------------------------

function showSecret(secret) {
  $("secret").textContent = secret;
  $("secret-box").hidden = false;
  $("secret-box").scrollIntoView({ block: "nearest" });
}

// Run an action of the keys table, saying what happened; 404/405 from an
// older gateway is explained instead of shown as a failure.
async function keyAction(what, fn) {
  try {
    const msg = await fn();
    notice(msg || null);
    await loadKeys();
  } catch (e) {
    if (e instanceof ApiError && e.unsupported)
      notice(what + ": this gateway does not offer it yet (" + e.status + "). " +
        "Update llmgate to a version with full key management.", "error");
    else notice(what + ": " + e.message, "error");
  }
}

function limitsText(k) {
  const p = [];
  if (k.rpm) p.push(k.rpm + " rpm");
  if (k.tpm) p.push(k.tpm + " tpm");
  if (k.max_concurrent) p.push(k.max_concurrent + " at once");
  return p.join(", ") || "-";
}

async function loadKeys() {
  const keys = (await api("/admin/keys")).data;
  state.keys = keys;
  const now = Date.now() / 1000;
  fillTable($("keys"), [{ label: "id", num: 1 }, "name", "prefix", "agent", "tier", "models", "limits",
    "daily budget", "monthly budget", "prepaid", "status", "expires", "actions"],
    keys.map((k) => {
      const expired = k.expires != null && k.expires <= now;
      const status = k.disabled ? "disabled" : expired ? "expired" : "active";
      const id = encodeURIComponent(k.id);
      return el("tr", { class: k.disabled ? "disabled" : null, data: { keyId: String(k.id), keyName: k.name } },
        el("td", { class: "num" }, k.id), el("td", null, k.name), el("td", { class: "muted" }, k.prefix + "\u2026"),
        el("td", null, k.agent || k.name), el("td", null, k.tier || "-"),
        el("td", null, (k.models || []).join(" ") || "all"), el("td", null, limitsText(k)),
        el("td", null, k.daily_budget_micro_usd ? usd(k.daily_budget_micro_usd, 2) : "-"),
        el("td", null, k.monthly_budget_micro_usd ? usd(k.monthly_budget_micro_usd, 2) : "-"),
        el("td", null, k.prepaid ? "yes" : "no"),
        el("td", { class: status === "active" ? "ok" : "bad" }, status),
        el("td", null, k.expires != null ? utc(k.expires) : "never"),
        el("td", { class: "actions" },
          el("button", { type: "button", data: { act: "edit" }, onclick: () => editKey(k) }, "Edit"),
          el("button", { type: "button", data: { act: k.disabled ? "enable" : "disable" },
            onclick: () => keyAction(k.disabled ? "Enable" : "Disable", async () => {
              await api("/admin/keys/" + id + (k.disabled ? "/enable" : "/disable"), { method: "POST", body: {} });
              return "Key " + k.name + (k.disabled ? " enabled." : " disabled.");
            }) }, k.disabled ? "Enable" : "Disable"),
          el("button", { type: "button", data: { act: "rotate" }, onclick: () => rotateKey(k) }, "Rotate"),
          el("button", { type: "button", data: { act: "delete" }, onclick: () => deleteKey(k) }, "Delete"),
          el("button", { type: "button", data: { act: "money" }, onclick: () => { $("mf-key").value = String(k.id); $("mf-amount").focus(); } }, "Money")));
    }));
  if (!keys.length) $("keys").replaceChildren(el("tr", null, el("td", { class: "muted" }, "No keys yet: create one below.")));
  const opts = keys.map((k) => new Option(k.name + " (" + k.id + ")", String(k.id)));
  const keep = $("mf-key").value;
  $("mf-key").replaceChildren(...opts);
  if (keep) $("mf-key").value = keep;
}

function rotateKey(k) {
  const g = window.prompt("Rotate key " + k.name + ": a new secret, same id, books and history kept.\n" +
    "Seconds the old secret keeps working (0: it stops at once):", "0");
  if (g === null) return;
  const grace = Number(g);
  if (!Number.isInteger(grace) || grace < 0) { notice("Rotate: the grace period must be whole seconds, 0 or more.", "error"); return; }
  keyAction("Rotate", async () => {
    const r = await api("/admin/keys/" + encodeURIComponent(k.id) + "/rotate", { method: "POST", body: { grace_s: grace } });
    if (r.key) showSecret(r.key);
    return "Key " + k.name + " rotated" + (grace ? "; the old secret works " + grace + " s more." : "; the old secret no longer works.");
  });
}

function deleteKey(k) {
  if (!window.confirm("Delete key " + k.name + "? Its books are kept; a key holding money is refused.")) return;
  keyAction("Delete", async () => {
    await api("/admin/keys/" + encodeURIComponent(k.id), { method: "DELETE" });
    return "Key " + k.name + " deleted.";
  });
}

function editKey(k) {
  $("kf-title").textContent = "Edit key " + k.name + " (" + k.id + ")";
  $("kf-id").value = String(k.id);
  $("kf-name").value = k.name;
  $("kf-name").disabled = true;
  $("kf-agent").value = k.agent || "";
  $("kf-tier").value = k.tier || "";
  $("kf-models").value = (k.models || []).join(" ");
  $("kf-rpm").value = k.rpm || "";
  $("kf-tpm").value = k.tpm || "";
  $("kf-conc").value = k.max_concurrent || "";
  $("kf-daily").value = k.daily_budget_micro_usd ? (k.daily_budget_micro_usd / 1e6).toFixed(6) : "";
  $("kf-monthly").value = k.monthly_budget_micro_usd ? (k.monthly_budget_micro_usd / 1e6).toFixed(6) : "";
  $("kf-expires").value = k.expires != null ? toLocalInput(k.expires) : "";
  $("kf-prepaid").checked = !!k.prepaid;
  $("kf-agenthdr").checked = !!k.allow_agent_header;
  $("kf-submit").textContent = "Save limits";
  $("kf-cancel").hidden = false;
  $("keyedit").scrollIntoView({ block: "nearest" });
}

function resetKeyForm() {
  $("keyedit").reset();
  $("kf-id").value = "";
  $("kf-name").disabled = false;
  $("kf-title").textContent = "Create a key";
  $("kf-submit").textContent = "Create key";
  $("kf-cancel").hidden = true;
}

// The create/edit body from the form: every option the API takes.
function keyBody(editing) {
  const intOr = (id) => ($(id).value === "" ? (editing ? 0 : null) : Number($(id).value));
  const b = {
    agent: $("kf-agent").value.trim() || null,
    tier: $("kf-tier").value.trim() || null,
    models: $("kf-models").value.split(/\s+/).filter(Boolean),
    rpm: intOr("kf-rpm"), tpm: intOr("kf-tpm"), max_concurrent: intOr("kf-conc"),
    daily_budget_usd: $("kf-daily").value.trim() || (editing ? "0" : null),
    monthly_budget_usd: $("kf-monthly").value.trim() || (editing ? "0" : null),
    expires: fromLocalInput($("kf-expires").value),
    prepaid: $("kf-prepaid").checked,
    allow_agent_header: $("kf-agenthdr").checked,
  };
  if (!editing) {
    b.name = $("kf-name").value.trim();
    for (const k of Object.keys(b)) if (b[k] === null) delete b[k];
  }
  return b;
}

// A key as keyBody(true) would give it unchanged, to send only what changed.
function keyAsBody(k) {
  const budget = (m) => (m ? (m / 1e6).toFixed(6) : "0");
  return { agent: k.agent || null, tier: k.tier || null, models: k.models || [], rpm: k.rpm || 0,
    tpm: k.tpm || 0, max_concurrent: k.max_concurrent || 0,
    daily_budget_usd: budget(k.daily_budget_micro_usd), monthly_budget_usd: budget(k.monthly_budget_micro_usd),
    expires: k.expires, prepaid: !!k.prepaid, allow_agent_header: !!k.allow_agent_header };
}

function changedFields(k) {
  const now = keyBody(true), was = keyAsBody(k), out = {};
  const money = (v) => Math.round(Number(v) * 1e6);
  for (const f of Object.keys(now)) {
    let same = JSON.stringify(now[f]) === JSON.stringify(was[f]);
    if (f.endsWith("_budget_usd")) same = money(now[f]) === money(was[f]);
    if (f === "expires" && now[f] != null && was[f] != null)
      same = Math.floor(now[f] / 60) === Math.floor(was[f] / 60);	// the form shows minutes
    if (!same) out[f] = now[f];
  }
  return out;
}

async function submitKey(ev) {
  ev.preventDefault();
  const id = $("kf-id").value;
  say("kf-msg", "");
  try {
    if (id) {
      const k = state.keys.find((x) => String(x.id) === id);
      const body = k ? changedFields(k) : keyBody(true);
      if (!Object.keys(body).length) { say("kf-msg", "Nothing changed."); return; }
      await api("/admin/keys/" + encodeURIComponent(id), { method: "POST", body });
      say("kf-msg", "Saved " + Object.keys(body).join(", ") + ".", "ok");
    } else {
      const k = await api("/admin/keys", { method: "POST", body: keyBody(false) });
      showSecret(k.key);
      say("kf-msg", "Created key " + k.name + " (" + k.id + ").", "ok");
    }
    resetKeyForm();
    await loadKeys();
  } catch (e) {
    if (id && e instanceof ApiError && e.unsupported)
      say("kf-msg", "Editing a key's limits needs a newer gateway (POST /admin/keys/ID answered " + e.status + ").", "bad");
    else say("kf-msg", e.message, "bad");
  }
}

async function money(kind) {
  say("mf-msg", "");
  const body = { key: $("mf-key").value, amount_usd: $("mf-amount").value.trim() };
  if ($("mf-reason").value.trim()) body.reason = $("mf-reason").value.trim();
  try {
    const r = await api("/admin/" + kind, { method: "POST", body });
    say("mf-msg", (kind === "topup" ? "Topped up " : "Adjusted ") + r.key_name + ": balance " + usd(r.balance_micro_usd) + ".", "ok");
    $("money").reset();
    $("mf-key").value = String(r.key_id);
  } catch (e) { say("mf-msg", e.message, "bad"); }
}

// --- the master key: usage log ----------------------------------------------------

function logQuery() {
  const q = new URLSearchParams();
  const from = fromLocalInput($("lf-from").value), to = fromLocalInput($("lf-to").value);
  if (from != null) q.set("from", from);
  if (to != null) q.set("to", to + 60);	// the whole minute shown
  for (const [p, id] of [["key", "lf-key"], ["agent", "lf-agent"], ["model", "lf-model"], ["status", "lf-status"]])
    if ($(id).value.trim()) q.set(p, $(id).value.trim());
  q.set("limit", $("lf-limit").value || "200");
  return q;
}

const LOG_COLS = [["time (UTC)", (r) => utc(r.time_us / 1e6) + ":" + pad(Math.floor(r.time_us / 1e6) % 60)],
  ["key", (r) => (r.key_id === 0 ? "master" : r.key_name + " (" + r.key_id + ")")], ["agent", (r) => r.agent],
  ["model", (r) => r.served || r.requested], ["provider", (r) => r.provider], ["status", (r) => r.status],
  ["latency ms", (r) => r.latency_ms, 1], ["prompt", (r) => r.prompt_tokens, 1],
  ["completion", (r) => r.completion_tokens, 1], ["cost USD", (r) => r.cost_usd, 1],
  ["stream", (r) => (r.stream ? "yes" : "")], ["request id", (r) => r.request_id]];

async function loadLog(ev) {
  if (ev) ev.preventDefault();
  if (!state.keys.length || !ev) {
    state.keys = (await api("/admin/keys")).data;
    const keep = $("lf-key").value;
    $("lf-key").replaceChildren(new Option("any", ""), new Option("master", "master"),
      ...state.keys.map((k) => new Option(k.name + " (" + k.id + ")", String(k.id))));
    $("lf-key").value = keep;
  }
  const r = await api("/admin/dashboard/log?" + logQuery());
  state.logRows = r.data;
  $("lf-msg").textContent = r.data.length + " rows shown of " + r.matched + " matching" +
    (r.has_more ? " (newest first; raise Rows for more)" : "");
  const models = [...new Set(r.data.map((x) => x.served || x.requested))];
  $("lf-models").replaceChildren(...models.map((m) => new Option(m)));
  fillTable($("log"), LOG_COLS.map(([label, , n]) => ({ label, num: n })),
    r.data.map((x) => el("tr", { class: x.status >= 400 ? "bad" : null, data: { requestId: x.request_id } },
      ...LOG_COLS.map(([, f, n]) => el("td", { class: n ? "num" : null }, f(x))))));
}

function csvCell(v) {
  const s = v == null ? "" : String(v);
  // A leading = + - @ would be a formula to a spreadsheet: quote it away.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? "'" + s : s;
  return /[",\n\r]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
}

function download(name, text, type) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function exportCsv() {
  const cols = ["time_us", "request_id", "key_id", "key_name", "agent", "tier", "route", "requested", "served",
    "provider", "status", "attempts", "stream", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens",
    "cached_tokens", "cache_write_tokens", "estimated", "cost_usd", "client_aborted"];
  const lines = [cols.join(",")].concat(state.logRows.map((r) => cols.map((c) => csvCell(r[c])).join(",")));
  download("llmgate-usage.csv", lines.join("\r\n") + "\r\n", "text/csv");
}

async function reportCsv() {
  const q = logQuery();
  q.delete("limit"); q.delete("status");
  q.set("group_by", "day,model");
  q.set("format", "csv");
  try {
    const r = await api("/admin/usage?" + q, { raw: true });
    download("llmgate-report.csv", await r.text(), "text/csv");
    say("lf-msg", "Report downloaded.", "ok");
  } catch (e) {
    say("lf-msg", e instanceof ApiError && e.unsupported ?
      "Grouped reports (GET /admin/usage) need a newer gateway (" + e.status + "); \u201cExport CSV\u201d exports the rows shown." :
      e.message, "bad");
  }
}

// --- models and the playground ------------------------------------------------------

async function loadModels() {
  const p = await api("/v1/providers");
  fillTable($("providers"), ["name", "type", "models", "state"], p.data.map((x) =>
    el("tr", null, el("td", null, x.name + (x.default ? " (default)" : "")), el("td", null, x.type),
      el("td", null, x.models), el("td", { class: x.available ? "ok" : "bad" }, x.available ? "available" : x.reason))));
  const m = await api("/v1/models");
  fillTable($("models"), ["model", "provider", { label: "input USD / 1M", num: 1 }, { label: "output USD / 1M", num: 1 }, "max tokens"],
    m.data.map((x) => {
      const l = x.llmgate || {};
      return el("tr", { data: { model: x.id } }, el("td", null, x.id), el("td", null, l.provider || x.owned_by || ""),
        el("td", { class: "num" }, l.input_price_usd || "-"), el("td", { class: "num" }, l.output_price_usd || "-"),
        el("td", { class: "num" }, l.max_tokens || "-"));
    }));
}

async function loadPlayground() {
  if ($("model").options.length) return;
  const m = await api("/v1/models");
  $("model").replaceChildren(...m.data.map((x) => new Option(x.id, x.id)));
}

async function send() {
  const out = $("answer");
  out.textContent = "";
  $("meta").textContent = "";
  const r = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ model: $("model").value, stream: true,
      messages: [{ role: "user", content: $("prompt").value }] }),
  });
  $("meta").textContent = "served by " + (r.headers.get("X-Llmgate-Model") || "-") +
    ", attempts " + (r.headers.get("X-Llmgate-Attempts") || "-");
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    out.textContent = r.status + ": " + (body.error ? body.error.message : "") +
      (r.status === 401 ? " " + KEY_HELP : "");
    return;
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const d = JSON.parse(ev.slice(6));
      if (d.error) { out.append("\n[error] " + d.error.message); continue; }
      for (const c of d.choices || []) out.append((c.delta && c.delta.content) || "");
    }
  }
  out.dataset.done = "1";
}

// --- start ---------------------------------------------------------------------------

async function start() {
  document.body.dataset.state = "loading";
  try {
    const h = await api("/health");
    $("health").textContent = h.status + " \u00b7 " + h.version;
  } catch (e) { $("health").textContent = "unreachable: " + e.message; }
  try {
    await identify();
    if (state.me) $("me").textContent = "";
  } catch (e) {
    state.role = null;
    $("me").textContent = e.message + (e.status === 401 ? " " + KEY_HELP : "");
    $("me").className = "bad";
  }
  showTabs();
  document.body.dataset.role = state.role || "none";
  document.body.dataset.state = "ready";
}

function wire() {
  $("key").value = theKey();
  $("keyform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
    sessionStorage.removeItem("llmgate-tab");
    start();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_ITEM);
    sessionStorage.removeItem("llmgate-tab");
    $("key").value = "";
    start();
  });
  for (const b of $("tabs").querySelectorAll("button")) b.addEventListener("click", () => openTab(b.dataset.tab));
  $("ov-range").addEventListener("change", () => openTab("overview"));
  $("ov-refresh").addEventListener("click", () => openTab("overview"));
  $("ov-dim").addEventListener("change", drawBy);
  $("ov-metric").addEventListener("change", drawBy);
  $("keyedit").addEventListener("submit", submitKey);
  $("kf-cancel").addEventListener("click", resetKeyForm);
  $("secret-copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("secret").textContent));
  $("secret-done").addEventListener("click", () => { $("secret").textContent = ""; $("secret-box").hidden = true; });
  $("money").addEventListener("submit", (ev) => { ev.preventDefault(); money("topup"); });
  $("mf-adjust").addEventListener("click", () => money("adjust"));
  $("logform").addEventListener("submit", (ev) => {
    const tab = $("tab-log");
    tab.dataset.state = "loading";
    loadLog(ev).then(() => { tab.dataset.state = "ready"; notice(null); })
      .catch((e) => { tab.dataset.state = "error"; notice(e.message, "error"); });
  });
  $("lf-csv").addEventListener("click", exportCsv);
  $("lf-report").addEventListener("click", reportCsv);
  $("send").addEventListener("click", () => send().catch((e) => { $("answer").textContent = e.message; }));
}

wire();
start();
