// The upload page: choose or drop a CSV file, review the schema the server proposes from its first
// bytes, then send the file through the stream part machinery in parts, with a progress bar.
//
// Steps (all JSON, X-CSRF-Token header; the server's error message is shown as it comes):
//   POST /ui/upload/schema        the first SAMPLE_BYTES of the file -> {columns, preview, headerBytes}
//   POST /ui/upload/start         {dataset | name + columns, method} -> {dataset, stream, execution}
//   PUT  .../parts/{n}            the file after its header, cut at record ends into parts
//   POST .../commit               {method} -> {dataset, rows}
// Parts are cut at a line end outside quotes: CSV bytes '"' and '\n' never occur inside a
// multi-byte UTF-8 character, so scanning bytes is exact.
"use strict";

(function () {
  var form = document.getElementById("upload-form");
  if (!form) return;
  var SAMPLE_BYTES = 64 * 1024;
  var TYPES = ["STRING", "LONG", "DOUBLE", "DECIMAL", "DATE", "DATETIME", "BOOLEAN"];
  var fileInput = document.getElementById("upload-file");
  var drop = document.getElementById("upload-drop");
  var schemaArea = document.getElementById("upload-schema");
  var schemaBody = document.getElementById("upload-columns");
  var previewTable = document.getElementById("upload-preview");
  var status = document.getElementById("upload-status");
  var progress = document.getElementById("upload-progress");
  var progressText = document.getElementById("upload-progress-text");
  var targetSelect = document.getElementById("upload-target");
  var nameField = document.getElementById("upload-name");
  var methodSelect = document.getElementById("upload-method");
  var submit = document.getElementById("upload-submit");
  var file = null;
  var headerBytes = 0;

  function partBytes() { return Number(form.getAttribute("data-part-bytes")) || 8 * 1024 * 1024; }
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : form.querySelector("input[name=csrf_token]").value;
  }

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "message error" : "message";
    status.setAttribute("role", isError ? "alert" : "status");
  }

  function send(method, url, body, contentType) {
    var headers = { "X-CSRF-Token": csrfToken() };
    if (contentType) headers["Content-Type"] = contentType;
    // datagrove.fetch (app.js) sends a person whose session ended to the sign-in page.
    var request = window.datagrove ? window.datagrove.fetch : window.fetch.bind(window);
    return request(url, { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) throw new Error(json.message || "The server answered " + response.status + ".");
          return json;
        }, function () { throw new Error("The server answered " + response.status + "."); });
      }, function () { throw new Error("The server could not be reached. Check the connection and try again."); });
  }

  function showTarget() {
    var isNew = targetSelect.value === "";
    document.getElementById("upload-new").hidden = !isNew;
    schemaBody.querySelectorAll("select, input").forEach(function (field) { field.disabled = !isNew; });
    if (isNew && methodSelect.value !== "REPLACE") methodSelect.value = "REPLACE";
  }
  targetSelect.addEventListener("change", showTarget);

  function choose(chosen) {
    file = chosen;
    if (!file) return;
    say("Reading " + file.name + "…");
    progress.value = 0;
    progressText.textContent = "0 %";
    if (!nameField.value) nameField.value = file.name.replace(/\.[^.]*$/, "");
    var complete = file.size <= SAMPLE_BYTES;
    send("POST", form.getAttribute("data-schema-url") + "?complete=" + complete,
      file.slice(0, SAMPLE_BYTES), "application/octet-stream")
      .then(function (schema) {
        headerBytes = schema.headerBytes;
        showSchema(schema);
        say(file.name + ": " + file.size + " bytes. Check the column types, then upload.");
        submit.disabled = false;
      }, function (error) {
        schemaArea.hidden = true;
        submit.disabled = true;
        say(error.message, true);
      });
  }

  function showSchema(schema) {
    schemaBody.innerHTML = "";
    schema.columns.forEach(function (column, i) {
      var row = schemaBody.insertRow();
      var nameCell = row.insertCell();
      var name = document.createElement("input");
      name.value = column.name;
      name.id = "column-name-" + i;
      name.setAttribute("aria-label", "Name of column " + (i + 1));
      name.className = "column-name";
      nameCell.appendChild(name);
      var typeCell = row.insertCell();
      var type = document.createElement("select");
      type.className = "column-type";
      type.setAttribute("aria-label", "Type of column " + (i + 1));
      TYPES.forEach(function (t) { type.appendChild(new Option(t, t)); });
      type.value = column.type;
      typeCell.appendChild(type);
    });
    previewTable.innerHTML = "";
    var caption = document.createElement("caption");
    caption.textContent = "The file's first rows";
    previewTable.appendChild(caption);
    var head = previewTable.createTHead().insertRow();
    schema.columns.forEach(function (column) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = column.name;
      head.appendChild(th);
    });
    var body = previewTable.createTBody();
    schema.preview.forEach(function (values) {
      var tr = body.insertRow();
      values.forEach(function (value) { tr.insertCell().textContent = value; });
    });
    schemaArea.hidden = false;
    showTarget();
  }

  fileInput.addEventListener("change", function () { choose(fileInput.files[0]); });
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) {
    if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
  });

  // Where the part starting at `start` ends: after the last line end outside quotes at or before
  // start + size (or the file's end). Quotes balance within a record, so the scan starts unquoted.
  function cutPart(start, size) {
    var end = Math.min(file.size, start + size);
    return file.slice(start, end).arrayBuffer().then(function (buffer) {
      if (end === file.size) return end;
      var bytes = new Uint8Array(buffer), quoted = false, cut = -1;
      for (var i = 0; i < bytes.length; i++) {
        if (bytes[i] === 34) quoted = !quoted;
        else if (bytes[i] === 10 && !quoted) cut = i;
      }
      // A record longer than a part: take a bigger part.
      return cut < 0 ? cutPart(start, size * 2) : start + cut + 1;
    });
  }

  function setProgress(done) {
    var total = file.size - headerBytes;
    var percent = total > 0 ? Math.floor(done / total * 100) : 100;
    progress.value = percent;
    progressText.textContent = percent + " %";
  }

  function columns() {
    var names = schemaBody.querySelectorAll(".column-name");
    var types = schemaBody.querySelectorAll(".column-type");
    return Array.prototype.map.call(names, function (name, i) {
      return { name: name.value, type: types[i].value };
    });
  }

  function uploadParts(base, start, number) {
    if (start >= file.size) return Promise.resolve(number);
    return cutPart(start, partBytes()).then(function (end) {
      return send("PUT", base + "/parts/" + number, file.slice(start, end), "text/csv").then(function () {
        setProgress(end - headerBytes);
        return uploadParts(base, end, number + 1);
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!file) { say("Choose a CSV file first.", true); return; }
    submit.disabled = true;
    var method = methodSelect.value;
    var start = { method: method };
    if (targetSelect.value) start.dataset = targetSelect.value;
    else { start.name = nameField.value; start.columns = columns(); }
    var described = null;
    say("Uploading " + file.name + "…");
    send("POST", form.getAttribute("data-start-url"), JSON.stringify(start), "application/json")
      .then(function (opened) {
        described = opened;
        if (file.size <= headerBytes) return 0;
        return uploadParts(opened.partsUrl, headerBytes, 1);
      })
      .then(function () {
        return send("POST", described.commitUrl, JSON.stringify({ method: method }), "application/json");
      })
      .then(function (done) {
        setProgress(file.size - headerBytes);
        say("Done: " + done.name + " now holds " + done.rows + " rows.");
        var link = document.getElementById("upload-done");
        link.href = done.url;
        link.textContent = "Open " + done.name;
        link.hidden = false;
        submit.disabled = false;
      })
      .catch(function (error) {
        say(error.message, true);
        submit.disabled = false;
      });
  });
})();
