// Runbook buttons and run progress: a little JS over server-rendered HTML.
// - "Check"/"Run" post the form with fetch and show the verdict fragment inline.
// - A run's detail page polls its steps fragment while the run is active (queued,
//   running or cancelling): each node's progress, the gates being held, the steps.
// - The run page's Cancel and Resume post with fetch and swap the answer in (no reload).
(function () {
  "use strict";
  if (window.runbooksWired) return;
  window.runbooksWired = true;

  // The run page's Cancel asks first. Both post with fetch; the answer is the run's
  // fragment (a 409 too, saying why not), swapped in, and polled again while active.
  // Without JS they are plain posts that come back to the run's page.
  document.addEventListener("submit", async function (event) {
    const form = event.target.closest && event.target.closest("form.run-control");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const section = form.closest("[data-poll-url]");
    if (!section) return form.submit();
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      if (response.ok || response.status === 409) {
        section.innerHTML = await response.text();
        pollSteps(section);
      } else {
        form.insertAdjacentHTML("afterend", '<p class="error">' + response.status + " " + response.statusText + "</p>");
      }
    } catch (err) {
      form.insertAdjacentHTML("afterend", '<p class="error">The console did not answer.</p>');
    } finally {
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
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

  // One poll loop per section: a resumed run starts it again, a second call is a no-op.
  function pollSteps(section) {
    if (section.dataset.polling === "true") return;
    section.dataset.polling = "true";
    const url = section.dataset.pollUrl;
    async function tick() {
      const steps = section.querySelector('[data-testid="run-steps"]');
      if (!steps || steps.dataset.active !== "true") {
        section.dataset.polling = "false";
        return;
      }
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
