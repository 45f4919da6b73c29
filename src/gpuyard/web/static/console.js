// gpuyard console: small helpers, no framework. Every POST sends the page's CSRF token.
"use strict";
const gpuyard = {
  csrf() { return document.querySelector('meta[name="csrf-token"]').content; },
  async post(url, data) {
    const body = new URLSearchParams(data || {});
    const r = await fetch(url, { method: "POST", body, headers: { "X-CSRF-Token": gpuyard.csrf(), "Accept": "application/json" } });
    const text = await r.text();
    try { return { ok: r.ok, status: r.status, data: JSON.parse(text) }; } catch { return { ok: r.ok, status: r.status, data: { msg: text } }; }
  },
  async copy(text, button) {
    try { await navigator.clipboard.writeText(text); } catch { const t = document.createElement("textarea"); t.value = text; document.body.appendChild(t); t.select(); document.execCommand("copy"); t.remove(); }
    if (button) { const was = button.textContent; button.textContent = "Copied"; setTimeout(() => { button.textContent = was; }, 1200); }
  },
};
document.addEventListener("click", (e) => {
  const b = e.target.closest("[data-copy]");
  if (b) { e.preventDefault(); gpuyard.copy(b.dataset.copy, b); }
});
// Logs open on their newest lines (the end of the panel).
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("[data-scroll-end]")) el.scrollTop = el.scrollHeight;
});
document.addEventListener("submit", (e) => {
  const f = e.target.closest("form[data-confirm]");
  if (f && !window.confirm(f.dataset.confirm)) { e.preventDefault(); }
});
