/* The statistics page's charts, drawn with the vendored Chart.js from the numbers the server
 * embedded (the stats selector's daily, by_level and by_symbol rows). */
(function () {
  "use strict";

  var source = document.getElementById("stats-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var GREEN = "#198754", RED = "#dc3545", BLUE = "#0d6efd", GREY = "#6c757d", ORANGE = "#fd7e14";

  function number(text) {
    return text === null ? 0 : parseFloat(text);
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    config.options = Object.assign({animation: false, maintainAspectRatio: false, responsive: true}, config.options || {});
    window.dashboardCharts[id] = new Chart(canvas, config);
  }

  window.dashboardCharts = {};
  var days = data.daily.map(function (row) { return row.date; });
  var profits = data.daily.map(function (row) { return number(row.net_profit); });

  draw("chart-daily-profit", {
    type: "bar",
    data: {
      labels: days,
      datasets: [{
        label: "Net profit",
        data: profits,
        backgroundColor: profits.map(function (value) { return value < 0 ? RED : GREEN; }),
      }],
    },
    options: {plugins: {legend: {display: false}}},
  });

  draw("chart-daily-lanes", {
    type: "bar",
    data: {
      labels: days,
      datasets: [
        {label: "Created", data: data.daily.map(function (row) { return row.lanes_created; }), backgroundColor: BLUE},
        {label: "Recovered", data: data.daily.map(function (row) { return row.lanes_recovered; }), backgroundColor: GREEN},
        {label: "Exhausted", data: data.daily.map(function (row) { return row.lanes_exhausted; }), backgroundColor: RED},
      ],
    },
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}},
  });

  var levels = data.by_level.filter(function (row) { return row.level !== null && row.level > 0; });
  draw("chart-by-level", {
    type: "bar",
    data: {
      labels: levels.map(function (row) { return "Level " + row.level; }),
      datasets: [
        {label: "Lanes recovered", data: levels.map(function (row) { return row.lanes_recovered; }), backgroundColor: GREEN},
        {label: "Lanes exhausted", data: levels.map(function (row) { return row.lanes_exhausted; }), backgroundColor: RED},
        {label: "Trades won", data: levels.map(function (row) { return row.wins; }), backgroundColor: GREY},
      ],
    },
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}},
  });

  draw("chart-by-symbol", {
    type: "bar",
    data: {
      labels: data.by_symbol.map(function (row) { return row.symbol; }),
      datasets: [
        {label: "Win rate (%)", data: data.by_symbol.map(function (row) { return Math.round(row.win_rate * 1000) / 10; }),
         backgroundColor: BLUE, yAxisID: "rate"},
        {label: "Net profit", data: data.by_symbol.map(function (row) { return number(row.net_profit); }),
         backgroundColor: ORANGE, yAxisID: "profit"},
      ],
    },
    options: {
      scales: {
        rate: {type: "linear", position: "left", min: 0, max: 100, title: {display: true, text: "win rate %"}},
        profit: {type: "linear", position: "right", grid: {drawOnChartArea: false}, title: {display: true, text: "net profit"}},
      },
    },
  });
})();
