// Instances: the live list without reloading (polls /instances/rows every 2 s: new instances,
// made here or elsewhere, appear; status, message, ports and labels change in place) and, on an
// instance's page, its logs loaded in place. Without this script the pages work as plain links
// and forms (the logs open on their own page).
"use strict";
(() => {
  const POLL_MS = 2000;
  const table = document.getElementById("instances-table");
  const one = document.getElementById("instance");
  const source = table || one;
  const say = document.getElementById("live-status");

  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function setLines(el, lines, empty) {
    if (!el) return;
    el.replaceChildren();
    if (!lines.length) { el.textContent = empty; return; }
    lines.forEach((line, i) => { if (i) el.appendChild(document.createElement("br")); el.appendChild(document.createTextNode(line)); });
  }
  function statusText(r) {
    return r.status + (r.intended_status && r.intended_status !== r.status && r.status !== "loading" ? " → " + r.intended_status : "");
  }
  function setStatus(el, r, text) {
    if (!el) return;
    setText(el, text);
    el.className = "status-" + r.status;
  }

  // A row as the server renders it (instances.html), for an instance that appeared since.
  function newRow(r) {
    const tr = document.createElement("tr");
    tr.id = "instance-" + r.id;
    tr.dataset.id = String(r.id);
    const cell = (id, field, cls) => {
      const td = document.createElement("td");
      if (id) td.id = id + "-" + r.id;
      if (field) td.dataset.field = field;
      if (cls) td.className = cls;
      tr.appendChild(td);
      return td;
    };
    const link = document.createElement("a");
    link.href = "/instances/" + r.id;
    link.textContent = String(r.id);
    cell().appendChild(link);
    cell("label", null, "long");
    cell("status", "status");
    cell().textContent = r.gpus;
    cell(null, null, "mono long").textContent = r.image;
    const price = cell();
    price.textContent = r.price;
    if (r.is_bid) {
      const bid = document.createElement("span");
      bid.className = "hint";
      bid.textContent = "bid";
      price.append(" ", bid);
    }
    cell("ports", "ports", "mono long");
    cell("age", "age");
    cell("msg", "status_msg", "long");
    return tr;
  }

  function applyList(rows) {
    const body = table.tBodies[0];
    const seen = new Set();
    let before = null;  // rows come in the list's order: a new one goes after the one before it
    for (const r of rows) {
      seen.add(String(r.id));
      let tr = document.getElementById("instance-" + r.id);
      if (!tr) {
        tr = newRow(r);
        if (before && before.nextSibling) body.insertBefore(tr, before.nextSibling);
        else if (before) body.appendChild(tr);
        else body.insertBefore(tr, body.firstChild);
      }
      before = tr;
      setStatus(document.getElementById("status-" + r.id), r, statusText(r));
      setText(document.getElementById("msg-" + r.id), r.status_msg);
      setText(document.getElementById("label-" + r.id), r.label);
      setText(document.getElementById("age-" + r.id), r.age);
      const ports = document.getElementById("ports-" + r.id);
      if (ports && ports.textContent !== (r.ports.join("") || "-")) setLines(ports, r.ports, "-");
    }
    for (const tr of body.querySelectorAll("tr[data-id]")) {
      if (!seen.has(tr.dataset.id)) {
        const cell = document.getElementById("status-" + tr.dataset.id);
        if (cell) { cell.textContent = "destroyed"; cell.className = "status-exited"; }
      }
    }
    const any = body.rows.length > 0;
    const count = document.getElementById("instance-count");
    if (count) {
      const n = rows.length;
      setText(count, n + (n === 1 ? " instance" : " instances"));
      count.hidden = n === 0;
    }
    table.hidden = !any;
    const none = document.getElementById("no-instances");
    if (none) none.hidden = any;
  }

  function applyOne(rows) {
    const r = rows[0];
    const status = document.getElementById("instance-status");
    if (!r) { setText(status, "destroyed"); return false; }
    setStatus(status, r, r.status);
    setText(document.getElementById("instance-intended"), r.intended_status);
    setText(document.getElementById("instance-msg"), r.status_msg || "-");
    setText(document.getElementById("instance-label"), r.label || "-");
    const ports = document.getElementById("instance-ports");
    if (ports && ports.textContent !== (r.ports.join("") || "- (published while it runs)")) setLines(ports, r.ports, "- (published while it runs)");
    return true;
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const r = await fetch(source.dataset.rowsUrl, { headers: { "Accept": "application/json" } });
        if (r.status === 200) {
          const data = await r.json();
          const more = table ? (applyList(data.instances), true) : applyOne(data.instances);
          if (say) say.textContent = "";
          if (!more) return;
        } else if (r.redirected || r.status === 401) { return; }
      } catch { if (say) say.textContent = "Lost contact with the server; retrying…"; }
    }
    setTimeout(poll, POLL_MS);
  }
  if (source) setTimeout(poll, POLL_MS);

  // Logs in place on an instance's page.
  const logs = document.getElementById("logs");
  const logsForm = document.getElementById("logs-form");
  if (one && logs && logsForm && logs.dataset.src) {
    async function loadLogs() {
      const params = new URLSearchParams(new FormData(logsForm));
      const r = await fetch(logs.dataset.src + "&" + params.toString(), { headers: { "Accept": "text/plain" } });
      const text = await r.text();
      logs.textContent = r.ok ? (text || "(no output yet)") : "Could not load the logs: " + text;
      logs.scrollTop = logs.scrollHeight;  // the newest lines, at the end
    }
    logsForm.addEventListener("submit", (e) => { e.preventDefault(); logs.textContent = "Loading…"; loadLogs(); });
    loadLogs();
  }
})();
