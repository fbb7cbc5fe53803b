// Counts down to each lock's end (SPEC §11): elements with data-countdown-until (ISO 8601) show
// the time left, and "ended" once it has passed (the server still decides; reload to see it gone).
(function () {
  "use strict";
  function left(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + "h " : "") + pad(m) + "m " + pad(sec) + "s left";
  }
  function tick() {
    document.querySelectorAll("[data-countdown-until]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("data-countdown-until")) - Date.now();
      el.textContent = ms > 0 ? left(ms) : "ended";
    });
  }
  tick();
  setInterval(tick, 1000);
  document.body.addEventListener("htmx:afterSwap", tick);
})();
