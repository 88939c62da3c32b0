// costwatch report: draws each chart of the inline REPORT data as SVG. No library, no network.
// Every chart's <svg> gets data-marks: the bars, lines and markers it drew (the browser test counts them).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  var W = 860, H = 300, M = { top: 16, right: 16, bottom: 56, left: 72 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function money(value, unit) {
    if (unit === "ratio") return (value * 100).toFixed(0) + "%";
    var sign = value < 0 ? "-" : "";
    var abs = Math.abs(value);
    var text = abs >= 1000 ? abs.toLocaleString("en-US", { maximumFractionDigits: 0 }) : abs.toFixed(2);
    return sign + "$" + text;
  }

  function seriesOf(rows) {
    var names = [];
    rows.forEach(function (row) { if (names.indexOf(row.series) < 0) names.push(row.series); });
    return names;
  }

  function xsOf(rows) {
    var xs = [];
    rows.forEach(function (row) { if (xs.indexOf(row.x) < 0) xs.push(row.x); });
    return xs;
  }

  function axes(svg, xs, max, unit, grouped) {
    var plotH = H - M.top - M.bottom;
    var ticks = 4;
    for (var i = 0; i <= ticks; i++) {
      var value = (max * i) / ticks;
      var y = M.top + plotH - (plotH * i) / ticks;
      el("line", { x1: M.left, x2: W - M.right, y1: y, y2: y, class: "grid" }, svg);
      el("text", { x: M.left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, svg).textContent = money(value, unit);
    }
    var step = Math.max(1, Math.ceil(xs.length / 12));
    var band = (W - M.left - M.right) / Math.max(xs.length, 1);
    xs.forEach(function (x, index) {
      if (index % step && !grouped) return;
      var cx = M.left + band * (index + 0.5);
      var label = el("text", { x: cx, y: H - M.bottom + 16, class: "tick", "text-anchor": "middle" }, svg);
      label.textContent = grouped ? x : String(x).slice(5);
    });
  }

  function legend(container, names, colors) {
    var box = document.createElement("div");
    box.className = "legend";
    names.forEach(function (name) {
      var item = document.createElement("span");
      var swatch = document.createElement("i");
      swatch.style.background = colors[name];
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    });
    container.appendChild(box);
  }

  function colorMap(names) {
    var colors = {};
    names.forEach(function (name, index) { colors[name] = PALETTE[index % PALETTE.length]; });
    return colors;
  }

  function stacked(svg, chart) {
    var xs = xsOf(chart.rows), names = seriesOf(chart.rows), colors = colorMap(names);
    var totals = {}, marks = 0;
    chart.rows.forEach(function (row) { totals[row.x] = (totals[row.x] || 0) + Math.max(row.y || 0, 0); });
    var max = Math.max.apply(null, xs.map(function (x) { return totals[x]; }).concat([1e-9]));
    axes(svg, xs, max, chart.unit, false);
    var plotH = H - M.top - M.bottom, band = (W - M.left - M.right) / Math.max(xs.length, 1);
    var base = {};
    names.forEach(function (name) {
      chart.rows.forEach(function (row) {
        if (row.series !== name || !(row.y > 0)) return;
        var index = xs.indexOf(row.x), below = base[row.x] || 0, h = (plotH * row.y) / max;
        var rect = el("rect", {
          x: M.left + band * index + band * 0.1, width: Math.max(band * 0.8, 1),
          y: M.top + plotH - (plotH * below) / max - h, height: h, fill: colors[name], class: "mark"
        }, svg);
        el("title", {}, rect).textContent = row.x + " " + name + ": " + money(row.y, chart.unit);
        base[row.x] = below + row.y;
        marks++;
      });
    });
    return { marks: marks, names: names, colors: colors };
  }

  function grouped(svg, chart) {
    var xs = xsOf(chart.rows), names = seriesOf(chart.rows).sort(), colors = colorMap(names), marks = 0;
    var max = Math.max.apply(null, chart.rows.map(function (row) { return row.y || 0; }).concat([1e-9]));
    axes(svg, xs, max, chart.unit, true);
    var plotH = H - M.top - M.bottom, band = (W - M.left - M.right) / Math.max(xs.length, 1);
    var width = (band * 0.8) / Math.max(names.length, 1);
    chart.rows.forEach(function (row) {
      if (!(row.y > 0)) return;
      var h = (plotH * row.y) / max;
      var rect = el("rect", {
        x: M.left + band * xs.indexOf(row.x) + band * 0.1 + width * names.indexOf(row.series),
        width: Math.max(width - 2, 1), y: M.top + plotH - h, height: h, fill: colors[row.series], class: "mark"
      }, svg);
      el("title", {}, rect).textContent = row.x + " " + row.series + ": " + money(row.y, chart.unit);
      marks++;
    });
    return { marks: marks, names: names, colors: colors };
  }

  function lines(svg, chart) {
    var xs = xsOf(chart.rows).sort(), names = seriesOf(chart.rows), colors = colorMap(names), marks = 0;
    var max = Math.max.apply(null, chart.rows.map(function (row) { return row.y || 0; }).concat([1e-9]));
    axes(svg, xs, max, chart.unit, false);
    var plotH = H - M.top - M.bottom, band = (W - M.left - M.right) / Math.max(xs.length, 1);
    function point(row) {
      return [M.left + band * (xs.indexOf(row.x) + 0.5), M.top + plotH - (plotH * (row.y || 0)) / max];
    }
    names.forEach(function (name) {
      var rows = chart.rows.filter(function (row) { return row.series === name && row.y !== null; });
      if (!rows.length) return;
      var d = rows.map(function (row, index) { var p = point(row); return (index ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ");
      el("path", { d: d, stroke: colors[name], fill: "none", "stroke-width": 2, class: "mark" }, svg);
      marks++;
      rows.forEach(function (row) {
        if (!row.marked) return;
        var p = point(row);
        var dot = el("circle", { cx: p[0], cy: p[1], r: 5, class: "mark anomaly" }, svg);
        el("title", {}, dot).textContent = row.x + " " + (row.note || "marked");
        marks++;
      });
    });
    return { marks: marks, names: names, colors: colors };
  }

  var DRAW = { stacked: stacked, grouped: grouped, lines: lines };

  function draw(chart, index) {
    var section = document.getElementById("chart-" + index);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "data-chart": chart.name }, null);
    section.appendChild(svg);
    if (!chart.rows.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "no data for this period";
      svg.setAttribute("data-marks", "0");
      svg.setAttribute("data-empty", "true");
      return;
    }
    var drawn = DRAW[chart.kind](svg, chart);
    legend(section, drawn.names, drawn.colors);
    svg.setAttribute("data-marks", String(drawn.marks));
  }

  var report = JSON.parse(document.getElementById("report-data").textContent);
  report.charts.forEach(draw);
  document.body.setAttribute("data-drawn", String(report.charts.length));
})();
