// The SQL console: an editor, a typed and paged result grid, and a chart of the result.
//
// The page works without this script (the form posts and the server renders the first page of
// the answer); with it, a query runs through POST /ui/sql/run (JSON, X-CSRF-Token header) and the
// whole answer (up to the page's row cap) is paged and charted here.
"use strict";

(function () {
  var form = document.getElementById("sql-form");
  if (!form) return;
  var PAGE_ROWS = 50;
  var textarea = document.getElementById("sql");
  var status = document.getElementById("sql-status");
  var output = document.getElementById("sql-output");
  var grid = document.getElementById("result-grid");
  var pager = document.getElementById("result-pager");
  var chartKind = document.getElementById("chart-kind");
  var chartX = document.getElementById("chart-x");
  var chartY = document.getElementById("chart-y");
  var chartSvg = document.getElementById("result-chart");
  var chartNote = document.getElementById("chart-note");
  var editor = null;
  var answer = null;
  var page = 0;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : form.querySelector("input[name=csrf_token]").value;
  }

  if (window.CodeMirror) {
    editor = CodeMirror.fromTextArea(textarea, {
      mode: "text/x-mysql", lineNumbers: true, indentWithTabs: false, viewportMargin: Infinity,
      // Tab moves focus on (keyboard users must be able to leave the editor); Ctrl/Cmd-Enter runs.
      extraKeys: {
        "Ctrl-Enter": function () { run(); }, "Cmd-Enter": function () { run(); },
        Tab: false, "Shift-Tab": false,
      },
      screenReaderLabel: "SQL query",
    });
  }

  function sql() { return editor ? editor.getValue() : textarea.value; }

  // Another dataset: load the page for it (its columns), keeping the query.
  var datasetSelect = document.getElementById("sql-dataset");
  datasetSelect.addEventListener("change", function () {
    window.location.assign("/ui/sql?dataset=" + encodeURIComponent(datasetSelect.value) +
      "&sql=" + encodeURIComponent(sql()));
  });

  // Clicking a listed column puts its name in the editor.
  document.querySelectorAll("[data-insert-column]").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = "`" + button.getAttribute("data-insert-column").replace(/`/g, "``") + "`";
      if (editor) { editor.replaceSelection(name); editor.focus(); }
      else { textarea.value += name; textarea.focus(); }
    });
  });

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "message error" : "message";
    status.setAttribute("role", isError ? "alert" : "status");
  }

  function run() {
    var body = { dataset: datasetSelect.value, sql: sql() };
    say("Running…");
    var started = performance.now();
    // datagrove.fetch (app.js) sends a person whose session ended to the sign-in page.
    (window.datagrove ? window.datagrove.fetch : window.fetch.bind(window))(form.getAttribute("data-run-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (json) { return { ok: response.ok, json: json }; },
        function () { return { ok: false, json: { message: "The server answered " + response.status + "." } }; });
    }).then(function (result) {
      if (!result.ok) {
        output.hidden = true;
        say(result.json.message || "The query failed.", true);
        return;
      }
      answer = result.json;
      page = 0;
      var seconds = answer.seconds !== undefined ? answer.seconds : (performance.now() - started) / 1000;
      say(answer.rowCount + (answer.rowCount === 1 ? " row" : " rows") + " in " + seconds.toFixed(3) + " s" +
        (answer.truncated ? " (only the first " + answer.rows.length + " are shown; download the CSV for all)" : ""));
      output.hidden = false;
      renderGrid();
      setUpChart();
    }).catch(function () {
      say("The server could not be reached. Check the connection and try again.", true);
    });
  }

  // Run is handled here; Download CSV posts the form to the CSV route (a file, not a page).
  form.addEventListener("submit", function (event) {
    if (editor) editor.save();
    if (event.submitter && event.submitter.id === "sql-download") return;
    event.preventDefault();
    run();
  });

  function cell(value, type) {
    var td = document.createElement("td");
    if (value === null || value === undefined) {
      td.textContent = "NULL";
      td.className = "null";
    } else {
      td.textContent = typeof value === "boolean" ? String(value) : value;
      if (DgChart.NUMERIC[type]) td.className = "number";
    }
    return td;
  }

  function renderGrid() {
    var columns = answer.columns;
    var pages = Math.max(1, Math.ceil(answer.rows.length / PAGE_ROWS));
    page = Math.min(Math.max(page, 0), pages - 1);
    grid.innerHTML = "";
    var caption = document.createElement("caption");
    caption.textContent = "Query result, page " + (page + 1) + " of " + pages;
    grid.appendChild(caption);
    var head = grid.createTHead().insertRow();
    columns.forEach(function (column) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = column.name;
      var type = document.createElement("span");
      type.className = "type";
      type.textContent = column.type;
      th.appendChild(type);
      if (DgChart.NUMERIC[column.type]) th.className = "number";
      head.appendChild(th);
    });
    var body = grid.createTBody();
    answer.rows.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS).forEach(function (row) {
      var tr = body.insertRow();
      row.forEach(function (value, i) { tr.appendChild(cell(value, columns[i].type)); });
    });
    pager.innerHTML = "";
    if (pages > 1) {
      pager.appendChild(pageButton("Previous page", page - 1, page === 0));
      var where = document.createElement("span");
      where.textContent = " Page " + (page + 1) + " of " + pages + " ";
      pager.appendChild(where);
      pager.appendChild(pageButton("Next page", page + 1, page >= pages - 1));
    }
  }

  function pageButton(text, target, disabled) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.disabled = disabled;
    button.addEventListener("click", function () { page = target; renderGrid(); });
    return button;
  }

  function fillSelect(select, columns, chosen, withRow) {
    select.innerHTML = "";
    if (withRow) select.appendChild(new Option("(row number)", "-1"));
    columns.forEach(function (column, i) {
      select.appendChild(new Option(column.name + " (" + column.type + ")", String(i)));
    });
    select.value = String(chosen);
  }

  function setUpChart() {
    var columns = answer.columns;
    var spec = DgChart.suggest(columns.map(function (c) { return c.name; }),
      columns.map(function (c) { return c.type; }));
    var chart = document.getElementById("chart-area");
    if (!spec) {
      chart.hidden = true;
      chartNote.textContent = "No chart: the result has no numeric column.";
      return;
    }
    chart.hidden = false;
    chartNote.textContent = "";
    chartKind.value = spec.kind;
    fillSelect(chartX, columns, spec.x, true);
    fillSelect(chartY, columns, spec.y, false);
    drawChart();
  }

  function drawChart() {
    if (!answer) return;
    var spec = { kind: chartKind.value, x: Number(chartX.value), y: Number(chartY.value) };
    if (!DgChart.NUMERIC[answer.columns[spec.y].type]) {
      chartNote.textContent = "The y axis needs a numeric column.";
      while (chartSvg.firstChild) chartSvg.removeChild(chartSvg.firstChild);
      return;
    }
    var drawn = DgChart.draw(chartSvg, spec, answer.rows, answer.columns);
    chartSvg.setAttribute("data-kind", spec.kind);
    chartNote.textContent = drawn + " points drawn";
  }

  [chartKind, chartX, chartY].forEach(function (select) {
    select.addEventListener("change", drawChart);
  });
  window.addEventListener("resize", function () { if (answer) drawChart(); });
})();
