// Datagrove's small shared script. `datagrove.fetch` is window.fetch with the session's CSRF token
// (X-CSRF-Token) and a JSON Accept header; a 401 (the session ended) sends the person to sign in.
"use strict";
window.datagrove = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  async function request(url, options) {
    const opts = Object.assign({ credentials: "same-origin" }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json", "X-CSRF-Token": csrfToken() }, opts.headers || {});
    const response = await window.fetch(url, opts);
    if (response.status === 401 && url.startsWith("/ui/")) {
      window.location.assign("/?next=" + encodeURIComponent(window.location.pathname + window.location.search));
    }
    return response;
  }
  // The API's error message of a failed response, for showing to the person.
  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.message || response.statusText;
    } catch (_) {
      return response.status + " " + response.statusText;
    }
  }
  return { csrfToken: csrfToken, fetch: request, errorMessage: errorMessage };
})();
