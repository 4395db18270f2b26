/* crawlfleet web UI: the little JavaScript the pages need. No inline scripts
   (the CSP allows only this origin's files); every page feature starts from an
   element it finds, so one file serves every page. Text from the server is
   always set with textContent, never as HTML. */
(function () {
  "use strict";
  var t = window.crawlfleet.t;  // the page's language (i18n.js, loaded first by base.html)

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.content : "";

  /* fetch with the session cookie and the CSRF header; JSON in, JSON out */
  function api(url, options) {
    options = options || {};
    var headers = options.headers || {};
    headers["X-CSRF-Token"] = CSRF;
    headers["Accept"] = "application/json";
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.json);
    }
    options.headers = headers;
    options.credentials = "same-origin";
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
        if (!response.ok) {
          var err = new Error((data && data.error) || response.statusText);
          err.status = response.status;
          throw err;
        }
        return data;
      });
    });
  }
  window.crawlfleet.api = api;
  window.crawlfleet.csrf = CSRF;

  /* a page's elements, named as its script calls them: byIds({box: "log"}).box
     is #log, or null where the page has none */
  function byIds(ids) {
    var found = {};
    Object.keys(ids).forEach(function (name) { found[name] = document.getElementById(ids[name]); });
    return found;
  }
  window.crawlfleet.byIds = byIds;

  function on(selector, event, handler) {
    document.addEventListener(event, function (e) {
      var target = e.target.closest ? e.target.closest(selector) : null;
      if (target) handler.call(target, e);
    });
  }

  /* dialogs, confirmations, auto-submitting selects */
  on(".open-dialog", "click", function (e) {
    e.preventDefault();
    var dialog = document.getElementById(this.dataset.dialog);
    if (dialog && dialog.showModal) dialog.showModal();
  });
  on(".dialog-close", "click", function () { this.closest("dialog").close(); });
  on(".target-select", "change", function () {
    var box = this.closest("form").querySelector(".node-choice");
    if (box) box.hidden = this.value !== "nodes";
  });
  on(".confirm", "click", function (e) {
    if (!window.confirm(this.dataset.confirm || t("Sure?"))) e.preventDefault();
  });
  on(".auto-submit", "change", function () { this.form.submit(); });

  /* narrow screens: the sidebar opens and folds with its menu button */
  on("#nav-toggle", "click", function () {
    var open = this.closest(".side").classList.toggle("open");
    this.setAttribute("aria-expanded", open ? "true" : "false");
  });

  /* a table wider than its box scrolls sideways: the box then takes the
     keyboard focus (arrow keys scroll it) and is named after its table */
  function scrollableTables() {
    document.querySelectorAll(".table-wrap").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (!box.hasAttribute("aria-label")) {
          var panel = box.closest(".panel");
          var heading = panel && panel.querySelector("h2");
          box.setAttribute("aria-label", heading ? heading.textContent.trim() : "Table");
        }
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
      }
    });
  }
  scrollableTables();
  if (window.ResizeObserver) {  // also when a table's columns change (results.js)
    var resized = new ResizeObserver(scrollableTables);
    document.querySelectorAll(".table-wrap, .table-wrap > table").forEach(function (el) {
      resized.observe(el);
    });
  }

  /* a page that refreshes itself (nodes) */
  var refresh = document.getElementById("auto-refresh");
  if (refresh) {
    /* not while someone types into the page's forms (nodes: labels, run slots) */
    var busy = function () {
      var active = document.activeElement;
      if (active && active.classList && active.classList.contains("keeps-page")) return true;
      return Array.prototype.some.call(document.querySelectorAll(".keeps-page"),
                                       function (input) { return input.value !== input.defaultValue; });
    };
    var reload = function () {
      if (busy()) { setTimeout(reload, 1000); return; }
      window.location.reload();
    };
    setTimeout(reload, 1000 * (+refresh.dataset.seconds || 5));
  }

  /* results: one more filter line */
  var addFilter = document.getElementById("add-filter");
  if (addFilter) {
    addFilter.addEventListener("click", function () {
      var rows = document.getElementById("filter-rows");
      var input = rows.querySelector("input").cloneNode();
      input.value = "";
      input.removeAttribute("id");  // the first line's label names the first input only
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      input.setAttribute("aria-label", "Filter " + (rows.querySelectorAll("input").length + 1));
      rows.appendChild(input);
      input.focus();
    });
  }

  /* projects: upload a zip by drag and drop (or a file chooser) to the projects API */
  var dropzone = document.getElementById("dropzone");
  if (dropzone) {
    var fileInput = document.getElementById("upload-file");
    var statusBox = document.getElementById("upload-status");
    var upload = function (file) {
      if (!file) return;
      var form = new FormData();
      form.append("file", file, file.name);
      var project = document.getElementById("upload-project").value.trim();
      var label = document.getElementById("upload-label").value.trim();
      if (project) form.append("project", project);
      if (label) form.append("label", label);
      statusBox.className = "muted small";
      statusBox.textContent = t("Uploading %(name)s (%(size)s kB)…", { name: file.name, size: Math.ceil(file.size / 1024) });
      var projectPage = function (name) {
        return dropzone.dataset.uploadUrl.replace(/^\/api\/v1/, "") + "/" + encodeURIComponent(name);
      };
      var done = function (result) {
        statusBox.className = "muted small";
        statusBox.textContent = t(result.new ? "Deployed %(project)s version %(label)s with spiders %(spiders)s."
          : "Already deployed: %(project)s version %(label)s with spiders %(spiders)s.",
          { project: result.project, label: result.label, spiders: (result.spiders || []).join(", ") });
        window.location.href = projectPage(result.project);
      };
      var failed = function (message) {
        /* the message first, the traceback folded under it */
        var lines = String(message).split("\n");
        statusBox.className = "flash error";
        statusBox.textContent = t("Upload failed: %(error)s", { error: lines[0] });
        if (lines.length > 1) {
          var details = document.createElement("details");
          var summary = document.createElement("summary");
          var pre = document.createElement("pre");
          summary.textContent = t("traceback");
          pre.textContent = lines.slice(1).join("\n");
          details.appendChild(summary);
          details.appendChild(pre);
          statusBox.appendChild(details);
        }
      };
      /* listing the spiders outlasted the request (202): follow the inspection */
      var follow = function (result) {
        var url = dropzone.dataset.uploadUrl + "/" + encodeURIComponent(result.project) +
          "/inspections/" + encodeURIComponent(result.inspection);
        statusBox.className = "muted small inspecting";
        statusBox.textContent = t("Inspecting %(project)s… (listing its spiders in its own environment)", { project: result.project });
        var poll = function () {
          api(url).then(function (state) {
            if (state.status === "done") done(state);
            else if (state.status === "failed") failed(state.error);
            else setTimeout(poll, 1000);
          }).catch(function (err) { failed(err.message); });
        };
        setTimeout(poll, 1000);
      };
      api(dropzone.dataset.uploadUrl, { method: "POST", body: form }).then(function (result) {
        if (result.status === "inspecting") follow(result);
        else done(result);
      }).catch(function (err) { failed(err.message); });
    };
    dropzone.addEventListener("click", function () { fileInput.click(); });
    dropzone.addEventListener("keydown", function (e) { if (e.key === "Enter") fileInput.click(); });
    fileInput.addEventListener("change", function () { upload(fileInput.files[0]); });
    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (e) { e.preventDefault(); dropzone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      dropzone.addEventListener(name, function (e) { e.preventDefault(); dropzone.classList.remove("over"); });
    });
    dropzone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
    });
  }

  /* projects: a deploy still being inspected; the page shows its outcome once it ends */
  var running = document.querySelectorAll("tr.inspection[data-status=inspecting]");
  if (running.length) {
    var watch = function () {
      Promise.all(Array.prototype.map.call(running, function (row) {
        return api(row.dataset.url).then(function (state) { return state.status !== "inspecting"; },
                                          function () { return false; });
      })).then(function (ended) {
        if (ended.indexOf(true) >= 0) window.location.reload();
        else setTimeout(watch, 2000);
      });
    };
    setTimeout(watch, 2000);
  }

  /* dashboard chart */
  var chartCanvas = document.getElementById("daily-chart");
  if (chartCanvas && window.Chart) {
    var series = JSON.parse(chartCanvas.dataset.series);
    new window.Chart(chartCanvas, {
      data: {
        labels: series.labels,
        datasets: [
          { type: "bar", label: t("tasks"), data: series.tasks, backgroundColor: "#9dbcf0", yAxisID: "y", order: 2 },
          { type: "bar", label: t("failed"), data: series.failures, backgroundColor: "#e69a90", yAxisID: "y", order: 1 },
          { type: "line", label: t("items"), data: series.items, borderColor: "#1d8a4e", backgroundColor: "#1d8a4e",
            yAxisID: "items", tension: 0.25, pointRadius: 2, order: 0 }
        ]
      },
      options: {
        maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, title: { display: true, text: t("tasks") }, ticks: { precision: 0 } },
          items: { position: "right", beginAtZero: true, grid: { display: false },
                   title: { display: true, text: t("items") } }
        }
      }
    });
  }

  /* task page: live status and stats, and the log over server-sent events */
  var taskPage = document.getElementById("task-page");
  if (taskPage) { taskLive(taskPage); }

  function taskLive(page) {
    var log = byIds({ box: "log", search: "log-search", follow: "log-follow",
                      state: "log-state", live: "log-live", count: "log-count" });
    var MAX_LINES = 20000;
    var total = 0;
    var wasFinal = page.dataset.final === "true";

    function matches(line) {
      var q = log.search.value.trim().toLowerCase();
      return !q || line.toLowerCase().indexOf(q) !== -1;
    }
    function showCount() {
      var shown = log.box.querySelectorAll("div:not(.hidden)").length;
      log.count.textContent = log.search.value.trim() ? t("%(shown)s of %(total)s lines", { shown: shown, total: total })
                                                       : t("%(total)s lines", { total: total });
    }
    function addLines(lines) {
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) {
        var div = document.createElement("div");
        div.textContent = line;
        if (line.indexOf("[crawlfleet]") === 0) div.className = "platform";
        else if (/\b(ERROR|CRITICAL|Traceback)\b/.test(line)) div.className = "err";
        if (!matches(line)) div.classList.add("hidden");
        fragment.appendChild(div);
      });
      log.box.appendChild(fragment);
      total += lines.length;
      while (log.box.childNodes.length > MAX_LINES) log.box.removeChild(log.box.firstChild);
      if (log.follow.checked) log.box.scrollTop = log.box.scrollHeight;
      showCount();
    }
    log.search.addEventListener("input", function () {
      Array.prototype.forEach.call(log.box.children, function (div) {
        div.classList.toggle("hidden", !matches(div.textContent));
      });
      showCount();
    });

    var source = new EventSource(page.dataset.streamUrl);
    source.onopen = function () {
      if (!wasFinal) { log.state.textContent = t("live"); log.live.classList.add("on"); }
    };
    source.onmessage = function (e) { addLines(JSON.parse(e.data)); };
    source.addEventListener("end", function () {
      source.close();
      log.live.classList.remove("on");
      log.state.textContent = t("complete");
      showCount();
      if (!wasFinal) { pollStatus(true); }
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CONNECTING) log.state.textContent = t("reconnecting…");
    };

    var stats = {};
    document.querySelectorAll("[data-stat]").forEach(function (el) { stats[el.dataset.stat] = el; });
    function setText(id, text) {
      var el = document.getElementById(id);
      if (el) el.textContent = text;
    }
    function fmtTime(stamp) {
      if (!stamp) return "–";
      return new Date(stamp * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    }
    function fmtDuration(s) {
      if (s === undefined || s === null) return "–";
      if (s < 60) return t("%(s)s s", { s: s.toFixed(1) });
      var m = Math.floor(s / 60);
      return m < 60 ? t("%(m)s min %(s)s s", { m: m, s: String(Math.floor(s % 60)).padStart(2, "0") })
                    : t("%(h)s h %(m)s min", { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
    }
    var reloaded = false;
    function pollStatus(once) {
      api(page.dataset.statusUrl).then(function (task) {
        var st = task.stats || {};
        ["items", "pages", "errors"].forEach(function (k) {
          if (stats[k]) stats[k].textContent = st[k] || 0;
        });
        if (stats.rate) stats.rate.textContent = task.duration ? ((st.items || 0) / task.duration).toFixed(1) : "–";
        var badge = document.querySelector("#task-status .badge");
        var shown = task.cancelling ? "cancelling" : task.status;  // asked to stop, not ended yet
        badge.className = "badge " + shown;
        badge.textContent = t(shown);
        var cancelButton = document.getElementById("cancel-button");
        if (cancelButton && task.cancelling) { cancelButton.disabled = true; cancelButton.textContent = t("Cancelling…"); }
        // other page parts (the pace chart in tasks.js) follow the same polls
        document.dispatchEvent(new CustomEvent("crawlfleet:task", { detail: task }));
        setText("task-node", task.node_id || t("waiting"));
        setText("task-started", fmtTime(task.started_at));
        setText("task-finished", fmtTime(task.finished_at));
        setText("task-duration", fmtDuration(task.duration));
        setText("task-exit", task.exit_code === null || task.exit_code === undefined ? "–" : task.exit_code);
        setText("task-error", task.error || "–");
        var final = ["finished", "error", "cancelled", "timeout", "abnormal"].indexOf(task.status) !== -1;
        if (final && !wasFinal && !reloaded) {
          reloaded = true;
          // the results table and the buttons are rendered by the server: show them
          setTimeout(function () { window.location.reload(); }, 1500);
        } else if (!final && !once) {
          setTimeout(pollStatus, 2000);
        }
      }).catch(function () { if (!once) setTimeout(pollStatus, 5000); });
    }
    if (!wasFinal) pollStatus(false);
  }
})();
