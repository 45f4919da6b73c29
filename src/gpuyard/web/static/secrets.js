// Secrets page: "Reveal" fetches one value (POST /secrets/reveal, CSRF header) and shows it in its
// row; "Hide" masks it again. Without JavaScript the same button reloads the page with that row shown.
"use strict";
(function () {
  const MASK = "\u2022\u2022\u2022\u2022\u2022";
  document.querySelectorAll("form.reveal-form").forEach((form) => {
    const name = form.querySelector('input[name="name"]').value;
    const button = form.querySelector("button");
    const value = document.getElementById(button.getAttribute("aria-controls"));
    let error = null;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!value.dataset.hidden) {
        value.textContent = MASK;
        value.dataset.hidden = "1";
        button.textContent = "Reveal";
        button.setAttribute("aria-label", `Reveal the value of ${name}`);
        return;
      }
      const answer = await gpuyard.post("/secrets/reveal", { name });
      if (!answer.ok || !answer.data.ok) {
        if (!error) { error = document.createElement("p"); error.className = "field-error"; error.setAttribute("role", "alert"); form.after(error); }
        error.textContent = (answer.data && answer.data.msg) || `could not read ${name}`;
        return;
      }
      if (error) { error.remove(); error = null; }
      value.textContent = answer.data.value;
      delete value.dataset.hidden;
      button.textContent = "Hide";
      button.setAttribute("aria-label", `Hide the value of ${name}`);
    });
  });
})();
