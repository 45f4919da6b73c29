// Launch page: the offers list follows the filter box as you type, the volume choices follow the
// chosen offer's machine, and only the fields of the chosen volume option are enabled. Without
// this script the page works as plain forms.
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
    const before = chosenOffer();
    if (holder && fresh) holder.replaceWith(fresh);
    if (chosenOffer() !== before) refreshVolumes();
    const bad = !r.ok;
    filters.setAttribute("aria-invalid", bad ? "true" : "false");
    filters.setAttribute("aria-describedby", bad ? "filters-hint filters-error" : "filters-hint");
  }
  function chosenOffer() {
    const picked = form.querySelector('input[name="offer"]:checked');
    return picked ? picked.value : "";
  }
  // Volumes live on one machine: the choices are those of the chosen offer's machine.
  let volumeSeq = 0;
  async function refreshVolumes() {
    const params = new URLSearchParams({ offer: chosenOffer() });
    for (const key of ["volume_offer", "volume_id"]) {
      const field = form.elements[key];
      if (field && field.value) params.set(key, field.value);
    }
    const mine = ++volumeSeq;
    const r = await fetch("/launch/volumes?" + params.toString(), { headers: { "Accept": "text/html" } });
    if (mine !== volumeSeq || !r.ok) return;
    const box = document.createElement("div");
    box.innerHTML = await r.text();
    const fresh = box.querySelector("#volume-choices");
    const holder = document.getElementById("volume-choices");
    if (holder && fresh) holder.replaceWith(fresh);
    volumeMode();
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
  form.addEventListener("change", (e) => {
    if (e.target.name === "volume_mode") volumeMode();
    if (e.target.name === "offer") refreshVolumes();
  });
  volumeMode();
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
