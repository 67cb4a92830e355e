// The report pages' scripts (CSP: scripts come from /static/ only).
(function () {
  // "Print" buttons.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  // The monthly review's burn-rate chart: each week's burn rate for availability and
  // success, from the JSON the page carries (json_script "burn-data").
  const source = document.getElementById("burn-data");
  const el = document.getElementById("burn-chart");
  if (!source || !el || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const xs = data.labels.map(function (_, i) { return i + 1; });
  const opts = {
    width: Math.min(el.clientWidth || 720, 900), height: 240,
    scales: { x: { time: false } },
    axes: [{ values: function (u, ticks) { return ticks.map(function (t) { return data.labels[t - 1] || ""; }); } }, {}],
    series: [{}, { label: "availability burn", stroke: "#b3261e", points: { size: 8 } },
             { label: "success burn", stroke: "#1f5fbf", points: { size: 8 } }],
  };
  new uPlot(opts, [xs, data.availability_burn, data.success_burn], el);
  el.dataset.ready = "1";
})();
