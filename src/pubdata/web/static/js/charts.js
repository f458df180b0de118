// Draws each [data-chart-source] container from its JSON: {categories, series: [{name, type, data,
// stack?, axis?}]}; a series with axis 1 uses a second value axis on the right.
"use strict";
(function () {
  function draw(container) {
    fetch(container.dataset.chartSource, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.json();
      })
      .then(function (data) {
        var chart = echarts.init(container, null, { renderer: "canvas" });
        var twoAxes = data.series.some(function (s) { return s.axis === 1; });
        var valueAxis = { type: "value", minInterval: 1 };
        chart.setOption({
          tooltip: { trigger: "axis" },
          legend: { data: data.series.map(function (s) { return s.name; }) },
          grid: { left: 8, right: 8, bottom: 8, containLabel: true },
          xAxis: { type: "category", data: data.categories, axisLabel: { rotate: 30 } },
          yAxis: twoAxes ? [valueAxis, { type: "value", minInterval: 1 }] : valueAxis,
          series: data.series.map(function (s) {
            return { name: s.name, type: s.type || "bar", stack: s.stack, yAxisIndex: s.axis || 0, data: s.data };
          })
        });
        container.dataset.ready = "true";
        window.addEventListener("resize", function () { chart.resize(); });
      })
      .catch(function (error) {
        container.dataset.ready = "error";
        container.textContent = String(error);
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-source]").forEach(draw);
  });
})();
