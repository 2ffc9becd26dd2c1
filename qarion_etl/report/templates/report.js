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
  // A link from the grid or a task's history: #task=<id> opens that task.
  var wanted = /^#task=(.*)$/.exec(location.hash);
  if (wanted) {
    try { open(decodeURIComponent(wanted[1])); } catch (e) { /* a malformed link opens nothing */ }
  }
})();

// SQL as code: keywords, strings, comments, numbers, quoted names and Jinja, highlighted
// when a block is first shown. Text is only ever set as text, never parsed as HTML.
(function () {
  var WORDS = ("select from where group by order having limit offset join inner left right full outer " +
    "cross natural on using as and or not in is null like ilike between case when then else end " +
    "distinct union all except intersect with recursive insert into values update set delete " +
    "create table view schema if exists drop alter rename to add column begin transaction start " +
    "commit rollback primary key foreign references over partition window rows range asc desc " +
    "nulls first last cast true false replace temporary temp index unique default returning " +
    "lateral filter qualify interval any some exists materialized copy truncate").split(" ");
  var KEYWORDS = new Set(WORDS);
  var TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?|`[^`]*`?)|(\{\{[\s\S]*?(?:\}\}|$)|\{%[\s\S]*?(?:%\}|$)|\{#[\s\S]*?(?:#\}|$))|(\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_$]*)/g;
  var KINDS = [null, "com", "str", "qid", "tpl", "num", "kw"];

  function span(kind, text) {
    var s = document.createElement("span");
    s.className = kind;
    s.textContent = text;
    return s;
  }

  function highlight(code) {
    if (code.getAttribute("data-lit")) return;
    code.setAttribute("data-lit", "1");
    var text = code.textContent, out = document.createDocumentFragment(), at = 0, m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text))) {
      var kind = null;
      for (var g = 1; g < KINDS.length; g++) if (m[g] !== undefined) { kind = KINDS[g]; break; }
      if (kind === "kw" && !KEYWORDS.has(m[0].toLowerCase())) continue;
      if (m.index > at) out.appendChild(document.createTextNode(text.slice(at, m.index)));
      out.appendChild(span(kind, m[0]));
      at = m.index + m[0].length;
    }
    if (at < text.length) out.appendChild(document.createTextNode(text.slice(at)));
    code.textContent = "";
    code.appendChild(out);
  }

  function lightUp(root) {
    root.querySelectorAll("pre.sql > code").forEach(function (code) {
      if (!code.closest("details:not([open])")) highlight(code);
    });
  }
  document.addEventListener("toggle", function (ev) { if (ev.target.open) lightUp(ev.target); }, true);
  lightUp(document);

  // The run log: each line coloured by its level.
  document.querySelectorAll("pre.log").forEach(function (pre) {
    var out = document.createDocumentFragment();
    pre.textContent.split("\n").forEach(function (line, i) {
      if (i) out.appendChild(document.createTextNode("\n"));
      var level = /^\S+ (ERROR|WARNING|DEBUG) /.exec(line);
      out.appendChild(level ? span("lv-" + level[1].toLowerCase(), line) : document.createTextNode(line));
    });
    pre.textContent = "";
    pre.appendChild(out);
  });
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
