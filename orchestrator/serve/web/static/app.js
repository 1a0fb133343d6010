// The CktLoop design page: a form of targets in designer units -> POST /v1/designs (SI spec fields),
// the job polled with GET /v1/designs/{id} until it ends, each target's winner shown with figures the
// service renders (bode.svg, topology.svg) and its netlist; earlier jobs from GET /v1/designs.
// Plain browser JavaScript, no libraries: the service runs offline.
"use strict";

const POLL_MS = 1000;
const ENDED = new Set(["done", "failed", "cancelled"]);
const EXAMPLES = [ // five targets of orchestrator/campaigns/demo.yaml, in designer units (UGBW in MHz)
  {name: "general-purpose", gain: [60, null], ugbw: [100, null], pm: [60, 90]},
  {name: "high-gain", gain: [120, null], ugbw: [100, null], pm: [45, 90]},
  {name: "fast", gain: [40, null], ugbw: [5000, null], pm: [45, 90]},
  {name: "fast-and-stable", gain: [60, null], ugbw: [1000, null], pm: [60, 90]},
  {name: "very-stable", gain: [60, null], ugbw: [100, null], pm: [75, 90]},
];
const SPECS = [ // API field, label, formatter
  ["gain_db", "DC gain", (v) => `${v.toFixed(1)} dB`],
  ["ugbw_hz", "UGBW", (v) => si(v, "Hz")],
  ["pm_deg", "Phase margin", (v) => `${v.toFixed(1)}°`],
  ["fom", "FoM", (v) => v.toFixed(1)],
];

const $ = (sel, root = document) => root.querySelector(sel);
const state = {job: null, budget: null, timer: null, cards: new Map(), objectUrls: []};

