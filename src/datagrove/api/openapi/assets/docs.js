// Starts Swagger UI on this server's own document. validatorUrl null: Swagger UI would otherwise
// send the document to an online validator; the page makes no request outside this server.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
