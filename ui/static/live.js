// Live updates: an element with data-live="URL" subscribes to the
// server-sent events at URL; each event named after an element id carries
// that element's new HTML, rendered and escaped by the server's templates.
// Without JavaScript the page is complete as served; reload to refresh.
(function () {
  "use strict";
  function connect(el) {
    var es = new EventSource(el.getAttribute("data-live"));
    es.addEventListener(el.id, function (e) {
      var focused = document.activeElement && document.activeElement.id;
      // What the operator typed or ticked in the region survives a redraw.
      var kept = {};
      el.querySelectorAll("input[id]:not([type=hidden])").forEach(function (i) {
        kept[i.id] = i.type === "checkbox" ? i.checked : i.value;
      });
      el.innerHTML = e.data;
      Object.keys(kept).forEach(function (id) {
        var i = document.getElementById(id);
        if (!i || !el.contains(i)) { return; }
        if (i.type === "checkbox") { i.checked = kept[id]; } else { i.value = kept[id]; }
      });
      if (window.htmx) { window.htmx.process(el); }
      // Keep keyboard users where they were when the region is redrawn.
      if (focused && el.querySelector("#" + CSS.escape(focused))) {
        document.getElementById(focused).focus();
      }
      el.dispatchEvent(new CustomEvent("koshin:live", { bubbles: true }));
    });
    es.addEventListener("signed-out", function () {
      es.close();
      window.location.reload();
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }
  function start() {
    var els = document.querySelectorAll("[data-live]");
    for (var i = 0; i < els.length; i++) { connect(els[i]); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
