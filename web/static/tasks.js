/* crawlfleet web UI, the tasks pages: picking many tasks in the list, and a
   running task's pace (pages and items per minute) drawn as inline SVG from
   the stats app.js polls. No library: a few polylines are all it takes. */
(function () {
  "use strict";
  var t = window.crawlfleet.t;  // the page's language (i18n.js, loaded first by base.html)

  /* the list: checkboxes, a count, and the actions that apply to what is picked */
  var bulkForm = document.getElementById("bulk-form");
  if (bulkForm) {
    var picks = function () { return Array.prototype.slice.call(document.querySelectorAll(".task-pick")); };
    var pickAll = document.getElementById("pick-all");
    var count = document.getElementById("bulk-count");
    var update = function () {
      var chosen = picks().filter(function (box) { return box.checked; });
      var statuses = chosen.map(function (box) { return box.closest("tr").dataset.status; });
      count.textContent = chosen.length ? t("%(num)s selected", { num: chosen.length }) : t("Select tasks to act on several at once.");
      // an action is offered when it applies to at least one picked task;
      // the server answers for each task (and says why it refused one)
      bulkForm.querySelectorAll(".bulk-action").forEach(function (button) {
        var allowed = button.dataset.for.split(" ");
        button.disabled = !statuses.some(function (s) { return allowed.indexOf(s) !== -1; });
      });
      if (pickAll) {
        pickAll.checked = chosen.length > 0 && chosen.length === picks().length;
        pickAll.indeterminate = chosen.length > 0 && chosen.length < picks().length;
      }
    };
    document.addEventListener("change", function (e) {
      if (e.target === pickAll) {
        picks().forEach(function (box) { box.checked = pickAll.checked; });
      }
      if (e.target === pickAll || e.target.classList.contains("task-pick")) update();
    });
    update();
  }

  /* one task: its pace while it runs */
  var chart = document.getElementById("pace-chart");
  if (!chart) return;
  var panel = document.getElementById("pace-panel");
  var WINDOW = +panel.dataset.window || 600;   // seconds of history kept
  var SPAN = 30;                               // seconds a rate is measured over
  var W = 600, H = 140, PAD = 4;
  var SVG = "http://www.w3.org/2000/svg";
  var samples = [];   // {t: server seconds, pages, items}
  var points = [];    // {t, pages: per minute, items: per minute}

  function rateOf(now, key) {
    // the oldest sample within SPAN seconds, else the task's start (an average so far)
    var base = null;
    for (var i = 0; i < samples.length - 1; i++) {
      if (now.t - samples[i].t <= SPAN) { base = samples[i]; break; }
    }
    if (!base || now.t - base.t <= 0) return now.run > 0 ? now[key] / now.run * 60 : 0;
    return (now[key] - base[key]) / (now.t - base.t) * 60;
  }

  function line(values, cls, top) {
    var el = document.createElementNS(SVG, "polyline");
    var first = points[0].t, last = points[points.length - 1].t, span = Math.max(last - first, 1);
    el.setAttribute("points", values.map(function (v, i) {
      var x = points.length === 1 ? W : PAD + (points[i].t - first) / span * (W - 2 * PAD);
      var y = H - PAD - (top ? v / top * (H - 2 * PAD) : 0);
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" "));
    el.setAttribute("class", "pace-line " + cls);
    return el;
  }

  function draw() {
    while (chart.lastChild && chart.lastChild.nodeName !== "title") chart.removeChild(chart.lastChild);
    if (!points.length) return;
    var pages = points.map(function (p) { return p.pages; });
    var items = points.map(function (p) { return p.items; });
    var top = Math.max.apply(null, pages.concat(items, [1]));
    chart.appendChild(line(pages, "pages", top));
    chart.appendChild(line(items, "items", top));
    chart.dataset.points = points.length;
    chart.dataset.top = Math.round(top);
    var latest = points[points.length - 1];
    document.getElementById("pace-pages").textContent = latest.pages.toFixed(0);
    document.getElementById("pace-items").textContent = latest.items.toFixed(0);
    document.getElementById("pace-top").textContent = Math.round(top);
  }

  document.addEventListener("crawlfleet:task", function (e) {
    var task = e.detail;
    if (task.status !== "running" || !task.started_at) return;
    var st = task.stats || {};
    var run = task.duration || 0;
    var now = { t: task.started_at + run, run: run, pages: st.pages || 0, items: st.items || 0 };
    if (samples.length && samples[samples.length - 1].t >= now.t) return;
    samples.push(now);
    points.push({ t: now.t, pages: Math.max(rateOf(now, "pages"), 0), items: Math.max(rateOf(now, "items"), 0) });
    while (samples.length && now.t - samples[0].t > WINDOW) samples.shift();
    while (points.length && now.t - points[0].t > WINDOW) points.shift();
    draw();
  });
})();
