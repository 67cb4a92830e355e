// Runbook buttons and run progress: a little JS over server-rendered HTML.
// - "Check"/"Run" post the form with fetch and show the verdict fragment inline.
// - A run's detail page polls its steps fragment while the run is active (queued,
//   running or cancelling), with the gates each step checked.
(function () {
  "use strict";
  if (window.runbooksWired) return;
  window.runbooksWired = true;

  // The run page's Cancel asks first; Resume and Cancel are plain posts (the page reloads
  // on the run, whose steps are then polled again while it is active).
  document.addEventListener("submit", function (event) {
    const form = event.target.closest && event.target.closest("form.run-control");
    if (form && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  document.addEventListener("submit", async function (event) {
    const form = event.target.closest && event.target.closest("form.runbook-form");
    if (!form) return;
    event.preventDefault();
    const button = event.submitter;
    const isRun = button && button.name === "dry_run" && button.value === "0";
    if (isRun && form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const body = new FormData(form);
    if (button && button.name) body.set(button.name, button.value);
    const panel = form.closest(".runbook-actions");
    const output = panel && panel.querySelector(".runbook-verdict");
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      // Not form.action: the hidden input named "action" shadows that property.
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      const html = await response.text();
      if (output) output.innerHTML = response.ok ? html : '<p class="error">' + response.status + " " + response.statusText + "</p>";
      if (isRun) refreshRuns(panel);
    } catch (err) {
      if (output) output.textContent = "The console did not answer: " + err;
    } finally {
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  });

  // The live feed refreshes the runs list on run/step events; refresh once now too,
  // so the new run shows even before its first event arrives.
  async function refreshRuns(panel) {
    const url = panel && panel.dataset.runsUrl;
    const runs = document.querySelector('[data-testid="runbook-runs"]');
    if (!url || !runs) return;
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) runs.outerHTML = await response.text();
    document.dispatchEvent(new CustomEvent("runbook:requested"));
  }

  function pollSteps(section) {
    const url = section.dataset.pollUrl;
    async function tick() {
      const steps = section.querySelector('[data-testid="run-steps"]');
      if (!steps || steps.dataset.active !== "true") return;
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) section.innerHTML = await response.text();
      } catch (err) {
        /* the next tick tries again */
      }
      setTimeout(tick, document.hidden ? 5000 : 1000);
    }
    setTimeout(tick, 1000);
  }

  function start() {
    document.querySelectorAll("[data-poll-url]").forEach(pollSteps);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
