/* Patronage member portal: service worker registration, share and copy buttons. No inline script. */
(function () {
  "use strict";
  var app = document.querySelector(".app");
  if ("serviceWorker" in navigator && app && app.getAttribute("data-sw")) {
    navigator.serviceWorker.register(app.getAttribute("data-sw"), { scope: app.getAttribute("data-scope") })
      .catch(function () { /* the portal works without it */ });
  }
  function copied(button, text) {
    if (!navigator.clipboard) { return; }
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = button.getAttribute("data-copied") || "✓";
    });
  }
  document.querySelectorAll("[data-share]").forEach(function (button) {
    if (!navigator.share) { return; }              // the email, WhatsApp and copy links remain
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.share({ title: button.getAttribute("data-share-title"), text: button.getAttribute("data-share-text"),
        url: button.getAttribute("data-share-url") }).catch(function () { /* cancelled */ });
    });
  });
  document.querySelectorAll("[data-copy-input]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("data-copy-input"));
      if (input) { input.select(); copied(button, input.value); }
    });
  });
  document.querySelectorAll("[data-copy-text]").forEach(function (button) {
    button.addEventListener("click", function () { copied(button, button.getAttribute("data-copy-text")); });
  });
})();
