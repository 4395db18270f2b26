/* crawlfleet web UI: the page's language for every script. base.html puts the
   translations of the scripts' texts on <body data-i18n> (web/i18n.py
   JS_TEXTS) and loads this file first (deferred scripts run in document order),
   so app.js, results.js, tasks.js and editor.js all translate through the one
   window.crawlfleet.t (app.js adds its api, csrf and byIds to window.crawlfleet). */
(function () {
  "use strict";
  var TEXTS = JSON.parse(document.body.dataset.i18n || "{}");
  /* `text` in the page's language, each %(name)s replaced by args[name] */
  function t(text, args) {
    var out = TEXTS[text] || text;
    Object.keys(args || {}).forEach(function (k) { out = out.split("%(" + k + ")s").join(args[k]); });
    return out;
  }
  window.crawlfleet = { t: t };
})();
