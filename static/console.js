/* The console's only script: value ages, the live event feed and the charts.
 *
 * Server-rendered HTML is the source of truth. The websocket only says *that*
 * something changed (an event from the journal); the page then fetches the
 * affected fragment (/clusters/<name>/fragments/<part>/) and swaps it in.
 * Reconnects resume from the last event id seen, so nothing is missed. */
(function () {
  "use strict";

  /* ---- ages: "12 s ago", marked stale when a value stops being refreshed ---- */
  function describeAge(seconds) {
    if (seconds < 90) return seconds + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function updateAges() {
    var now = Date.now();
    document.querySelectorAll("[data-updated-at]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("data-updated-at"));
      if (isNaN(at)) return;
      var seconds = Math.max(0, Math.round((now - at) / 1000));
      var staleAfter = Number(el.getAttribute("data-stale-after") || 5);
      el.textContent = describeAge(seconds);
      el.classList.toggle("stale", seconds > staleAfter);
    });
  }

  /* ---- fragments: fetch one server-rendered piece and swap it in ---- */
  var root = document.querySelector(".live[data-cluster]");
  var generation = {}; // per part: only the newest response may land

  function refresh(part) {
    if (!root || !document.querySelector('[data-fragment="' + part + '"]')) return;
    var mine = (generation[part] = (generation[part] || 0) + 1);
    var url = root.getAttribute("data-fragment-url").replace("PART", part);
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/accounts/login/") !== -1) {
          window.location.reload(); // the session ended: let the server send us to login
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null || mine !== generation[part]) return;
        var current = document.querySelector('[data-fragment="' + part + '"]');
        if (!current) return;
        var holder = document.createElement("div");
        holder.innerHTML = html.trim();
        var fresh = holder.querySelector('[data-fragment="' + part + '"]');
        if (fresh) current.replaceWith(fresh);
        updateAges();
      })
      .catch(function () { /* the next event or tick tries again */ });
  }

  var pending = {};
  var flushTimer = null;
  function flush() {
    var parts = Object.keys(pending);
    pending = {};
    parts.forEach(refresh);
  }
  /* The first change after a quiet spell is fetched at once (a new leader shows one
   * round trip after its event); changes within the next 150 ms are coalesced into one
   * fetch per part at the end of that window, and so on while they keep coming. */
  function schedule(parts) {
    parts.forEach(function (part) { pending[part] = true; });
    if (flushTimer) return;
    flush();
    flushTimer = setTimeout(function windowEnds() {
      flushTimer = null;
      if (Object.keys(pending).length === 0) return;
      flush();
      flushTimer = setTimeout(windowEnds, 150);
    }, 150);
  }

  /* What each event kind refreshes comes from the server's registry of kinds
   * (console/events/kinds.py), rendered into the page as JSON: no kind names here. */
  var kindsData = document.getElementById("event-kinds");
  var kinds = kindsData ? JSON.parse(kindsData.textContent) : { parts: [], refreshes: {} };
  var ALL_PARTS = kinds.parts;
  var REFRESHES = kinds.refreshes;
  function partsFor(kind) {
    return REFRESHES[kind] || ["events"]; // an unknown kind is at least in the list
  }

  /* ---- the live feed ---- */
  function setStatus(state, text) {
    var el = document.querySelector('[data-testid="live-status"]');
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  function startFeed() {
    var lastId = root.getAttribute("data-last-id");
    var cluster = root.getAttribute("data-cluster");
    var delay = 500;
    var connectedOnce = false;

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var query = "?cluster=" + encodeURIComponent(cluster) + (lastId ? "&after=" + lastId : "");
      var socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-ws-path") + query);
      socket.onopen = function () {
        delay = 500;
        setStatus("live", "live");
      };
      socket.onmessage = function (message) {
        var data = JSON.parse(message.data);
        if (data.type === "snapshot") {
          if (!lastId) lastId = String(data.last_id);
          if (connectedOnce) schedule(ALL_PARTS); // state may have moved while we were away
          connectedOnce = true;
        } else if (data.type === "event") {
          lastId = String(data.event.id);
          schedule(partsFor(data.event.kind));
        } else if (data.type === "events") {
          // Several events in one frame (a burst, or a steady stream), in id order:
          // their parts are scheduled together, so the first fetch has them all.
          var parts = [];
          data.events.forEach(function (event) {
            lastId = String(event.id);
            parts = parts.concat(partsFor(event.kind));
          });
          schedule(parts);
        }
      };
      socket.onclose = function () {
        setStatus("reconnecting", "reconnecting…");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000); // back off while the console is away
      };
    }
    connect();
  }

  /* ---- charts (vendored uPlot, no CDN) ---- */
  var charts = [];
  function drawCharts() {
    if (!root || typeof uPlot === "undefined") return;
    fetch(root.getAttribute("data-samples-url") + "?minutes=60", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        var empty = document.querySelector(".chart-empty");
        if (empty) empty.hidden = data.points > 0;
        document.querySelectorAll(".chart[data-series]").forEach(function (el, i) {
          var columns = [data.t, data[el.getAttribute("data-series")]];
          if (charts[i]) { charts[i].setData(columns); return; }
          charts[i] = new uPlot({
            width: Math.max(el.clientWidth, 240),
            height: 150,
            legend: { show: false },
            series: [{}, { label: el.getAttribute("data-series"), stroke: "#5fb3f0", width: 1.5, spanGaps: false }],
            axes: [{ stroke: "#8b95a5", grid: { stroke: "#2c323c" } },
                   { stroke: "#8b95a5", grid: { stroke: "#2c323c" }, size: 50 }],
          }, columns, el);
        });
      })
      .catch(function () {});
  }

  document.addEventListener("DOMContentLoaded", function () {
    updateAges();
    setInterval(updateAges, 1000);
    if (!root) return;
    startFeed();
    drawCharts();
    setInterval(drawCharts, 15000);
    // Each poll moves ages and values without an event (only changes are journaled).
    setInterval(function () {
      if (!document.hidden) schedule(["summary", "nodes"]);
    }, 3000);
  });
})();
