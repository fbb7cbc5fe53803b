/* The settings page's risk panel, recomputed as the trader types.
 *
 * Mirrors lanes.risk and lanes.views.risk_panel exactly: money is held as integer cents in
 * BigInt, and each stake is round-half-up-to-cents(base × multiplier^level), as the engine
 * rounds, so the browser shows the very numbers the server renders. */
(function () {
  "use strict";

  var panel = document.getElementById("risk-panel");
  var form = document.getElementById("settings-form");
  if (!panel || !form) return;

  // "1.5" -> 150n with places 2; null unless a plain non-negative decimal with at most `places` places.
  function parseFixed(text, places) {
    var match = /^\s*\+?(\d*)(?:\.(\d*))?\s*$/.exec(text || "");
    if (!match || (match[1] + (match[2] || "")).length === 0) return null;
    var fraction = match[2] || "";
    if (fraction.length > places) {
      if (/[^0]/.test(fraction.slice(places))) return null;
      fraction = fraction.slice(0, places);
    }
    while (fraction.length < places) fraction += "0";
    return BigInt((match[1] || "0") + fraction);
  }

  function parseWhole(text) {
    var match = /^\s*\+?(\d{1,6})\s*$/.exec(text || "");
    return match ? parseInt(match[1], 10) : null;
  }

  // Round half up of numerator / denominator (both non-negative).
  function roundHalfUp(numerator, denominator) {
    return (2n * numerator + denominator) / (2n * denominator);
  }

  // Cents as "1,234.56".
  function money(cents) {
    var negative = cents < 0n;
    var value = negative ? -cents : cents;
    var whole = (value / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var fraction = (value % 100n).toString().padStart(2, "0");
    return (negative ? "-" : "") + whole + "." + fraction;
  }

  function field(name) {
    return form.elements.namedItem(name);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function compute() {
    var base = parseFixed(field("base_amount").value, 2);
    var multiplier = parseFixed(field("martingale_multiplier").value, 2);
    var maxLevel = parseWhole(field("martingale_max_level").value);
    var payout = parseFixed(field("payout_rate").value, 4);
    var lanes = parseWhole(field("max_concurrent_lanes").value);
    if (base === null || base <= 0n || multiplier === null || multiplier <= 0n || maxLevel === null ||
        maxLevel < 1 || maxLevel > 20 || payout === null || lanes === null || lanes < 1) {
      return null;
    }
    var concurrent = field("concurrent_trading_enabled").checked;
    var enhanced = panel.dataset.enhanced === "true";
    var martingale = panel.dataset.martingale === "true";
    var balance = parseFixed(panel.dataset.balance, 2);
    var moneyMax = parseFixed(panel.dataset.moneyMax, 2);

    var ladder = [];
    var total = 0n;
    var power = 1n;
    var scale = 1n;
    for (var level = 0; level <= maxLevel; level++) {
      var stake = roundHalfUp(base * power, scale);
      total += stake;
      var returns = roundHalfUp(stake * (10000n + payout), 10000n);
      ladder.push({level: level, stake: stake, total: total, returns: returns, recovers: returns > total});
      power *= multiplier;
      scale *= 100n;
    }
    var laneWorst = total;
    var slots = concurrent ? lanes : 1;
    var worst, label;
    if (!martingale) {
      worst = BigInt(slots) * base;
      label = slots + " open trade(s) × the base amount";
    } else if (enhanced) {
      worst = BigInt(lanes) * laneWorst;
      label = lanes + " lane(s) × " + money(laneWorst);
    } else {
      worst = laneWorst;
      label = "one progression (legacy mode)";
    }
    var warnings = [];
    if (worst > balance) {
      warnings.push(["balance", "The worst case (" + money(worst) + ") exceeds the balance (" + money(balance) + ")."]);
    }
    var short = ladder.slice(1).find(function (row) { return !row.recovers; });
    if (martingale && short) {
      warnings.push(["recovery", "The multiplier is too low for the payout rate: a win at level " + short.level +
        " returns " + money(short.returns) + ", not more than the " + money(short.total) +
        " the lane has invested by then."]);
    }
    var last = ladder[ladder.length - 1];
    if (last.stake > moneyMax) {
      warnings.push(["too-large", "The stake at level " + maxLevel + " would be " + money(last.stake) +
        ", more than " + money(moneyMax) + "."]);
    }
    return {ladder: ladder, laneWorst: laneWorst, worst: worst, label: label, balance: balance, warnings: warnings};
  }

  function render() {
    var risk = compute();
    var warningBox = document.getElementById("risk-warnings");
    var body = document.querySelector("#risk-ladder tbody");
    warningBox.replaceChildren();
    body.replaceChildren();
    if (risk === null) {
      var note = element("div", "alert alert-secondary py-2", "Enter valid numbers to see the risk.");
      note.dataset.warning = "invalid";
      warningBox.appendChild(note);
      ["risk-lane-worst", "risk-worst-case"].forEach(function (id) { document.getElementById(id).textContent = "—"; });
      document.getElementById("risk-worst-label").textContent = "—";
      return;
    }
    risk.warnings.forEach(function (warning) {
      var box = element("div", "alert alert-danger py-2", warning[1]);
      box.setAttribute("role", "alert");
      box.dataset.warning = warning[0];
      warningBox.appendChild(box);
    });
    document.getElementById("risk-lane-worst").textContent = money(risk.laneWorst);
    document.getElementById("risk-worst-case").textContent = money(risk.worst);
    document.getElementById("risk-worst-label").textContent = risk.label;
    document.getElementById("risk-balance").textContent = money(risk.balance);
    risk.ladder.forEach(function (row) {
      var tr = element("tr", !row.recovers && row.level ? "table-danger" : "");
      [String(row.level), money(row.stake), money(row.total), money(row.returns)].forEach(function (text) {
        tr.appendChild(element("td", "text-end", text));
      });
      body.appendChild(tr);
    });
  }

  form.addEventListener("input", render);
  form.addEventListener("change", render);
  render();
})();
