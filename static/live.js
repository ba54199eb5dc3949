// agent-otp: keeps the pending list and a request page current without reloading them. It
// listens to /live (server-sent events: which request changed), then fetches this page again and
// swaps its #live part in place; it also counts the time left down every second. No framework;
// without this script the pages still work (the list refreshes itself, a request says when it
// expires, and a stale tap is answered with what happened).
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var started = Date.now();
  var pending = null;

  function left(s) {
    if (s <= 0) return "expired";
    if (s < 60) return s + " s left";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s left";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min left";
  }

  function tick() {
    var gone = (Date.now() - started) / 1000;
    var nodes = document.querySelectorAll("[data-expires-in]");
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      var total = parseInt(n.getAttribute("data-expires-in"), 10);
      if (!(total > 0)) continue;
      var s = Math.max(0, Math.ceil(total - gone));
      n.textContent = left(s);
      if (s === 0 && !n.hasAttribute("data-asked")) {
        // Time is up here: ask the server what the request is now.
        n.setAttribute("data-asked", "");
        later(1000);
      }
    }
  }

  function refresh() {
    pending = null;
    // A page answered to a POST (the second confirmation, at /requests/<id>/approve) has no GET
    // of its own: ask for the request's page, and swap it in only once the request has left the
    // state shown here, so a request decided elsewhere flips this page too.
    var id = root.getAttribute("data-request");
    var own = id ? "/requests/" + encodeURIComponent(id) : null;
    var away = own !== null && location.pathname !== own;
    fetch(away ? own : location.pathname + location.search, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      cache: "no-store"
    }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("live");
      var now = document.getElementById("live");
      if (!fresh || !now) return;
      if (away && fresh.getAttribute("data-status") === now.getAttribute("data-status")) return;
      var open = {};
      now.querySelectorAll("details[id][open]").forEach(function (d) { open[d.id] = true; });
      now.replaceWith(document.importNode(fresh, true));
      root = document.getElementById("live");
      root.querySelectorAll("details[id]").forEach(function (d) { if (open[d.id]) d.open = true; });
      document.title = doc.title;
      started = Date.now();
      tick();
    }).catch(function () {});
  }

  function later(ms) {
    if (pending === null) pending = setTimeout(refresh, ms);
  }

  function listen() {
    if (!window.EventSource) return;
    var es = new EventSource("/live");
    es.onmessage = function (e) {
      var change;
      try { change = JSON.parse(e.data); } catch (_) { return; }
      var id = root.getAttribute("data-request");
      if (!id || change.id === id || change.id === "*") later(150);
    };
    // Reconnected after a drop (the stream also ends by itself now and then): catch up.
    es.onopen = function () {
      if (listen.opened) later(150);
      listen.opened = true;
    };
  }

  setInterval(tick, 1000);
  tick();
  listen();
})();
