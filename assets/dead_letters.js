// The dead-letter console: groups, filters, a message's details, and replay or
// delete of one message or of every message a filter matches, the latter only
// after a dry run has shown how many that is. Talks only to this service. The
// API key is kept in sessionStorage: this tab only, gone when it closes.
"use strict";

const KEY_SLOT = "blog.apiKey";
const PAGE = 50;
const $ = (id) => document.getElementById(id);

const state = { offset: 0, next: null, counted: null };

function apiKey() { return sessionStorage.getItem(KEY_SLOT) || ""; }

function setStatus(text, tone) {
  $("status").textContent = text;
  $("status").dataset.tone = tone || "";
}

async function call(method, path, body) {
  const headers = { "Authorization": "Bearer " + apiKey() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const detail = data && data.detail ? data.detail : res.statusText;
    const fields = data && data.errors ? " (" + data.errors.map((e) => e.field + ": " + e.message).join("; ") + ")" : "";
    throw new Error(res.status + " " + detail + fields);
  }
  return data;
}

// The filter as the API takes it: only the fields that are set.
function filter() {
  const f = {};
  const worker = $("f-worker").value.trim(), type = $("f-type").value.trim(), reason = $("f-reason").value.trim();
  if (worker) f.worker = worker;
  if (type) f.type = type;
  if (reason) f.reason = reason;
  if ($("f-since").value) f.since = new Date($("f-since").value).toISOString();
  if ($("f-group").value) f.group = $("f-group").value;
  return f;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

function renderGroups(groups) {
  const rows = $("group-rows");
  rows.replaceChildren();
  const workers = new Set();
  for (const g of groups) {
    workers.add(g.worker);
    const tr = document.createElement("tr");
    tr.dataset.worker = g.worker;
    tr.dataset.count = g.count;
    if ($("f-group").value === g.fingerprint) tr.className = "selected";
    cell(tr, g.worker);
    cell(tr, g.fingerprint, "reason").title = g.example_reason;
    cell(tr, String(g.count), "num");
    cell(tr, when(g.first_seen));
    cell(tr, when(g.last_seen));
    cell(tr, "").appendChild(button("Select", "select-group", () => selectGroup(g)));
    rows.appendChild(tr);
  }
  const list = $("workers");
  for (const w of workers) {
    if (![...list.options].some((o) => o.value === w)) {
      const o = document.createElement("option");
      o.value = w;
      list.appendChild(o);
    }
  }
}

function renderWaiting(lots, levels) {
  const lotRows = $("lot-rows");
  lotRows.replaceChildren();
  for (const lot of lots) {
    const tr = document.createElement("tr");
    tr.dataset.worker = lot.worker;
    cell(tr, lot.worker);
    cell(tr, String(lot.parked), "num");
    lotRows.appendChild(tr);
  }
  const retryRows = $("retry-rows");
  retryRows.replaceChildren();
  for (const level of levels.filter((l) => l.waiting > 0)) {
    const tr = document.createElement("tr");
    cell(tr, level.worker);
    cell(tr, level.level);
    cell(tr, String(level.waiting), "num");
    retryRows.appendChild(tr);
  }
  if (!retryRows.children.length) {
    const tr = document.createElement("tr");
    cell(tr, "nothing waiting for a retry").colSpan = 3;
    retryRows.appendChild(tr);
  }
}

function renderMessages(items) {
  const rows = $("message-rows");
  rows.replaceChildren();
  for (const m of items) {
    const tr = document.createElement("tr");
    tr.dataset.id = m.id;
    tr.dataset.worker = m.worker;
    cell(tr, when(m.parked_at));
    cell(tr, m.worker);
    cell(tr, m.routing_key);
    cell(tr, m.reason, "reason");
    cell(tr, String(m.attempts), "num");
    const actions = cell(tr, "");
    actions.appendChild(button("Details", "show", () => showDetail(m)));
    actions.appendChild(button("Replay", "replay-one", () => actOnOne(m, "replay")));
    actions.appendChild(button("Delete", "delete-one danger", () => actOnOne(m, "delete")));
    rows.appendChild(tr);
  }
}

function showDetail(m) {
  $("detail").hidden = false;
  $("d-id").textContent = m.id;
  const facts = $("d-facts");
  facts.replaceChildren();
  const rows = [["Worker", m.worker], ["Event type", m.routing_key], ["Attempts", String(m.attempts)], ["Reason", m.reason],
    ["Parked at", when(m.parked_at)], ["Message id", m.message_id || "–"], ["Correlation id", m.correlation_id || "–"]];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    facts.append(dt, dd);
  }
  $("d-headers").textContent = JSON.stringify(m.headers || {}, null, 2);
  $("d-body").textContent = typeof m.body === "string" ? m.body : JSON.stringify(m.body, null, 2);
}

