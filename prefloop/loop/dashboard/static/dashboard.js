// Draws each chart of the dashboard from the Vega-Lite spec the server put beside it (no request made).
(function () {
  "use strict";
  var specs = document.querySelectorAll("script[data-chart]");
  specs.forEach(function (el) {
    var target = document.getElementById("chart-" + el.getAttribute("data-chart"));
    if (!target) return;
    if (typeof vegaEmbed !== "function") {
      target.textContent = "The chart library did not load; the table below holds the same numbers.";
      return;
    }
    vegaEmbed(target, JSON.parse(el.textContent), { actions: false, renderer: "svg" })
      .then(function () { target.setAttribute("data-drawn", "true"); })
      .catch(function (err) { target.textContent = "This chart could not be drawn (" + err + "); the table below holds the same numbers."; });
  });
})();
