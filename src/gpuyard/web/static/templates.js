// Template pages: the env editor's live preview. The server parses (POST /templates/env-preview,
// the same parser the API uses) and this script only shows the answer.
"use strict";
(function () {
  const field = document.getElementById("env");
  const table = document.getElementById("env-preview");
  if (!field || !table) { return; }
  let error = document.getElementById("env-error");
  if (!error) {
    error = document.createElement("p");
    error.className = "field-error";
    error.id = "env-error";
    error.hidden = true;
    field.insertAdjacentElement("afterend", error);
  }
  error.setAttribute("aria-live", "polite");
  const body = table.tBodies[0];
  let timer = null;
  let asked = 0;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }
  function row(kind, name, value, monoValue = true) {
    const tr = document.createElement("tr");
    tr.dataset.kind = kind;
    tr.append(cell(kind, ""), cell(name, "mono long"), cell(value, monoValue ? "mono long" : "long"));
    return tr;
  }
  function describedBy(on) {
    const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== "env-error");
    if (on) { ids.unshift("env-error"); }
    if (ids.length) { field.setAttribute("aria-describedby", ids.join(" ")); } else { field.removeAttribute("aria-describedby"); }
  }
  function show(answer) {
    body.replaceChildren();
    if (!answer || answer.ok !== true) {
      error.textContent = (answer && answer.msg) || "could not check the env";
      error.hidden = false;
      field.setAttribute("aria-invalid", "true");
      describedBy(true);
      table.hidden = true;
      return;
    }
    error.textContent = "";
    error.hidden = true;
    field.removeAttribute("aria-invalid");
    describedBy(false);
    for (const [k, v] of answer.variables) { body.append(row("variable", k, v)); }
    for (const p of answer.ports) {
      body.append(row("port", p.spec, "container " + p.container + "/" + p.proto + ", host port " + p.published, false));
    }
    for (const [f, v] of answer.options) { body.append(row("option", f, v)); }
    table.hidden = body.rows.length === 0;
  }
  async function check() {
    const mine = ++asked;
    const r = await gpuyard.post("/templates/env-preview", { env: field.value });
    if (mine !== asked) { return; } // an answer to older text
    show(r.ok ? r.data : { ok: false, msg: r.data && r.data.msg });
  }
  field.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
})();
