// The admin API's docs page: Swagger UI from this server, no inline script (the page's CSP).
window.addEventListener("DOMContentLoaded", function () {
  var holder = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: holder.getAttribute("data-openapi"), dom_id: "#swagger-ui", deepLinking: true });
});
