// A small SVG chart of a query result: bar, line or scatter. Ours, not a library: a result is at
// most a few thousand points and three mark kinds, which plain SVG draws in a few lines.
//
// DgChart.suggest(columns, types) picks a kind and the x/y columns from the column types:
//   a date/datetime column and a number  -> line
//   a text column and a number           -> bar
//   two numbers                          -> scatter
//   one number only                      -> bar over the row number
// DgChart.draw(svg, spec, rows, columns) draws it; every mark carries class "mark".
"use strict";

var DgChart = (function () {
  var NUMERIC = { LONG: true, DOUBLE: true, DECIMAL: true };
  var TEMPORAL = { DATE: true, DATETIME: true };
  var MAX_BARS = 60;
  var SVG = "http://www.w3.org/2000/svg";

  function suggest(columns, types) {
    var numbers = [], temporal = [], text = [];
    types.forEach(function (type, i) {
      if (NUMERIC[type]) numbers.push(i);
      else if (TEMPORAL[type]) temporal.push(i);
      else text.push(i);
    });
    if (numbers.length === 0) return null;
    if (temporal.length) return { kind: "line", x: temporal[0], y: numbers[0] };
    if (text.length) return { kind: "bar", x: text[0], y: numbers[0] };
    if (numbers.length >= 2) return { kind: "scatter", x: numbers[0], y: numbers[1] };
    return { kind: "bar", x: -1, y: numbers[0] };
  }

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceRange(values) {
    var min = Math.min.apply(null, values), max = Math.max.apply(null, values);
    if (min === max) { min -= 1; max += 1; }
    return [min, max];
  }

  function label(value) {
    if (value === null || value === undefined) return "NULL";
    if (typeof value === "number") {
      return Math.abs(value) >= 1e6 || (Math.abs(value) < 1e-3 && value !== 0)
        ? value.toExponential(2) : String(Math.round(value * 1000) / 1000);
    }
    var text = String(value);
    return text.length > 14 ? text.slice(0, 13) + "…" : text;
  }

  function toNumber(value, type) {
    if (value === null || value === undefined) return null;
    if (TEMPORAL[type]) {
      var time = Date.parse(String(value).replace(" ", "T"));
      return isNaN(time) ? null : time;
    }
    var number = Number(value);
    return isNaN(number) ? null : number;
  }

  // rows: arrays of values; columns: [{name, type}]; spec: {kind, x, y}.
  function draw(svg, spec, rows, columns) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var width = svg.clientWidth || 600, height = svg.clientHeight || 300;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var pad = { left: 56, right: 12, top: 12, bottom: 40 };
    var plotW = width - pad.left - pad.right, plotH = height - pad.top - pad.bottom;
    var yType = columns[spec.y].type;
    var xType = spec.x >= 0 ? columns[spec.x].type : "LONG";
    // Text on the x axis of a line or scatter: the rows are placed in their order, one step apart.
    var categorical = !(NUMERIC[xType] || TEMPORAL[xType]);
    var points = [];
    rows.forEach(function (row, i) {
      var y = toNumber(row[spec.y], yType);
      if (y === null) return;
      var raw = spec.x >= 0 ? row[spec.x] : i + 1;
      var x = spec.kind === "bar" ? null : categorical ? points.length : toNumber(raw, xType);
      points.push({ raw: raw, y: y, x: x });
    });
    if (spec.kind !== "bar") points = points.filter(function (p) { return p.x !== null; });
    if (spec.kind === "line") points.sort(function (a, b) { return a.x - b.x; });
    if (spec.kind === "bar") points = points.slice(0, MAX_BARS);
    var title = (spec.x >= 0 ? columns[spec.x].name : "row") + " → " + columns[spec.y].name;
    svg.appendChild(el("title", {}, spec.kind + " chart: " + title));
    if (!points.length) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "Nothing to chart"));
      return 0;
    }
    var yRange = niceRange(points.map(function (p) { return p.y; }).concat(spec.kind === "bar" ? [0] : []));
    var yPos = function (v) { return pad.top + plotH - (v - yRange[0]) / (yRange[1] - yRange[0]) * plotH; };
    var axes = el("g", { "class": "axes" });
    axes.appendChild(el("line", { x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + plotH }));
    axes.appendChild(el("line", { x1: pad.left, y1: pad.top + plotH, x2: pad.left + plotW, y2: pad.top + plotH }));
    [0, 0.5, 1].forEach(function (f) {
      var v = yRange[0] + f * (yRange[1] - yRange[0]);
      axes.appendChild(el("text", { x: pad.left - 4, y: yPos(v) + 4, "text-anchor": "end" }, label(v)));
    });
    svg.appendChild(axes);
    var marks = el("g", { "class": "marks" });
    if (spec.kind === "bar") {
      var slot = plotW / points.length, zero = yPos(Math.max(yRange[0], 0));
      points.forEach(function (p, i) {
        var top = yPos(p.y);
        var bar = el("rect", {
          "class": "mark", x: pad.left + i * slot + slot * 0.1, width: Math.max(1, slot * 0.8),
          y: Math.min(top, zero), height: Math.max(1, Math.abs(zero - top)),
        });
        bar.appendChild(el("title", {}, label(p.raw) + ": " + label(p.y)));
        marks.appendChild(bar);
      });
      var every = Math.ceil(points.length / Math.max(1, Math.floor(plotW / 70)));
      points.forEach(function (p, i) {
        if (i % every) return;
        axes.appendChild(el("text", {
          x: pad.left + (i + 0.5) * slot, y: pad.top + plotH + 16, "text-anchor": "middle",
        }, label(p.raw)));
      });
    } else {
      var xRange = niceRange(points.map(function (p) { return p.x; }));
      var xPos = function (v) { return pad.left + (v - xRange[0]) / (xRange[1] - xRange[0]) * plotW; };
      if (spec.kind === "line") {
        var path = points.map(function (p, i) {
          return (i ? "L" : "M") + xPos(p.x).toFixed(1) + "," + yPos(p.y).toFixed(1);
        }).join(" ");
        marks.appendChild(el("path", { "class": "mark line", d: path, fill: "none" }));
      }
      points.forEach(function (p) {
        var dot = el("circle", { "class": "mark dot", cx: xPos(p.x), cy: yPos(p.y), r: spec.kind === "line" ? 2.5 : 3.5 });
        dot.appendChild(el("title", {}, label(p.raw) + ", " + label(p.y)));
        marks.appendChild(dot);
      });
      [0, 1].forEach(function (f) {
        var v = xRange[0] + f * (xRange[1] - xRange[0]);
        var text = categorical ? label(points[f ? points.length - 1 : 0].raw)
          : TEMPORAL[xType] ? new Date(v).toISOString().slice(0, 10) : label(v);
        axes.appendChild(el("text", {
          x: xPos(v), y: pad.top + plotH + 16, "text-anchor": f ? "end" : "start",
        }, text));
      });
    }
    svg.appendChild(marks);
    return points.length;
  }

  return { suggest: suggest, draw: draw, NUMERIC: NUMERIC, TEMPORAL: TEMPORAL };
})();
