/* Reloads the page after the delay its script tag gives (data-reload-ms),
   but never while a command form on it is being filled in. */
(function () {
  var delay = Number(document.currentScript.getAttribute("data-reload-ms")) || 15000;
  var touched = false;
  function touch(event) {
    if (event.target.closest && event.target.closest("form.command")) { touched = true; }
  }
  document.addEventListener("input", touch);
  document.addEventListener("change", touch);
  setTimeout(function () { if (!touched) { location.reload(); } }, delay);
})();