async function load() {
  if (!apiKey()) {
    $("console").dataset.state = "no-key";
    setStatus("Enter the API key: parked messages may hold customer data.");
    return;
  }
  const q = new URLSearchParams(filter());
  q.set("limit", PAGE);
  q.set("offset", state.offset);
  try {
    const page = await call("GET", "/dead-letters?" + q.toString());
    renderGroups(page.groups);
    renderMessages(page.items);
    renderWaiting(page.lots, page.retry_levels);
    state.next = page.next_offset;
    $("prev-page").disabled = state.offset === 0;
    $("next-page").disabled = page.next_offset == null;
    const shown = page.items.length ? (state.offset + 1) + "–" + (state.offset + page.items.length) : "0";
    $("page-info").textContent = shown + " of " + page.total + " matching";
    const parked = page.lots.reduce((sum, lot) => sum + lot.parked, 0);
    const warn = page.parked_warn > 0 && parked >= page.parked_warn;
    $("warning").hidden = !warn;
    $("warning").textContent = warn ? parked + " messages are parked, at or over the warning threshold of " + page.parked_warn + " (BLOG_PARKED_WARN)." : "";
    $("console").dataset.state = "live";
    $("console").dataset.total = page.total;
    setStatus(page.total + " parked messages match · " + page.groups.length + " groups · updated " + new Date().toLocaleTimeString());
  } catch (e) {
    $("console").dataset.state = "error";
    setStatus(String(e.message || e), "bad");
  }
}

// A new filter voids the last count: a bulk action needs a count of what it will touch.
function filterChanged() {
  state.offset = 0;
  state.counted = null;
  $("bulk-matched").textContent = "";
  $("bulk-matched").dataset.count = "";
  $("bulk-replay").disabled = true;
  $("bulk-delete").disabled = true;
  $("bulk-replay").textContent = "Replay them";
  $("bulk-delete").textContent = "Delete them";
}

function selectGroup(g) {
  $("f-worker").value = g.worker;
  $("f-group").value = g.fingerprint;
  $("f-group-label").hidden = false;
  $("f-group-label").textContent = "group: " + g.fingerprint;
  filterChanged();
  load();
}

async function countMatching() {
  const f = filter();
  try {
    const outcome = await call("POST", "/dead-letters/replay", Object.assign({ dry_run: true }, f));
    state.counted = { filter: JSON.stringify(f), count: outcome.count };
    $("bulk-matched").textContent = outcome.count + " messages match";
    $("bulk-matched").dataset.count = outcome.count;
    $("bulk-replay").disabled = outcome.count === 0;
    $("bulk-delete").disabled = outcome.count === 0;
    $("bulk-replay").textContent = "Replay " + outcome.count;
    $("bulk-delete").textContent = "Delete " + outcome.count;
  } catch (e) {
    setStatus(String(e.message || e), "bad");
  }
}

async function bulk(action) {
  const f = filter();
  if (!state.counted || state.counted.filter !== JSON.stringify(f)) {
    setStatus("Count the matching messages first.", "bad");
    return;
  }
  $("bulk-replay").disabled = true;
  $("bulk-delete").disabled = true;
  $("bulk-result").textContent = (action === "replay" ? "Replaying " : "Deleting ") + state.counted.count + "…";
  try {
    const outcome = await call("POST", "/dead-letters/" + action, f);
    $("bulk-result").textContent = (action === "replay" ? "Replayed " : "Deleted ") + outcome.count;
    $("bulk-result").dataset.done = action + ":" + outcome.count;
  } catch (e) {
    $("bulk-result").textContent = "";
    setStatus(String(e.message || e), "bad");
  }
  filterChanged();
  load();
}

async function actOnOne(m, action) {
  try {
    const id = encodeURIComponent(m.id);
    if (action === "replay") await call("POST", "/dead-letters/" + id + "/replay", {});
    else await call("DELETE", "/dead-letters/" + id);
    setStatus((action === "replay" ? "Replayed " : "Deleted ") + m.id);
  } catch (e) {
    setStatus(String(e.message || e), "bad");
  }
  filterChanged();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_SLOT, $("api-key").value.trim());
    $("api-key").value = "";
    load();
  });
  $("forget-key").addEventListener("click", () => { sessionStorage.removeItem(KEY_SLOT); load(); });
  $("filter").addEventListener("submit", (e) => { e.preventDefault(); filterChanged(); load(); });
  $("filter").addEventListener("input", filterChanged);
  $("clear-filter").addEventListener("click", () => {
    $("filter").reset();
    $("f-group").value = "";
    $("f-group-label").hidden = true;
    filterChanged();
    load();
  });
  $("bulk-count").addEventListener("click", countMatching);
  $("bulk-replay").addEventListener("click", () => bulk("replay"));
  $("bulk-delete").addEventListener("click", () => bulk("delete"));
  $("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  $("next-page").addEventListener("click", () => { if (state.next != null) { state.offset = state.next; load(); } });
  load();
});
