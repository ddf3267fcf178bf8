// Review UI keyboard and zoom. Progressive: every action also works with the mouse and without JavaScript.
(function () {
  "use strict";
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  }
  var lightbox = document.getElementById("lightbox");
  function zoom(figure) {
    var img = figure && figure.querySelector("img");
    if (!img || !lightbox) return;
    lightbox.querySelector("img").src = img.src;
    lightbox.hidden = false;
  }
  function unzoom() { if (lightbox) lightbox.hidden = true; }
  document.querySelectorAll(".zoomable").forEach(function (figure) {
    figure.addEventListener("click", function () { zoom(figure); });
  });
  if (lightbox) lightbox.addEventListener("click", unzoom);
  document.querySelectorAll("tr[data-href]").forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "A") window.location = row.getAttribute("data-href");
    });
  });
  function go(id) { var link = document.getElementById(id); if (link) window.location = link.href; }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      unzoom();
      if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    var defect = document.getElementById("defect_class");
    switch (event.key) {
      case "j": go("next"); break;
      case "k": go("prev"); break;
      case "c":
        if (defect) { event.preventDefault(); defect.focus(); defect.select(); }
        break;
      case "f":
        var fa = document.getElementById("false-alarm-form");
        if (fa) { event.preventDefault(); fa.requestSubmit(); }
        break;
      case "z":
        zoom(document.activeElement && document.activeElement.classList.contains("zoomable")
          ? document.activeElement : document.querySelector(".zoomable[data-kind='overlay']"));
        break;
      case "b": document.body.classList.toggle("no-boxes"); break;
      default: return;
    }
  });
})();
