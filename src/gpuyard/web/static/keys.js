// Keys page: the permission picker. Ticking a category chooses "only the categories ticked",
// typing a document chooses "a permission document"; the line under the form shows what the
// form sends. The server checks it all again (the same checks as the API).
"use strict";
(function () {
  const form = document.getElementById("key-form");
  if (!form) { return; }
  const preview = document.getElementById("permission-preview");
  const doc = document.getElementById("document");
  const boxes = Array.from(form.querySelectorAll('input[name="category"]'));
  const choose = (value) => { form.querySelector(`input[name="access"][value="${value}"]`).checked = true; };
  function access() { const r = form.querySelector('input[name="access"]:checked'); return r ? r.value : "categories"; }
  function show() {
    const how = access();
    if (how === "full") { preview.textContent = "no permission document (a full key)"; return; }
    if (how === "document") { preview.textContent = doc.value.trim() || "(paste a document)"; return; }
    const api = {};
    boxes.filter((b) => b.checked).forEach((b) => { api[b.value] = {}; });
    preview.textContent = Object.keys(api).length ? JSON.stringify({ api }) : "(tick at least one category)";
  }
  boxes.forEach((b) => b.addEventListener("change", () => { if (b.checked) { choose("categories"); } show(); }));
  doc.addEventListener("input", () => { if (doc.value.trim()) { choose("document"); } show(); });
  form.querySelectorAll('input[name="access"]').forEach((r) => r.addEventListener("change", show));
  show();
})();
