/* Patronage console: navigation toggle, dashboard charts (ECharts), small form helpers. No inline script. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  if (window.htmx) { window.htmx.config.includeIndicatorStyles = false; }

  var lang = document.documentElement.lang || "en";
  var palette = ["#3b4cca", "#e08a00", "#1a8a63", "#c0392b", "#7b4fc9", "#0f7c99", "#8a6d3b"];
  var pct = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });
  var num = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var compact = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 });

  function fmtPct(v) { return v === null || v === undefined ? "—" : pct.format(v); }
  function fmtNum(v) { return v === null || v === undefined ? "—" : num.format(v); }

  var builders = {
    retention: function (d) {
      var series = d.series.map(function (s, i) {
        return { name: s.name, type: "line", smooth: true, yAxisIndex: 0, data: s.values, symbolSize: 5,
          lineStyle: { width: 2.5 }, itemStyle: { color: palette[i] } };
      });
      if (d.bars) {
        series.push({ name: d.bars.name, type: "bar", yAxisIndex: 1, data: d.bars.values, barMaxWidth: 18,
          itemStyle: { color: "#c9cfee" } });
      }
      return {
        tooltip: { trigger: "axis", valueFormatter: function (v) { return v !== null && v <= 1 && v >= -1 ? fmtPct(v) : fmtNum(v); } },
        legend: { top: 0 }, grid: { left: 50, right: 50, top: 36, bottom: 30 },
        xAxis: { type: "category", data: d.labels },
        yAxis: [{ type: "value", axisLabel: { formatter: function (v) { return pct.format(v); } } },
                { type: "value", splitLine: { show: false }, axisLabel: { formatter: function (v) { return compact.format(v); } } }],
        series: series
      };
    },
    cohorts: function (d) {
      return {
        tooltip: { formatter: function (p) { return d.cohorts[p.value[1]] + " · +" + p.value[0] + ": " + fmtPct(p.value[2]); } },
        grid: { left: 80, right: 16, top: 10, bottom: 60 },
        xAxis: { type: "category", data: d.offsets.map(function (o) { return "+" + o; }), splitArea: { show: true } },
        yAxis: { type: "category", data: d.cohorts, inverse: true, splitArea: { show: true } },
        visualMap: { min: 0, max: 0.5, calculable: false, orient: "horizontal", left: "center", bottom: 0,
          itemHeight: 120, inRange: { color: ["#f1f3fc", "#9aa5e6", "#3b4cca", "#1f2a80"] },
          formatter: function (v) { return fmtPct(v); } },
        series: [{ type: "heatmap", data: d.cells, label: { show: true, fontSize: 10,
          formatter: function (p) { return p.value[2] === null ? "" : Math.round(p.value[2] * 100); } } }]
      };
    },
    rfm: function (d) {
      var max = d.cells.reduce(function (m, c) { return Math.max(m, c[2]); }, 1);
      var scores = ["1", "2", "3", "4", "5"];
      return {
        tooltip: { formatter: function (p) { return "R " + (p.value[1] + 1) + " · F " + (p.value[0] + 1) + ": " + fmtNum(p.value[2]); } },
        grid: { left: 40, right: 16, top: 10, bottom: 60 },
        xAxis: { type: "category", data: scores, name: "F", nameLocation: "middle", nameGap: 24 },
        yAxis: { type: "category", data: scores, name: "R", nameLocation: "middle", nameGap: 24 },
        visualMap: { min: 0, max: max, orient: "horizontal", left: "center", bottom: 0, itemHeight: 120,
          inRange: { color: ["#fff6e5", "#f2a93b", "#b35c00"] }, formatter: function (v) { return compact.format(v); } },
        series: [{ type: "heatmap", data: d.cells, label: { show: true, formatter: function (p) { return compact.format(p.value[2]); } } }]
      };
    },
    funnel: function (d) {
      return {
        tooltip: { trigger: "item", formatter: function (p) { return p.name + ": " + fmtNum(p.value); } },
        color: palette,
        series: [{ type: "funnel", left: "8%", width: "84%", top: 10, bottom: 10, minSize: "8%", sort: "none",
          label: { show: true, position: "inside", formatter: function (p) { return p.name + " " + compact.format(p.value); } },
          data: d }]
      };
    },
    lifecycle: function (d) {
      return {
        tooltip: { trigger: "axis", valueFormatter: function (v) { return fmtNum(Math.abs(v)); } },
        legend: { top: 0 }, grid: { left: 50, right: 16, top: 36, bottom: 30 }, color: palette,
        xAxis: { type: "category", data: d.labels },
        yAxis: { type: "value", axisLabel: { formatter: function (v) { return compact.format(v); } } },
        series: d.series.map(function (s) { return { name: s.name, type: "bar", stack: "all", data: s.values, barMaxWidth: 24 }; })
      };
    },
    tiers: function (d) {
      return {
        tooltip: { trigger: "item", formatter: function (p) { return p.name + ": " + fmtNum(p.value) + " (" + p.percent + " %)"; } },
        legend: { bottom: 0 }, color: palette,
        series: [{ type: "pie", radius: ["40%", "70%"], center: ["50%", "45%"], data: d,
          label: { formatter: function (p) { return p.name + "\n" + compact.format(p.value); } } }]
      };
    }
  };

  function drawCharts() {
    var source = document.getElementById("dashboard-data");
    if (!source || !window.echarts) { return; }
    var data = JSON.parse(source.textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (!data[name] || !builders[name]) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      var option = builders[name](data[name]);
      option.animation = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      option.textStyle = { fontFamily: "system-ui, sans-serif" };
      chart.setOption(option);
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    document.body.setAttribute("data-charts-ready", String(charts.length));
  }

  function navToggle() {
    var button = document.querySelector(".nav-toggle");
    var nav = document.getElementById("console-nav");
    if (!button || !nav) { return; }
    button.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      button.setAttribute("aria-expanded", String(open));
    });
  }

  function jsonTools() {
    document.querySelectorAll("[data-format-json]").forEach(function (button) {
      button.addEventListener("click", function () {
        var area = document.getElementById(button.getAttribute("data-format-json"));
        try { area.value = JSON.stringify(JSON.parse(area.value), null, 2); } catch (e) { /* the server explains */ }
      });
    });
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (navigator.clipboard && target) { navigator.clipboard.writeText(target.textContent.trim()); button.textContent = button.getAttribute("data-copied") || "✓"; }
      });
    });
  }

  function htmxErrors() {
    document.body.addEventListener("htmx:responseError", function (event) {
      var main = document.getElementById("main");
      if (!main) { return; }
      var box = document.getElementById("htmx-error") || document.createElement("p");
      box.id = "htmx-error";
      box.className = "error-box";
      box.setAttribute("role", "alert");
      var shell = document.querySelector(".shell");
      box.textContent = (shell ? shell.getAttribute("data-request-failed") : "Error") + " (" + event.detail.xhr.status + ")";
      main.insertBefore(box, main.firstChild);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    htmxErrors();
    navToggle();
    jsonTools();
    drawCharts();
  });
})();
