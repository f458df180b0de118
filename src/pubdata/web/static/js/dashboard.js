// Draws the dashboard chart from the JSON endpoint named by the container's data-source.
"use strict";
(function () {
  function draw(container) {
    fetch(container.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.json();
      })
      .then(function (data) {
        var chart = echarts.init(container, null, { renderer: "canvas" });
        chart.setOption({
          tooltip: { trigger: "axis" },
          legend: { data: data.levels },
          grid: { left: 8, right: 8, bottom: 8, containLabel: true },
          xAxis: { type: "category", data: data.departments, axisLabel: { interval: 0, rotate: 30 } },
          yAxis: { type: "value", minInterval: 1 },
          series: data.series.map(function (s) {
            return { name: s.name, type: "bar", stack: "level", data: s.data };
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
    document.querySelectorAll("[data-source]").forEach(draw);
  });
})();
