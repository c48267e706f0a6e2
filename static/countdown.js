/* Counts down to the time of the element #until (its datetime attribute)
   in the element #left, every second. */
(function () {
  var until = document.getElementById("until");
  var left = document.getElementById("left");
  if (!until || !left) { return; }
  var end = Date.parse(until.getAttribute("datetime"));
  function tick() {
    var s = Math.max(0, Math.round((end - Date.now()) / 1000));
    left.textContent = "(" + Math.floor(s / 60) + " min " + ("0" + (s % 60)).slice(-2) + " s left)";
  }
  tick();
  setInterval(tick, 1000);
})();
