// Starts Swagger UI on /api/docs with the spec gatehouse serves (limits included).
// A file of its own, not an inline script: the page's CSP allows no inline script.
window.addEventListener("load", function () {
  window.SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
  });
});
