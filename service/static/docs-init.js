// Starts Swagger UI on /docs. Our own file (the page's CSP allows no inline script); the spec
// URL comes from the page, and nothing is fetched from any other host.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");

  // Swagger UI leaves some controls without a name (the inputs of array parameters) and its
  // code samples as scroll boxes: name each control after its parameter, and let the samples
  // be reached by keyboard (WCAG 2.1: 1.3.1, 2.1.1, 4.1.2).
  // A label that only wraps the control (its options) gives it no name.
  function hasName(control) {
    var labels = control.labels || [];
    for (var k = 0; k < labels.length; k++) {
      var text = labels[k].textContent.replace(control.textContent, "").trim();
      if (text) {
        return true;
      }
    }
    return false;
  }

  function label() {
    var controls = root.querySelectorAll("input, select, textarea");
    for (var i = 0; i < controls.length; i++) {
      var control = controls[i];
      if (hasName(control) || control.getAttribute("aria-label")) {
        continue;
      }
      if (control.id === "servers") {  // the spec's servers: a label that wraps only the select
        control.setAttribute("aria-label", "Server");
        continue;
      }
      var row = control.closest("tr[data-param-name]");
      var name = row ? row.getAttribute("data-param-name") + " (" +
        row.getAttribute("data-param-in") + ")" : (control.getAttribute("placeholder") || "value");
      control.setAttribute("aria-label", name);
    }
    var samples = root.querySelectorAll(".microlight:not([tabindex])");
    for (var j = 0; j < samples.length; j++) {
      samples[j].setAttribute("tabindex", "0");
    }
  }
  new MutationObserver(label).observe(root, {childList: true, subtree: true});

  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    // Deep links put a link inside each operation's expand button (nested controls).
    deepLinking: false,
    // No spec validation badge: it would send the spec to validator.swagger.io.
    validatorUrl: null,
    docExpansion: "list",
    defaultModelsExpandDepth: 1,
    displayRequestDuration: true,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
