// Clicking a task (a graph node, a timeline bar, a table row) opens its details.
(function () {
  function open(task) {
    document.querySelectorAll(".selected").forEach(function (e) { e.classList.remove("selected"); });
    document.querySelectorAll('[data-task="' + CSS.escape(task) + '"]').forEach(function (e) {
      if (e.matches("g.node, tr")) e.classList.add("selected");
    });
    var box = document.querySelector('details.task[data-task="' + CSS.escape(task) + '"]');
    if (box) { box.open = true; box.scrollIntoView({ block: "start" }); }
  }
  document.addEventListener("click", function (ev) {
    var hit = ev.target.closest("g.node, rect.try, [data-open]");
    if (!hit) return;
    ev.preventDefault();
    open(hit.getAttribute("data-open") || hit.getAttribute("data-task"));
  });
  document.addEventListener("keydown", function (ev) {
    var hit = ev.target.closest && ev.target.closest("g.node");
    if (hit && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); open(hit.getAttribute("data-task")); }
  });
  window.qarionOpenTask = open;
})();

// In the web UI, a run in progress: look again every second, reload when it changed.
(function () {
  var url = document.body.getAttribute("data-live");
  if (!url) return;
  var stamp = document.body.getAttribute("data-stamp");
  setInterval(function () {
    fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.stamp !== stamp) location.reload();
    }).catch(function () {});
  }, 1000);
})();
