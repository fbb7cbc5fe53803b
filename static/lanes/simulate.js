/* The simulator page's charts: the equity curve and drawdown of each setting (thinned by the
 * server to a few hundred points), drawn with the vendored Chart.js whenever the results appear
 * (on load, or when the htmx poll swaps them in). */
(function () {
  "use strict";
  var COLOURS = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#d63384"];
  window.dashboardCharts = window.dashboardCharts || {};

  function draw(id, data, column) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    if (window.dashboardCharts[id]) window.dashboardCharts[id].destroy();
    var datasets = data.curves.map(function (points, i) {
      return {
        label: "#" + (i + 1) + " " + data.labels[i],
        data: points.map(function (p) { return {x: p[0] * 1000, y: p[column]}; }),
        borderColor: COLOURS[i % COLOURS.length], borderWidth: 1.5, pointRadius: 0, fill: false
      };
    });
    window.dashboardCharts[id] = new Chart(canvas, {
      type: "line",
      data: {datasets: datasets},
      options: {
        animation: false, maintainAspectRatio: false, responsive: true, parsing: false,
        scales: {x: {type: "linear", ticks: {callback: function (v) { return new Date(v).toISOString().slice(0, 16).replace("T", " "); }, maxTicksLimit: 6}}}
      }
    });
  }

  function render() {
    var source = document.getElementById("simulate-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    draw("chart-equity", data, 1);
    draw("chart-drawdown", data, 2);
  }

  document.addEventListener("DOMContentLoaded", render);
  document.addEventListener("htmx:afterSettle", render);
})();