function si(value, unit) {
  const prefixes = [[1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"]];
  for (const [scale, p] of prefixes) {
    if (Math.abs(value) >= scale * 0.9995) return `${(value / scale).toPrecision(3)} ${p}${unit}`;
  }
  return `${value.toPrecision(3)} ${unit}`;
}

// --- talking to the API -------------------------------------------------------------------------

function headers(extra = {}) {
  const token = $("#token").value.trim();
  return token ? {...extra, Authorization: `Bearer ${token}`} : extra;
}

// The API's one-line problem ({"error", "status"}), or FastAPI's {"detail"}, as an Error's message.
function problem(status, body) {
  if (body && typeof body.error === "string") return body.error;
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

async function api(method, path, body) {
  const init = {method, headers: headers(body === undefined ? {} : {"Content-Type": "application/json"})};
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new Error(`the service cannot be reached (${err.message})`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) throw new Error(problem(res.status, data));
  return data;
}

// An image or a download behind the token: fetched with the header, shown from a blob URL.
async function authedUrl(url) {
  if (!$("#token").value.trim()) return url;
  const res = await fetch(url, {headers: headers()});
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const obj = URL.createObjectURL(await res.blob());
  state.objectUrls.push(obj);
  return obj;
}

function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

// --- the form -----------------------------------------------------------------------------------

function addTarget(values) {
  const row = $("#target-row").content.firstElementChild.cloneNode(true);
  $(".remove", row).addEventListener("click", () => { row.remove(); if (!$("#target-rows").children.length) addTarget(); });
  $("#target-rows").appendChild(row);
  if (values) {
    $(".t-name", row).value = values.name;
    for (const [key, pair] of [["gain", values.gain], ["ugbw", values.ugbw], ["pm", values.pm]]) {
      $(`.${key}-min`, row).value = pair[0] ?? "";
      $(`.${key}-max`, row).value = pair[1] ?? "";
    }
  }
  return row;
}

function loadExamples() {
  $("#target-rows").replaceChildren();
  EXAMPLES.forEach(addTarget);
}

function number(input, what) {
  const raw = input.value.trim();
  if (raw === "") return null;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new Error(`${what}: '${raw}' is not a number`);
  return v;
}

// One target row as the API's {"name", "specs": {field: {min, max}}}, in SI units.
function readTarget(row, k) {
  const name = $(".t-name", row).value.trim();
  const label = name || `target ${k + 1}`;
  if (!name) throw new Error(`${label}: give the target a name`);
  const scale = Number($(".ugbw-unit", row).value);
  const specs = {};
  for (const [key, field, factor] of [["gain", "gain_db", 1], ["ugbw", "ugbw_hz", scale], ["pm", "pm_deg", 1], ["fom", "fom", 1]]) {
    const lo = number($(`.${key}-min`, row), `${label} ${field} min`);
    const hi = number($(`.${key}-max`, row), `${label} ${field} max`);
    const bound = {};
    if (lo !== null) bound.min = lo * factor;
    if (hi !== null) bound.max = hi * factor;
    if (Object.keys(bound).length) specs[field] = bound;
  }
  if (!Object.keys(specs).length) throw new Error(`${label}: give at least one bound`);
  return {name, specs};
}

function readJob() {
  const rows = [...$("#target-rows").children];
  const budget = number($("#budget"), "budget");
  const job = {targets: rows.map(readTarget)};
  if (budget !== null) job.budget = budget;
  const name = $("#job-name").value.trim();
  if (name) job.name = name;
  return job;
}

async function submitJob(event) {
  event.preventDefault();
  showError($("#form-error"), "");
  let job;
  try {
    job = readJob();
  } catch (err) {
    showError($("#form-error"), err.message);
    return;
  }
  const button = $("#submit");
  button.disabled = true;
  try {
    const answer = await api("POST", "/v1/designs", job);
    state.budget = job.budget ?? null;
    openJob(answer.id);
    refreshJobs();
  } catch (err) {
    showError($("#form-error"), err.message);
  } finally {
    button.disabled = false;
  }
}

// --- one job ------------------------------------------------------------------------------------

function openJob(id) {
  clearTimeout(state.timer);
  state.objectUrls.forEach(URL.revokeObjectURL);
  state.objectUrls = [];
  state.job = String(id);
  state.cards = new Map();
  $("#winners").replaceChildren();
  $("#job").hidden = false;
  $("#job-title").textContent = `#${id}`;
  showError($("#job-error"), "");
  history.replaceState(null, "", `#job=${encodeURIComponent(id)}`);
  poll();
}

async function poll() {
  const id = state.job;
  if (id === null) return;
  let job;
  try {
    job = await api("GET", `/v1/designs/${encodeURIComponent(id)}`);
  } catch (err) {
    if (id !== state.job) return;
    showError($("#job-error"), err.message);
    state.timer = setTimeout(poll, POLL_MS * 3);
    return;
  }
  if (id !== state.job) return;
  showError($("#job-error"), job.error || "");
  renderJob(job);
  if (!ENDED.has(job.status)) state.timer = setTimeout(poll, POLL_MS);
  else refreshJobs();
}

function targetEnded(t) {
  return ["done", "failed", "cancelled"].includes(t.status) || (t.status === undefined && t.met !== null && t.met !== undefined);
}

function progressOf(job) {
  const targets = job.targets || [];
  const ended = targets.filter(targetEnded).length;
  if (job.status === "done") return [1, ended, targets.length];
  if (typeof job.progress === "number") return [job.progress, ended, targets.length];
  const budget = job.budget ?? state.budget;
  const bySims = budget && targets.length ? (job.simulations || 0) / (budget * targets.length) : 0;
  const byTargets = targets.length ? ended / targets.length : 0;
  return [Math.min(1, Math.max(bySims, byTargets)), ended, targets.length];
}

function renderJob(job) {
  $("#job-title").textContent = job.name ? `#${job.id} · ${job.name}` : `#${job.id}`;
  const status = $("#job-status");
  status.textContent = job.status;
  status.className = `badge ${job.status}`;
  const [fraction, ended, total] = progressOf(job);
  const bar = $("#progress-bar");
  bar.style.width = `${(100 * fraction).toFixed(1)}%`;
  bar.classList.toggle("running", !ENDED.has(job.status));
  const met = (job.targets || []).filter((t) => t.met).length;
  $("#progress-text").textContent =
    `${ended} of ${total} targets finished · ${met} met · ${job.simulations ?? 0} simulations`;
  const report = $("#job-report");
  report.hidden = job.status !== "done";
  report.href = `/v1/designs/${encodeURIComponent(job.id)}/report`;
  $("#cancel-job").hidden = ENDED.has(job.status);
  for (const t of job.targets || []) { // cards in the job's target order, each added once its target ends
    if (targetEnded(t) && !state.cards.has(t.name)) state.cards.set(t.name, winnerCard(job.id, t));
    if (state.cards.has(t.name)) $("#winners").appendChild(state.cards.get(t.name));
  }
}

function asked(bound, fmt) {
  if (!bound) return "—";
  const parts = [];
  if (bound.min !== null && bound.min !== undefined) parts.push(`≥ ${fmt(bound.min)}`);
  if (bound.max !== null && bound.max !== undefined) parts.push(`≤ ${fmt(bound.max)}`);
  return parts.join(", ") || "—";
}

function winnerCard(jobId, t) {
  const card = $("#winner-card").content.firstElementChild.cloneNode(true);
  card.dataset.target = t.name;
  $(".w-name", card).textContent = t.name;
  const badge = $(".w-met", card);
  badge.textContent = t.met ? "met" : "not met";
  badge.classList.add(t.met ? "done" : "failed");
  if (t.source) $(".w-source", card).textContent = `from ${t.source}`;
  const rows = $(".specs tbody", card);
  const bounds = t.specs || t.bounds || {};
  for (const [field, label, fmt] of SPECS) {
    const tr = document.createElement("tr");
    const m = t.measured && t.measured[field];
    const p = t.predicted && t.predicted[field];
    for (const text of [label, asked(bounds[field], fmt), m == null ? "—" : fmt(m), p == null ? "—" : fmt(p)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
  const base = `/v1/designs/${encodeURIComponent(jobId)}/targets/${encodeURIComponent(t.name)}`;
  if (t.circuit) {
    for (const [cls, file] of [["bode", "bode.svg"], ["topology", "topology.svg"]]) {
      authedUrl(`${base}/${file}`).then((url) => { $(`img.${cls}`, card).src = url; })
        .catch((err) => { $(`img.${cls}`, card).alt = `figure unavailable (${err.message})`; });
    }
    const link = $("a.netlist", card);
    link.setAttribute("download", `${t.name}.cir`);
    authedUrl(`${base}/netlist.cir`).then((url) => { link.href = url; }).catch(() => { link.hidden = true; });
  } else {
    $(".figures", card).remove();
    $("a.netlist", card).remove();
    $(".w-reason", card).textContent = t.reason || t.error || "no circuit met this target within the budget";
  }
  return card;
}

async function cancelJob() {
  if (state.job === null) return;
  try {
    await api("DELETE", `/v1/designs/${encodeURIComponent(state.job)}`);
  } catch (err) {
    showError($("#job-error"), err.message);
  }
}

// --- earlier jobs -------------------------------------------------------------------------------

async function refreshJobs() {
  let answer;
  try {
    answer = await api("GET", "/v1/designs");
  } catch (err) {
    showError($("#form-error"), err.message);
    return;
  }
  const jobs = Array.isArray(answer) ? answer : (answer && (answer.jobs || answer.designs)) || [];
  const body = $("#job-rows");
  body.replaceChildren();
  for (const job of jobs) {
    const tr = document.createElement("tr");
    tr.className = "job-row";
    tr.dataset.id = job.id;
    const count = job.targets_total ?? (Array.isArray(job.targets) ? job.targets.length : "—");
    const met = job.targets_met ?? (Array.isArray(job.targets) ? job.targets.filter((t) => t.met).length : "—");
    const when = job.submitted_at || "";
    const cells = [`#${job.id}`, job.name || "", job.status, count, met, job.simulations ?? "—",
      when ? new Date(when).toLocaleString() : ""];
    cells.forEach((text, k) => {
      const td = document.createElement("td");
      if (k === 2) {
        const span = document.createElement("span");
        span.className = `badge ${job.status}`;
        span.textContent = text;
        td.appendChild(span);
      } else {
        td.textContent = String(text);
      }
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => openJob(job.id));
    body.appendChild(tr);
  }
  $("#jobs-empty").hidden = jobs.length > 0;
}

// --- service facts ------------------------------------------------------------------------------

async function refreshModels() {
  const dot = $("#health");
  try {
    const m = await api("GET", "/v1/models");
    $("#models").textContent = `generator ${m.generator.version} · surrogate ${m.surrogate.version}`;
    dot.className = "dot ok";
  } catch (err) {
    $("#models").textContent = err.message;
    dot.className = "dot bad";
  }
}

function start() {
  $("#token").value = sessionStorage.getItem("cktloop-token") || "";
  $("#token").addEventListener("change", () => {
    sessionStorage.setItem("cktloop-token", $("#token").value.trim());
    refreshModels();
    refreshJobs();
  });
  $("#add-target").addEventListener("click", () => $(".t-name", addTarget()).focus());
  $("#load-examples").addEventListener("click", loadExamples);
  $("#job-form").addEventListener("submit", submitJob);
  $("#cancel-job").addEventListener("click", cancelJob);
  $("#refresh-jobs").addEventListener("click", refreshJobs);
  addTarget();
  refreshModels();
  refreshJobs();
  const m = /job=([^&]+)/.exec(location.hash);
  if (m) openJob(decodeURIComponent(m[1]));
}

document.addEventListener("DOMContentLoaded", start);
