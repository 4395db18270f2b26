/* The browser editor of a project version (templates/editor.html).

   The page edits a copy of one version in memory: `files` maps each current
   path to {origin: path in the base version or null, text, base64, dirty};
   `ops` records the renames and deletions of files the base version holds,
   in order. Save sends those ops, then one write per changed file, to the
   API (master/editing.py), which makes a new version from them.
   It starts at DOMContentLoaded: app.js (window.crawlfleet) loads after it. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var root = document.getElementById("editor");
  if (!root || !window.CrawlfleetEditor) return;
  var api = window.crawlfleet.api;
  var $ = function (id) { return document.getElementById(id); };
  var t = window.crawlfleet.t;  // the page's language (i18n.js, web/i18n.py JS_TEXTS)

  var state = { base: root.dataset.version, files: {}, folders: {}, ops: [],
                current: null, selected: null, saving: false };
  var view = null;

  function url(template, version) { return template.replace("VERSION", encodeURIComponent(version)); }
  function fileUrl(path) {
    return url(root.dataset.filesUrl, state.base) + "/" + path.split("/").map(encodeURIComponent).join("/");
  }
  function showError(message) {
    var box = $("editor-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  /* -- unsaved changes: the badge, the Save button, both guards -- */
  function isDirty() {
    if (state.ops.length) return true;
    return Object.keys(state.files).some(function (p) { return state.files[p].dirty; });
  }
  function refreshDirty() {
    var dirty = isDirty();
    $("editor-dirty").hidden = !dirty;
    $("editor-save-open").disabled = !dirty || state.saving;
  }
  window.addEventListener("beforeunload", function (e) {
    if (isDirty()) { e.preventDefault(); e.returnValue = ""; }
  });
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[href]") : null;
    if (!link || !isDirty() || link.id === "editor-leave-go" || link.target === "_blank") return;
    if (link.getAttribute("href").charAt(0) === "#") return;
    e.preventDefault();
    $("editor-leave-go").href = link.href;
    $("editor-leave").showModal();
  });
  $("editor-leave-go").addEventListener("click", function () {
    state.ops = []; state.files = {};  // let this one navigation through
  });

  /* -- the tree -- */
  function allFolders() {
    var out = {};
    Object.keys(state.files).concat(Object.keys(state.folders)).forEach(function (p) {
      var parts = p.split("/");
      var upto = state.folders[p] ? parts.length : parts.length - 1;
      for (var i = 1; i <= upto; i++) out[parts.slice(0, i).join("/")] = true;
    });
    return Object.keys(out);
  }
  function renderTree() {
    var tree = $("editor-tree");
    tree.textContent = "";
    var entries = Object.keys(state.files).map(function (p) { return { path: p, folder: false }; })
      .concat(allFolders().map(function (p) { return { path: p, folder: true }; }));
    entries.sort(function (a, b) {
      var ka = a.path + (a.folder ? "/" : ""), kb = b.path + (b.folder ? "/" : "");
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    entries.forEach(function (entry) {
      var depth = entry.path.split("/").length - 1;
      var item = document.createElement("a");
      item.href = "#";
      item.setAttribute("role", "treeitem");
      item.dataset.path = entry.path;
      item.dataset.folder = entry.folder ? "1" : "";
      item.style.paddingLeft = (16 + depth * 14) + "px";
      var name = entry.path.split("/").pop();
      item.textContent = (entry.folder ? "▸ " + name + "/" : name);
      var file = state.files[entry.path];
      if (file && file.dirty) item.textContent += " •";
      if (entry.path === state.selected) { item.classList.add("active"); item.setAttribute("aria-selected", "true"); }
      tree.appendChild(item);
    });
    $("editor-rename").disabled = $("editor-delete").disabled = !state.selected;
    $("editor-selected").textContent = state.selected ? t("Selected: %(path)s", { path: state.selected }) : "";
    refreshDirty();
  }
  $("editor-tree").addEventListener("click", function (e) {
    var item = e.target.closest("a[data-path]");
    if (!item) return;
    e.preventDefault();
    state.selected = item.dataset.path;
    if (!item.dataset.folder) openFile(item.dataset.path); else renderTree();
  });

  /* -- opening and editing a file -- */
  function setNote(text) {
    $("editor-note").textContent = text || "";
    $("editor-note").hidden = !text;
    $("editor-host").hidden = !!text;
  }
  function show(path, text) {
    state.current = path;
    $("editor-path").textContent = path;
    $("editor-lang").textContent = view.languageName(path);
    setNote(null);
    state.loading = true;
    view.setText(text, path);
    state.loading = false;
  }
  function openFile(path) {
    var file = state.files[path];
    state.selected = path;
    renderTree();
    showError(null);
    if (file.text !== null) return show(path, file.text);
    if (file.base64 !== null || file.binary) {
      state.current = null;
      $("editor-path").textContent = path;
      $("editor-lang").textContent = "";
      return setNote(t("A binary file: it is kept as it is (rename or delete it from the tree)."));
    }
    api(fileUrl(file.origin)).then(function (data) {
      if (data.truncated) { file.binary = true; return setNote(t("Too large to edit here (over 1 MiB).")); }
      file.text = data.content;
      if (state.selected === path) show(path, file.text);
    }).catch(function (err) {
      if (err.status === 400) { file.binary = true; return openFile(path); }
      showError(err.message);
    });
  }
  function onEdit(text) {
    if (state.loading || !state.current) return;
    var file = state.files[state.current];
    if (!file || file.text === text) return;
    file.text = text;
    if (!file.dirty) { file.dirty = true; renderTree(); }
  }

  /* -- new, upload, rename, delete -- */
  function ask(title, value) {
    return new Promise(function (resolve) {
      var dialog = $("editor-prompt"), input = $("editor-prompt-input");
      $("editor-prompt-title").textContent = title;
      input.value = value || "";
      dialog.returnValue = "";
      dialog.onclose = function () { resolve(dialog.returnValue === "ok" ? input.value.trim().replace(/^\/+|\/+$/g, "") : null); };
      dialog.showModal();
      input.focus();
    });
  }

  function exists(path) { return !!state.files[path] || allFolders().indexOf(path) >= 0; }
  function validPath(path) {
    return path && !/(^|\/)\.\.?(\/|$)|\/\/|\\/.test(path) && path.indexOf("\0") < 0;
  }
  function folderOfSelection() {
    var s = state.selected;
    if (!s) return "";
    return state.files[s] ? s.split("/").slice(0, -1).join("/") : s;
  }
  function prefixed(name) { var f = folderOfSelection(); return f ? f + "/" + name : name; }

  $("editor-new-file").addEventListener("click", function () {
    ask(t("New file"), prefixed("")).then(function (path) {
      if (path === null) return;
      if (!validPath(path)) return showError(t("Not a valid path: %(path)s", { path: path }));
      if (exists(path)) return showError(t("%(path)s exists already.", { path: path }));
      state.files[path] = { origin: null, text: "", base64: null, dirty: true };
      openFile(path);
    });
  });
  $("editor-new-folder").addEventListener("click", function () {
    ask(t("New folder"), prefixed("")).then(function (path) {
      if (path === null) return;
      if (!validPath(path)) return showError(t("Not a valid path: %(path)s", { path: path }));
      if (exists(path)) return showError(t("%(path)s exists already.", { path: path }));
      state.folders[path] = true;  // kept once a file is put in it
      state.selected = path;
      renderTree();
    });
  });
  $("editor-upload").addEventListener("change", function () {
    var chosen = this.files[0];
    this.value = "";
    if (!chosen) return;
    var path = prefixed(chosen.name);
    if (state.files[path] && !window.confirm(t("%(path)s exists: replace it with the uploaded file?", { path: path }))) return;
    var reader = new FileReader();
    reader.onload = function () {
      var bytes = new Uint8Array(reader.result), chunks = [];
      for (var i = 0; i < bytes.length; i += 0x8000) chunks.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
      var text = null;
      try { text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (e) { text = null; }
      if (text !== null && text.indexOf("\0") >= 0) text = null;
      var old = state.files[path];
      state.files[path] = { origin: old ? old.origin : null, text: text,
                            base64: text === null ? btoa(chunks.join("")) : null, dirty: true };
      openFile(path);
    };
    reader.readAsArrayBuffer(chosen);
  });

  function under(folder) {
    return Object.keys(state.files).filter(function (p) { return p.indexOf(folder + "/") === 0; });
  }
  $("editor-rename").addEventListener("click", function () {
    var from = state.selected;
    ask(t("Rename %(path)s", { path: from }), from).then(function (to) {
      if (to === null || to === from) return;
      if (!validPath(to)) return showError(t("Not a valid path: %(path)s", { path: to }));
      if (exists(to)) return showError(t("%(path)s exists already.", { path: to }));
      if (state.files[from]) {
        if (state.files[from].origin !== null) state.ops.push({ op: "rename", from: from, to: to });
        state.files[to] = state.files[from];
        delete state.files[from];
        if (state.current === from) state.current = to;
      } else {
        var inside = under(from);
        if (inside.some(function (p) { return state.files[p].origin !== null; })) {
          state.ops.push({ op: "rename", from: from, to: to });
        }
        inside.forEach(function (p) {
          var moved = to + p.slice(from.length);
          state.files[moved] = state.files[p];
          delete state.files[p];
          if (state.current === p) state.current = moved;
        });
        Object.keys(state.folders).forEach(function (f) {
          if (f === from || f.indexOf(from + "/") === 0) { state.folders[to + f.slice(from.length)] = true; delete state.folders[f]; }
        });
      }
      state.selected = to;
      if (state.current) $("editor-path").textContent = state.current;
      renderTree();
    });
  });
  $("editor-delete").addEventListener("click", function () {
    var path = state.selected, isFile = !!state.files[path];
    var inside = isFile ? [path] : under(path);
    if (!window.confirm(isFile ? t("Delete %(path)s?", { path: path }) : t("Delete %(path)s/ and the %(num)s file(s) in it?", { path: path, num: inside.length }))) return;
    if (inside.some(function (p) { return state.files[p].origin !== null; })) state.ops.push({ op: "delete", path: path });
    inside.forEach(function (p) { delete state.files[p]; });
    Object.keys(state.folders).forEach(function (f) { if (f === path || f.indexOf(path + "/") === 0) delete state.folders[f]; });
    if (inside.indexOf(state.current) >= 0) { state.current = null; $("editor-path").textContent = t("Choose a file"); setNote(t("Deleted.")); }
    state.selected = null;
    renderTree();
  });

  /* -- saving -- */
  function changes() {
    var writes = Object.keys(state.files).filter(function (p) { return state.files[p].dirty; }).map(function (p) {
      var f = state.files[p];
      return f.base64 !== null ? { op: "write", path: p, base64: f.base64 } : { op: "write", path: p, content: f.text };
    });
    return state.ops.concat(writes);
  }
  // Ctrl+S / Cmd+S: the save dialog, not the browser's "save page"
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      if (!$("editor-save-open").disabled && !$("editor-save-dialog").open) $("editor-save-open").click();
    }
  });
  $("editor-save-open").addEventListener("click", function () {
    var ops = changes();
    $("editor-save-summary").textContent = t("%(num)s change(s):", { num: ops.length }) + " " +
      ops.map(function (o) { return o.op + " " + (o.path || o.from + " → " + o.to); }).join(", ");
    $("editor-save-dialog").showModal();
    $("editor-label").focus();
  });
  $("editor-save-form").addEventListener("submit", function () {
    state.saving = true;
    refreshDirty();
    showError(null);
    api(url(root.dataset.saveUrl, state.base), { method: "POST", json: {
      ops: changes(), label: $("editor-label").value.trim() || null,
      message: $("editor-message").value.trim() || null } })
      .then(function (result) { return result.status === "inspecting" ? follow(result) : result; })
      .then(saved).catch(function (err) { showError(t("Not saved: %(error)s", { error: err.message })); })
      .then(function () { state.saving = false; refreshDirty(); });
  });

  /* Listing the spiders outlasted the server's wait: follow the inspection,
     then read the diff against the parent. */
  function follow(pending) {
    var box = $("editor-saving");
    box.hidden = false;
    var inspectionUrl = "/api/v1/projects/" + encodeURIComponent(root.dataset.project) +
      "/inspections/" + encodeURIComponent(pending.inspection);
    return new Promise(function (resolve, reject) {
      (function poll() {
        api(inspectionUrl).then(function (rec) {
          if (rec.status === "inspecting") return setTimeout(poll, 1000);
          if (rec.status === "failed") return reject(new Error(rec.error || t("the inspection failed")));
          resolve(rec);
        }).catch(reject);
      })();
    }).then(function (rec) {
      return api(root.dataset.compareApiUrl + "?from=" + encodeURIComponent(pending.parent) +
                 "&to=" + encodeURIComponent(rec.version)).then(function (diff) {
        return { version: rec.version, label: rec.label || rec.version.slice(0, 12),
                 spiders: rec.spiders, parent: pending.parent, message: pending.message,
                 unchanged: rec.version === pending.parent, diff: diff };
      });
    }).finally(function () { box.hidden = true; });
  }

  function saved(result) {
    var box = $("save-result");
    box.hidden = false;
    $("save-result-label").textContent = result.label + " (" + result.version.slice(0, 12) + ")";
    $("save-result-summary").textContent = (result.unchanged
      ? t("Unchanged: these files are exactly those of version %(label)s.", { label: result.label }) + " "
      : t("New version, now current.") + " ") +
      t("Spiders: %(spiders)s.", { spiders: (result.spiders || []).join(", ") || t("none") }) +
      (result.message ? " " + t("Message: %(message)s", { message: result.message }) : "");
    $("save-result-compare").href = root.dataset.compareUrl + "?from=" + encodeURIComponent(result.parent) +
      "&to=" + encodeURIComponent(result.version);
    var body = $("save-result-files").querySelector("tbody");
    body.textContent = "";
    result.diff.files.forEach(function (f) {
      var row = body.insertRow(), cell = row.insertCell(), badge = document.createElement("span");
      cell.className = "mono small";
      cell.textContent = f.path;
      badge.className = "badge " + ({ added: "ok", removed: "bad", changed: "info" })[f.status];
      badge.textContent = t(f.status);
      row.insertCell().appendChild(badge);
    });
    renderDiff($("save-result-diff"), result.diff.diff);
    // go on editing the new version
    state.base = result.version;
    state.ops = []; state.folders = {};
    $("editor-base-label").textContent = result.label;
    $("editor-base-id").textContent = result.version;
    history.replaceState(null, "", url(root.dataset.editUrl, result.version));
    $("editor-label").value = ""; $("editor-message").value = "";
    load(state.current);
    box.scrollIntoView();
  }
  function renderDiff(pre, text) {
    pre.textContent = "";
    text.split("\n").forEach(function (line) {
      var span = document.createElement("span");
      if (/^\+(?!\+\+)/.test(line)) span.className = "add";
      else if (/^-(?!--)/.test(line)) span.className = "del";
      else if (/^@@/.test(line)) span.className = "hunk";
      else if (/^(\+\+\+|---)/.test(line)) span.className = "head";
      span.textContent = line + "\n";
      pre.appendChild(span);
    });
  }

  /* -- start: the base version's file list -- */
  function load(reopen) {
    return api(url(root.dataset.filesUrl, state.base)).then(function (data) {
      state.files = {};
      data.files.forEach(function (f) { state.files[f.path] = { origin: f.path, text: null, base64: null, dirty: false }; });
      var wanted = reopen || decodeURIComponent(location.hash.slice(1));
      var first = wanted && state.files[wanted] ? wanted :
        ["scrapy.cfg", "crawlfleet.json"].filter(function (p) { return state.files[p]; })[0];
      renderTree();
      if (first) openFile(first);
    }).catch(function (err) { showError(err.message); });
  }
  view = window.CrawlfleetEditor.create($("editor-host"), { text: "", path: "", onChange: onEdit,
                                                    nonce: root.dataset.styleNonce });
  // screen readers name the text area by the open file's path; the scroller,
  // scrolling on a narrow screen, is reachable from the keyboard
  view.view.contentDOM.setAttribute("aria-labelledby", "editor-path");
  view.view.scrollDOM.setAttribute("tabindex", "0");
  view.view.scrollDOM.setAttribute("aria-labelledby", "editor-path");
  root.dataset.ready = "1";
  load();
});
