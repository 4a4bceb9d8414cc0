// Starts Swagger UI on the gateway's OpenAPI document and adds the bearer token from the bar
// above it to every "Try it out" request. The OpenAPI document declares no securitySchemes, so
// Swagger UI's own Authorize button does not appear; the token is kept in localStorage so it
// survives a reload, and is sent only to this origin (the API the page came from).
(function () {
  "use strict";
  var KEY = "emporium.accessToken";
  var form = document.getElementById("emporium-auth");
  var input = document.getElementById("emporium-token");
  var state = document.getElementById("emporium-auth-state");

  function token() {
    return window.localStorage.getItem(KEY) || "";
  }
  function show() {
    state.textContent = token() ? "token set" : "no token";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value.trim().replace(/^Bearer\s+/i, "");
    if (value) window.localStorage.setItem(KEY, value);
    input.value = "";
    show();
  });
  document.getElementById("emporium-token-clear").addEventListener("click", function () {
    window.localStorage.removeItem(KEY);
    show();
  });
  show();

  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      var sameOrigin = new URL(request.url, window.location.href).origin === window.location.origin;
      if (token() && sameOrigin && !request.headers.Authorization) {
        request.headers.Authorization = "Bearer " + token();
      }
      return request;
    },
  });
})();
