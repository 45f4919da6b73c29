// Launch page: the offers list follows the filter box as you type, and only the fields of the
// chosen volume option are enabled. Without this script the page works as plain forms.
"use strict";
(() => {
  const form = document.getElementById("launch-form");
  if (!form) return;
  const filters = document.getElementById("filters");
  let timer = null;
  let seq = 0;
  async function refreshOffers() {
    const params = new URLSearchParams();
    for (const key of ["template", "filters", "offer", "disk", "price"]) {
      const field = form.elements[key];
      const value = field && (field.value !== undefined ? field.value : "");
      if (value) params.set(key, value);
    }
    const mine = ++seq;
    const r = await fetch("/launch/offers?" + params.toString(), { headers: { "Accept": "text/html" } });
    if (mine !== seq) return;  // a newer request is on its way
    const holder = document.getElementById("offers");
    const html = await r.text();
    const box = document.createElement("div");
    box.innerHTML = html;
    const fresh = box.querySelector("#offers");
    if (holder && fresh) holder.replaceWith(fresh);
    sameMachine();
    const bad = !r.ok;
    filters.setAttribute("aria-invalid", bad ? "true" : "false");
    filters.setAttribute("aria-describedby", bad ? "filters-hint filters-error" : "filters-hint");
  }
  if (filters) {
    filters.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refreshOffers, 350); });
  }
  for (const key of ["disk", "price"]) {
    const field = document.getElementById(key);
    if (field) field.addEventListener("change", refreshOffers);
  }
  function volumeMode() {
    const picked = form.querySelector('input[name="volume_mode"]:checked');
    const mode = picked ? picked.value : "none";
    for (const box of form.querySelectorAll("[data-volume]")) {
      const on = box.dataset.volume.split(" ").includes(mode);
      box.hidden = !on;
      for (const el of box.querySelectorAll("input, select")) el.disabled = !on;
    }
  }
  // Volumes live on one machine: offer only those of the chosen offer's machine.
  function sameMachine() {
    const picked = form.querySelector('input[name="offer"]:checked');
    const row = picked && picked.closest("tr[data-machine]");
    const machine = row ? row.dataset.machine : null;
    for (const option of form.querySelectorAll("#volume_offer option[data-machine], #volume_id option[data-machine]")) {
      option.hidden = machine !== null && option.dataset.machine !== machine;
      if (option.hidden && option.selected) option.selected = false;
    }
  }
  form.addEventListener("change", (e) => {
    if (e.target.name === "volume_mode") volumeMode();
    if (e.target.name === "offer") sameMachine();
  });
  volumeMode();
  sameMachine();
  const first = document.querySelector(".field-error[role=alert]");
  const preview = document.getElementById("preview");
  if (first) {
    const id = first.id.replace(/-error$/, "");
    const field = document.getElementById(id) || first;
    field.focus();
  } else if (preview) {
    preview.focus();
    preview.scrollIntoView({ block: "start" });
  }
})();
