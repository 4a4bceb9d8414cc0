// Starts Swagger UI on the gateway's OpenAPI document. The document declares a bearer JWT
// security scheme (gateway/openapi.py), so Swagger UI's own Authorize button takes the access
// token and sends it on the operations that need one; persistAuthorization keeps it across a
// reload (in localStorage, for this origin only).
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
