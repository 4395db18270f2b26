/* crawlfleet web UI, the schedule pages: the cron expression in words and its
   next fire times as it is typed (debounced calls of /schedules/describe and
   /schedules/preview), fire times hidden while the schedule is disabled, and
   every time shown in the viewer's chosen time zone (a picker kept in
   localStorage; the browser's own zone by default). No library: Intl does it. */
// app.js runs after this file (base.html's head block comes first): start once both ran
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var api = window.crawlfleet.api;
  var TZ_KEY = "crawlfleet.viewerTimeZone";
  var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function viewerZone() {
    var saved = null;
    try { saved = window.localStorage.getItem(TZ_KEY); } catch (e) { saved = null; }
    return saved || browserZone;
  }

  /* "2026-11-29 04:00:00 GMT+1" in `zone`, from an ISO time */
  function inZone(iso, zone) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" +
      parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  }

  /* every <time class="zoned"> on the page, in the viewer's zone; the title
     keeps the time as stored (the schedule's own zone) */
  function showTimes() {
    var zone = viewerZone();
    document.querySelectorAll("time.zoned").forEach(function (el) {
      el.textContent = inZone(el.getAttribute("datetime"), zone);
      el.title = el.getAttribute("datetime");
    });
  }

  function timeElement(iso) {
    var el = document.createElement("time");
    el.className = "zoned";
    el.setAttribute("datetime", iso);
    el.textContent = inZone(iso, viewerZone());
    el.title = iso;
    return el;
  }

  /* the time-zone picker */
  var picker = document.getElementById("viewer-tz");
  if (picker) {
    var zones = (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []).slice();
    [browserZone, "UTC", viewerZone()].forEach(function (z) { if (zones.indexOf(z) < 0) zones.unshift(z); });
    zones.forEach(function (z) {
      var option = document.createElement("option");
      option.value = z;
      option.textContent = z === browserZone ? z + " (this browser)" : z;
      picker.appendChild(option);
    });
    picker.value = viewerZone();
    picker.addEventListener("change", function () {
      try {
        if (picker.value === browserZone) window.localStorage.removeItem(TZ_KEY);
        else window.localStorage.setItem(TZ_KEY, picker.value);
      } catch (e) { /* private mode: the choice lasts this page only */ }
      showTimes();
    });
  }
  showTimes();

  /* the form: words, seconds and next fire times as the expression is typed */
  var form = window.crawlfleet.byIds({
    cron: "s-cron", tz: "s-tz", preview: "cron-preview", words: "cron-words",
    seconds: "cron-seconds", enabled: "s-enabled", disabledNote: "cron-disabled" });
  if (!form.cron) return;
  var timer = null, asked = 0;

  function query() {
    return "?cron=" + encodeURIComponent(form.cron.value) +
      "&timezone=" + encodeURIComponent(form.tz.value || "UTC");
  }

  function showEnabled() {
    var on = !form.enabled || form.enabled.checked;
    form.preview.hidden = !on;
    if (form.disabledNote) form.disabledNote.hidden = on;
  }

  function refresh() {
    var mine = ++asked;
    api(form.cron.dataset.describeUrl + query()).then(function (data) {
      if (mine !== asked) return;
      form.words.className = "cron-words";
      form.words.textContent = data.description;
      form.seconds.textContent = data.seconds || "";
      form.seconds.hidden = !data.seconds;
    }).catch(function (err) {
      if (mine !== asked) return;
      form.words.className = "cron-words error";
      form.words.textContent = err.message;
      form.seconds.textContent = "";
      form.seconds.hidden = true;
    });
    if (form.enabled && !form.enabled.checked) {  // a disabled schedule has no next fire times
      form.preview.textContent = "";
      return;
    }
    api(form.cron.dataset.previewUrl + query()).then(function (data) {
      if (mine !== asked) return;
      form.preview.className = "cron-preview";
      form.preview.textContent = "";
      data.fire_times.forEach(function (t) {
        var li = document.createElement("li");
        li.appendChild(timeElement(t));
        form.preview.appendChild(li);
      });
    }).catch(function () {
      if (mine !== asked) return;
      form.preview.textContent = "";  // the words line says what is wrong
    });
  }

  var later = function () { clearTimeout(timer); timer = setTimeout(refresh, 250); };
  form.cron.addEventListener("input", later);
  form.tz.addEventListener("input", later);
  if (form.enabled) form.enabled.addEventListener("change", function () { showEnabled(); later(); });
  showEnabled();
  if (form.cron.value) refresh();
});
