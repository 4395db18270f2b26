/* crawlfleet web UI, the results browser: choose which columns show and in
   what order. The choice is kept per collection in this browser's
   localStorage (nothing on the server); columns the rows gain later are
   appended, columns they lose are forgotten. */
(function () {
  "use strict";
  var t = window.crawlfleet.t;  // the page's language (i18n.js, loaded first by base.html)

  var table = document.getElementById("results-table");
  if (!table) return;
  var KEY = "crawlfleet.results.columns." + table.dataset.collection;
  var all = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.dataset.col; });

  function load() {
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(KEY) || "null"); } catch (e) { saved = null; }
    var order = (saved && saved.order || []).filter(function (c) { return all.indexOf(c) !== -1; });
    all.forEach(function (c) { if (order.indexOf(c) === -1) order.push(c); });
    var hidden = (saved && saved.hidden || []).filter(function (c) { return all.indexOf(c) !== -1; });
    return { order: order, hidden: hidden };
  }
  var view = load();

  function save() {
    try { window.localStorage.setItem(KEY, JSON.stringify(view)); } catch (e) { /* private mode: not kept */ }
  }

  /* put every row's cells in the chosen order, hide the unchosen */
  function apply() {
    table.querySelectorAll("tr").forEach(function (row) {
      var cells = {};
      Array.prototype.forEach.call(row.children, function (cell) { cells[cell.dataset.col] = cell; });
      view.order.forEach(function (c) {
        var cell = cells[c];
        if (!cell) return;
        row.appendChild(cell);
        cell.classList.toggle("col-hidden", view.hidden.indexOf(c) !== -1);
      });
    });
  }

  /* the chooser: a checkbox per column (its label tied to it) and buttons to move it */
  var panel = document.createElement("div");
  panel.className = "col-chooser";
  panel.id = "column-chooser";
  panel.hidden = true;
  var head = document.createElement("div");
  head.className = "muted small";
  head.textContent = t("Tick the columns to show; ‹ › move a column. Kept in this browser for this collection.") + " ";
  var reset = document.createElement("button");
  reset.type = "button";
  reset.className = "btn small";
  reset.id = "columns-reset";
  reset.textContent = t("Reset");
  head.appendChild(reset);
  var list = document.createElement("ol");
  list.id = "column-list";
  panel.appendChild(head);
  panel.appendChild(list);

  function button(text, label, handler) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", handler);
    return b;
  }
  function move(c, step) {
    var i = view.order.indexOf(c), j = i + step;
    if (j < 0 || j >= view.order.length) return;
    view.order[i] = view.order[j];
    view.order[j] = c;
    changed(c, step < 0 ? "left" : "right");
  }
  function changed(focusCol, focusDir) {
    save();
    apply();
    render(focusCol, focusDir);
  }
  function render(focusCol, focusDir) {
    list.textContent = "";
    view.order.forEach(function (c, n) {
      var li = document.createElement("li");
      li.dataset.col = c;
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = view.hidden.indexOf(c) === -1;
      box.addEventListener("change", function () {
        view.hidden = view.hidden.filter(function (h) { return h !== c; });
        if (!box.checked) view.hidden.push(c);
        changed();
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(c));
      li.appendChild(label);
      var left = button("‹", t("Move %(col)s left", { col: c }), function () { move(c, -1); });
      var right = button("›", t("Move %(col)s right", { col: c }), function () { move(c, 1); });
      left.className = "col-left";
      right.className = "col-right";
      left.disabled = n === 0;
      right.disabled = n === view.order.length - 1;
      li.appendChild(left);
      li.appendChild(right);
      list.appendChild(li);
      if (c === focusCol) (focusDir === "left" ? (left.disabled ? right : left) : (right.disabled ? left : right)).focus();
    });
  }
  reset.addEventListener("click", function () {
    view = { order: all.slice(), hidden: [] };
    try { window.localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
    apply();
    render();
  });

  var toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "btn";
  toggle.id = "columns-button";
  toggle.textContent = t("Columns");
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", "column-chooser");
  toggle.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
  });
  var wrap = table.closest(".table-wrap");
  wrap.parentNode.insertBefore(panel, wrap);
  // beside the filter form's Apply and Clear
  var tools = document.querySelector("#filter-form .field:last-child");
  tools.appendChild(document.createTextNode(" "));
  tools.appendChild(toggle);

  apply();
  render();
})();
